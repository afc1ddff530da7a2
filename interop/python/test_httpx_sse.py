"""Interop: Python's httpx-sse against the real hubs interop/run.sh starts.

Run with interop/run.sh python.

httpx-sse parses an event stream (connect_sse / iter_sse) and does nothing else: it never
reconnects, never sends Last-Event-ID, and has no notion of 204. So `Follower` below is the
loop a user of the library writes: read until the hub closes the stream, wait the last
`retry:` time, reconnect with `Last-Event-ID: <last id received>`, and stop when the hub
answers 204. What the library itself does, and the tests check:

- every event with its name (`message` when the stream names none), its id and its data,
  multi-line data joined with LF whatever the line ends were;
- a `retry:` block with no data comes out of iter_sse() as an event with empty data and the
  `retry` value (an EventSource would not dispatch it); the loop takes the value and skips it;
- on a 204 answer iter_sse() raises SSEError (the Content-Type is not text/event-stream), so
  the loop must look at response.status_code first, as it does.
"""

import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import traceback

import httpx
from httpx_sse import SSEError, connect_sse

CLIENT = "python"
SHARED = json.loads((pathlib.Path(__file__).parent.parent / "events.json").read_text("utf-8"))
EVENTS, FINAL = SHARED["events"], SHARED["final"]


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: run interop/run.sh")
    return value


TOKEN = env("INTEROP_TOKEN")
LIVE_HUB = env("INTEROP_LIVE_HUB")
AGING_HUB = env("INTEROP_AGING_HUB")
DURABLE_HUB = env("INTEROP_DURABLE_HUB")
DURABLE_DIR = env("INTEROP_DURABLE_DIR")
HUB_SH = env("INTEROP_HUB_SH")


def topic_of(case):
    return f"https://example.com/interop/{CLIENT}/{case}"


def id_of(case, update):
    return f"{CLIENT}-{case}-{update['id']}"


def expected(case, updates):
    """What the client must receive for these updates, in order: (id, event, data)."""
    return [
        (
            id_of(case, u),
            u.get("type", "message"),
            u["data"].replace("\r\n", "\n").replace("\r", "\n"),
        )
        for u in updates
    ]


def post(url, case, update):
    """POSTs an update's form to the hub (publish) or to `<hub>/end`; returns the answer."""
    form = {"topic": topic_of(case), "id": id_of(case, update), "data": update["data"]}
    if "type" in update:
        form["type"] = update["type"]
    response = httpx.post(url, data=form, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    if response.status_code != 200:
        raise AssertionError(f"POST {url} answered {response.status_code}: {response.text}")
    return response.text


def publish(hub, case, update):
    return post(hub, case, update)


def end(hub, case, update):
    return post(f"{hub}/end", case, update)


def wait_for(condition, what, seconds=15):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Follower(threading.Thread):
    """Follows one topic as an EventSource would, with httpx-sse doing the parsing.

    `received` holds (id, event, data) per event; `attempts` one dict per connection attempt:
    the Last-Event-ID sent (the last id received), the status, the hub's Mercure-Last-Event-ID
    (the id it resumed after), and, for a 204, the body and whether iter_sse() raised SSEError.
    """

    def __init__(self, hub, case, stop_after):
        super().__init__(daemon=True)
        self.url = f"{hub}?{httpx.QueryParams({'match': topic_of(case)})}"
        self.stop_after = stop_after
        self.received = []
        self.attempts = []
        self.opens = 0
        self.error = None
        # Connection attempts wait while this is clear (the restart case holds them back).
        self.go = threading.Event()
        self.go.set()
        self.held = threading.Event()

    def run(self):
        try:
            self.follow()
        except Exception:  # reported by the case that waits for this thread
            self.error = traceback.format_exc()

    def follow(self):
        last_id, retry_ms = None, 3000  # 3 s: the EventSource default until the hub says
        # Bounded: the hub drops a stream at most every second here.
        for _ in range(30):
            if not self.go.is_set():
                self.held.set()
                self.go.wait()
                self.held.clear()
            headers = {} if last_id is None else {"Last-Event-ID": last_id}
            attempt = {"last_event_id": last_id, "status": None}
            self.attempts.append(attempt)
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=30)) as client,
                connect_sse(client, "GET", self.url, headers=headers) as source,
            ):
                response = source.response
                attempt["status"] = response.status_code
                attempt["resumed_from"] = response.headers.get("mercure-last-event-id")
                if response.status_code == 204:
                    try:
                        list(source.iter_sse())
                        attempt["sse_error"] = False
                    except SSEError:
                        attempt["sse_error"] = True
                    attempt["body"] = response.read()
                    return
                if response.status_code != 200:
                    raise AssertionError(f"subscribe answered {response.status_code}")
                self.opens += 1
                for sse in source.iter_sse():
                    if sse.retry is not None:
                        retry_ms = sse.retry
                    if sse.data == "":
                        continue  # a retry: block, not an event
                    self.received.append((sse.id, sse.event, sse.data))
                    last_id = sse.id
                    if len(self.received) >= self.stop_after:
                        return
            time.sleep(retry_ms / 1000)
        raise AssertionError("still no 204 after 30 connections")

    def finish(self, what):
        self.join(timeout=30)
        if self.is_alive():
            raise AssertionError(f"timed out waiting for {what}")
        if self.error:
            raise AssertionError(f"the follower failed:\n{self.error}")


