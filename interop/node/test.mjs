// Interop: the npm `eventsource` package (v4, a WHATWG EventSource for Node) against the real
// hubs interop/run.sh starts. Run with interop/run.sh node.
//
// The EventSource does everything itself: parsing, reconnecting after the `retry:` time,
// sending Last-Event-ID, stopping on 204 (v4 follows the spec: a 204 fails the connection, the
// `error` event carries `code: 204`, readyState becomes CLOSED and it never reconnects). The
// test only passes it a `fetch` that records each connection attempt and, in the restart case,
// holds attempts back until the test has published what the client must then catch up on.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { EventSource } from 'eventsource';

const CLIENT = 'node';
const shared = JSON.parse(readFileSync(new URL('../events.json', import.meta.url), 'utf8'));

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run interop/run.sh`);
  return value;
}
const TOKEN = env('INTEROP_TOKEN');
const LIVE_HUB = env('INTEROP_LIVE_HUB');
const AGING_HUB = env('INTEROP_AGING_HUB');
const DURABLE_HUB = env('INTEROP_DURABLE_HUB');
const DURABLE_DIR = env('INTEROP_DURABLE_DIR');
const HUB_SH = env('INTEROP_HUB_SH');

// EventSource dispatches a named event only to listeners of that name.
const TYPES = [...new Set(['message', shared.final.type, ...shared.events.map((e) => e.type ?? 'message')])];

const topicOf = (caseName) => `https://example.com/interop/${CLIENT}/${caseName}`;
const idOf = (caseName, update) => `${CLIENT}-${caseName}-${update.id}`;

/** What the client must receive for these updates, in order. */
function expected(caseName, updates) {
  return updates.map((update) => ({
    id: idOf(caseName, update),
    type: update.type ?? 'message',
    data: update.data.replace(/\r\n?/g, '\n'),
  }));
}

/** POSTs an update's form to the hub (publish) or to `<hub>/end`; returns the answer. */
async function post(url, caseName, update) {
  const form = new URLSearchParams({ topic: topicOf(caseName), id: idOf(caseName, update), data: update.data });
  if (update.type) form.append('type', update.type);
  const response = await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body: form });
  const answer = await response.text();
  if (response.status !== 200) throw new Error(`POST ${url} answered ${response.status}: ${answer}`);
  return answer;
}
const publish = (hub, caseName, update) => post(hub, caseName, update);
const end = (hub, caseName, update) => post(`${hub}/end`, caseName, update);

async function waitFor(condition, what, ms = 15000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** An EventSource on one topic, with everything it received and every connection attempt. */
class Subscription {
  constructor(hub, topic) {
    /** Events as the page would see them: lastEventId, type, data. */
    this.received = [];
    /** Each attempt: the Last-Event-ID it sent, the last id received before it, the answer. */
    this.attempts = [];
    /** The `error` events: their code (the HTTP status, when there is one) and readyState. */
    this.errors = [];
    this.opens = 0;
    /** While set, connection attempts wait for this promise. */
    this.hold = null;
    this.held = false;
    const recordingFetch = async (url, init) => {
      if (this.hold) {
        this.held = true;
        await this.hold;
        this.held = false;
      }
      const attempt = {
        lastEventId: init.headers['Last-Event-ID'] ?? null,
        lastReceived: this.received.at(-1)?.id ?? null,
        status: null,
        resumedFrom: null,
      };
      this.attempts.push(attempt);
      const response = await fetch(url, init);
      attempt.status = response.status;
      attempt.resumedFrom = response.headers.get('mercure-last-event-id');
      return response;
    };
    this.source = new EventSource(`${hub}?match=${encodeURIComponent(topic)}`, { fetch: recordingFetch });
    for (const type of TYPES) {
      this.source.addEventListener(type, (event) =>
        this.received.push({ id: event.lastEventId, type: event.type, data: event.data }),
      );
    }
    this.source.addEventListener('open', () => this.opens++);
    this.source.addEventListener('error', (event) =>
      this.errors.push({ code: event.code, readyState: this.source.readyState }),
    );
  }

  /** Holds connection attempts back until the returned function is called. */
  holdReconnects() {
    let release;
    this.hold = new Promise((resolve) => (release = resolve));
    return () => {
      this.hold = null;
      release();
    };
  }

  close() {
    this.source.close();
  }
}

const cases = {
  // Named events, multi-line data (LF, CRLF, lone CR, blank lines), ids, unicode: exactly.
  async events() {
    const want = expected('events', shared.events);
    const subscription = new Subscription(LIVE_HUB, topicOf('events'));
    try {
      await waitFor(() => subscription.opens === 1, 'the stream to open');
      for (const update of shared.events) await publish(LIVE_HUB, 'events', update);
      await waitFor(() => subscription.received.length >= want.length, `${want.length} events`);
      assert.deepEqual(subscription.received, want);
    } finally {
      subscription.close();
    }
  },

  // The hub closes streams 1 to 2 s after they open (--max-connection-age 1s, checked every
  // second) with a retry: hint; one update every 500 ms spans at least one drop, and some may
  // be published while the client is away. The client reconnects by itself with
  // Last-Event-ID and misses nothing.
  async 'resume-after-drop'() {
    const name = 'resume-after-drop';
    const want = expected(name, shared.events);
    const subscription = new Subscription(AGING_HUB, topicOf(name));
    try {
      await waitFor(() => subscription.opens === 1, 'the stream to open');
      for (const update of shared.events) {
        await publish(AGING_HUB, name, update);
        await sleep(500);
      }
      await waitFor(() => subscription.received.length >= want.length, `${want.length} events`);
      assert.deepEqual(subscription.received, want);
      const [first, ...reconnects] = subscription.attempts;
      assert.equal(first.lastEventId, null);
      assert.ok(
        reconnects.some((attempt) => attempt.lastReceived !== want.at(-1).id),
        'the hub dropped the stream before the last update',
      );
      for (const attempt of reconnects) {
        assert.equal(attempt.lastEventId, attempt.lastReceived, 'a reconnect sends the last id received');
        assert.equal(attempt.status, 200);
      }
    } finally {
      subscription.close();
    }
  },

  // The durable hub is stopped after the first half; the second half is published on the
  // restarted hub while the client is held away; the client resumes from redb history.
  async 'resume-after-restart'() {
    const name = 'resume-after-restart';
    const [firstHalf, secondHalf] = [shared.events.slice(0, 4), shared.events.slice(4)];
    const subscription = new Subscription(DURABLE_HUB, topicOf(name));
    try {
      await waitFor(() => subscription.opens === 1, 'the stream to open');
      for (const update of firstHalf) await publish(DURABLE_HUB, name, update);
      await waitFor(() => subscription.received.length >= firstHalf.length, `${firstHalf.length} events`);
      const release = subscription.holdReconnects();
      execFileSync(HUB_SH, ['stop', DURABLE_DIR], { stdio: 'inherit' });
      await waitFor(() => subscription.held, 'the client to try to reconnect');
      execFileSync(HUB_SH, ['start', DURABLE_DIR], { stdio: 'inherit' });
      for (const update of secondHalf) await publish(DURABLE_HUB, name, update);
      release();
      const want = expected(name, shared.events);
      await waitFor(() => subscription.received.length >= want.length, `${want.length} events`);
      assert.deepEqual(subscription.received, want);
      const resume = subscription.attempts.at(-1);
      const lastOfFirstHalf = idOf(name, firstHalf.at(-1));
      assert.equal(resume.lastEventId, lastOfFirstHalf);
      assert.equal(resume.status, 200);
      assert.equal(resume.resumedFrom, lastOfFirstHalf, 'the restarted hub found the id in its history');
    } finally {
      subscription.close();
    }
  },

  // The stream is ended with a final event: the client gets it, reconnects with its id, is
  // answered 204, and stops for good (readyState CLOSED, no further attempt).
  async 'stop-on-204'() {
    const name = 'stop-on-204';
    const subscription = new Subscription(LIVE_HUB, topicOf(name));
    try {
      await waitFor(() => subscription.opens === 1, 'the stream to open');
      await publish(LIVE_HUB, name, shared.events[0]);
      const answer = JSON.parse(await end(LIVE_HUB, name, shared.final));
      assert.equal(answer.closed, 1);
      await waitFor(() => subscription.errors.some((error) => error.code === 204), 'the 204');
      assert.deepEqual(subscription.received, expected(name, [shared.events[0], shared.final]));
      assert.equal(subscription.source.readyState, EventSource.CLOSED);
      assert.deepEqual(
        subscription.attempts.map(({ lastEventId, status }) => ({ lastEventId, status })),
        [
          { lastEventId: null, status: 200 },
          { lastEventId: idOf(name, shared.final), status: 204 },
        ],
      );
      // Several retry periods (300 ms) later, still no new attempt.
      await sleep(1200);
      assert.equal(subscription.attempts.length, 2, 'no attempt after the 204');
      assert.equal(subscription.source.readyState, EventSource.CLOSED);
    } finally {
      subscription.close();
    }
  },
};

let failures = 0;
for (const [name, run] of Object.entries(cases)) {
  try {
    await Promise.race([
      run(),
      sleep(60000).then(() => {
        throw new Error('the case did not finish within 60 s');
      }),
    ]);
    console.log(`PASS ${CLIENT} ${name}`);
  } catch (error) {
    failures++;
    console.log(`FAIL ${CLIENT} ${name}: ${String(error.message).replace(/\n/g, '\n    ')}`);
  }
}
process.exit(failures === 0 ? 0 : 1);