def case_events():
    """Named events, multi-line data (LF, CRLF, lone CR, blank lines), ids, unicode: exactly."""
    want = expected("events", EVENTS)
    follower = Follower(LIVE_HUB, "events", stop_after=len(want))
    follower.start()
    wait_for(lambda: follower.opens == 1, "the stream to open")
    for update in EVENTS:
        publish(LIVE_HUB, "events", update)
    follower.finish(f"{len(want)} events")
    assert follower.received == want, f"received {follower.received!r}\nexpected {want!r}"


def case_resume_after_drop():
    """The hub closes streams 1 to 2 s after they open (--max-connection-age 1s, checked every
    second) with a retry: hint; one update every 500 ms spans at least one drop. Reconnecting
    with Last-Event-ID, the client misses nothing and gets nothing twice."""
    case = "resume-after-drop"
    want = expected(case, EVENTS)
    follower = Follower(AGING_HUB, case, stop_after=len(want))
    follower.start()
    wait_for(lambda: follower.opens == 1, "the stream to open")
    for update in EVENTS:
        publish(AGING_HUB, case, update)
        time.sleep(0.5)
    follower.finish(f"{len(want)} events")
    assert follower.received == want, f"received {follower.received!r}\nexpected {want!r}"
    first, *reconnects = follower.attempts
    assert first["last_event_id"] is None
    assert any(a["last_event_id"] != want[-1][0] for a in reconnects), (
        "no drop before the last update"
    )
    for attempt in reconnects:
        assert attempt["status"] == 200, attempt
        assert attempt["resumed_from"] == attempt["last_event_id"], attempt


def case_resume_after_restart():
    """The durable hub is stopped after the first half; the second half is published on the
    restarted hub while the client is held away; the client resumes from redb history."""
    case = "resume-after-restart"
    first_half, second_half = EVENTS[:4], EVENTS[4:]
    want = expected(case, EVENTS)
    follower = Follower(DURABLE_HUB, case, stop_after=len(want))
    follower.start()
    wait_for(lambda: follower.opens == 1, "the stream to open")
    for update in first_half:
        publish(DURABLE_HUB, case, update)
    wait_for(lambda: len(follower.received) >= len(first_half), f"{len(first_half)} events")
    follower.go.clear()
    subprocess.run([HUB_SH, "stop", DURABLE_DIR], check=True)
    wait_for(follower.held.is_set, "the client to try to reconnect")
    subprocess.run([HUB_SH, "start", DURABLE_DIR], check=True)
    for update in second_half:
        publish(DURABLE_HUB, case, update)
    follower.go.set()
    follower.finish(f"{len(want)} events")
    assert follower.received == want, f"received {follower.received!r}\nexpected {want!r}"
    resume = follower.attempts[-1]
    last_of_first_half = id_of(case, first_half[-1])
    assert resume["last_event_id"] == last_of_first_half, resume
    assert resume["status"] == 200, resume
    assert resume["resumed_from"] == last_of_first_half, f"the restarted hub lost the id: {resume}"


def case_stop_on_204():
    """The stream is ended with a final event: the client gets it, reconnects with its id, is
    answered 204 with no body, and stops (iter_sse() would raise SSEError on that answer)."""
    case = "stop-on-204"
    follower = Follower(LIVE_HUB, case, stop_after=sys.maxsize)
    follower.start()
    wait_for(lambda: follower.opens == 1, "the stream to open")
    publish(LIVE_HUB, case, EVENTS[0])
    answer = json.loads(end(LIVE_HUB, case, FINAL))
    assert answer["closed"] == 1, answer
    follower.finish("the 204")
    assert follower.received == expected(case, [EVENTS[0], FINAL]), follower.received
    summary = [(a["last_event_id"], a["status"]) for a in follower.attempts]
    assert summary == [(None, 200), (id_of(case, FINAL), 204)], summary
    stopped = follower.attempts[-1]
    assert stopped["body"] == b"", stopped
    assert stopped["sse_error"], "iter_sse() on a 204 no longer raises SSEError"


CASES = {
    "events": case_events,
    "resume-after-drop": case_resume_after_drop,
    "resume-after-restart": case_resume_after_restart,
    "stop-on-204": case_stop_on_204,
}


def main():
    failures = 0
    for name, case in CASES.items():
        try:
            case()
            print(f"PASS {CLIENT} {name}", flush=True)
        except Exception as error:  # every failure is reported, then the next case runs
            failures += 1
            reason = str(error) or type(error).__name__
            print(f"FAIL {CLIENT} {name}: {reason}".replace("\n", "\n    "), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
