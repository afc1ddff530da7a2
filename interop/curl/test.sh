#!/usr/bin/env bash
# Interop: `curl -N` against the real hubs interop/run.sh starts. Run with interop/run.sh curl.
#
# curl prints the raw stream and knows nothing of SSE, so this test checks the bytes on the
# wire: every event exactly as expected_wire (below) renders events.json, after dropping the
# `retry:` blocks and `:` heartbeats the hub adds. curl does not reconnect either, so `follow`
# runs it again and again as an EventSource would: each time with `Last-Event-ID: <the last
# id: line it printed>`, after the last `retry:` time, until the hub answers 204.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
events_json=$here/../events.json
client=curl
for name in INTEROP_TOKEN INTEROP_LIVE_HUB INTEROP_AGING_HUB INTEROP_DURABLE_HUB \
  INTEROP_DURABLE_DIR INTEROP_HUB_SH INTEROP_WORK; do
  [ -n "${!name:-}" ] || { echo "$name is not set: run interop/run.sh" >&2; exit 2; }
done
work=$INTEROP_WORK/curl

topic_of() { echo "https://example.com/interop/$client/$1"; }

# The form bodies that publish events.json's events FROM..TO (1-based) in case CASE, one per
# line (jq's @uri escapes the line ends inside data).
forms() {
  local case=$1 from=$2 to=$3
  jq -r --arg topic "$(topic_of "$case")" --arg prefix "$client-$case-" --argjson from "$from" \
    --argjson to "$to" '.events[$from - 1:$to][]
      | "topic=\($topic | @uri)&id=\($prefix + .id | @uri)&data=\(.data | @uri)"
        + (if .type then "&type=\(.type | @uri)" else "" end)' "$events_json"
}

# The same for events.json's final event.
final_form() {
  jq -r --arg topic "$(topic_of "$1")" --arg prefix "$client-$1-" '.final
    | "topic=\($topic | @uri)&id=\($prefix + .id | @uri)&data=\(.data | @uri)&type=\(.type | @uri)"' \
    "$events_json"
}

# POSTs one form to URL; fails unless the hub answers 200.
post() {
  local url=$1 form=$2 status
  status=$(curl -sS -o "$work/post.answer" -w '%{http_code}' -H "Authorization: Bearer $INTEROP_TOKEN" \
    --data-raw "$form" "$url")
  [ "$status" = 200 ] || { echo "POST $url answered $status: $(cat "$work/post.answer")"; return 1; }
}

# Publishes events FROM..TO of case CASE to HUB, pausing PAUSE seconds after each.
publish() {
  local hub=$1 case=$2 from=$3 to=$4 pause=${5:-0} form
  while IFS= read -r form; do
    post "$hub" "$form" || return 1
    sleep "$pause"
  done < <(forms "$case" "$from" "$to")
}

# What the hub must write for events FROM..TO of case CASE (and the final event with
# FINAL=yes): id, event (none for a message), one data: line per line of the data.
expected_wire() {
  local case=$1 from=$2 to=$3 final=${4:-no}
  jq -r --arg prefix "$client-$case-" --argjson from "$from" --argjson to "$to" --arg final "$final" '
    (.events[$from - 1:$to] + (if $final == "yes" then [.final] else [] end))[]
    | "id: \($prefix + .id)",
      (if .type then "event: \(.type)" else empty end),
      (.data | gsub("\r\n|\r"; "\n") | split("\n")[] | "data: \(.)"),
      ""' "$events_json"
}

# The events curl printed in DIR, connection after connection: blocks that are only
# `retry:` or `:` lines are left out (awk's paragraph mode: one record per block).
events_of() {
  local dir=$1 n
  for n in $(seq 30); do
    if [ -e "$dir/$n.body" ]; then cat "$dir/$n.body"; fi
  done | awk 'BEGIN { RS = ""; ORS = "" }
    { out = ""; n = split($0, lines, "\n")
      for (i = 1; i <= n; i++) if (lines[i] !~ /^(retry:|:)/) out = out lines[i] "\n"
      if (out != "") print out "\n" }'
}

# follow URL DIR: curl as an EventSource (see the top). Connection n writes DIR/n.head and
# DIR/n.body and appends "n <Last-Event-ID sent or -> <status> <curl's exit code>" to
# DIR/connections. Stops after a 204, or when DIR/stop exists; while DIR/hold exists the next
# connection waits (and DIR/held says so).
follow() {
  local url=$1 dir=$2 n last retry_ms=3000 curl_pid status code
  mkdir -p "$dir"
  : >"$dir/connections"
  # Bounded: the hub drops a stream at most every second here.
  for n in $(seq 30); do
    while [ -e "$dir/hold" ]; do
      touch "$dir/held"
      sleep 0.05
    done
    rm -f "$dir/held"
    [ -e "$dir/stop" ] && return 0
    last=$(events_of "$dir" | grep '^id: ' | tail -n 1 | cut -c5-)
    local resume=()
    [ -n "$last" ] && resume=(-H "Last-Event-ID: $last")
    curl -sN "${resume[@]}" -D "$dir/$n.head" -o "$dir/$n.body" --max-time 60 "$url" &
    curl_pid=$!
    echo "$curl_pid" >"$dir/curl.pid"
    wait "$curl_pid"
    code=$?
    # From the head curl saved: a curl the test stopped prints no --write-out.
    status=$(head -n 1 "$dir/$n.head" 2>/dev/null | cut -d' ' -f2)
    echo "$n ${last:--} $status $code" >>"$dir/connections"
    [ "$status" = 204 ] && return 0
    [ -e "$dir/stop" ] && return 0
    retry_ms=$(last_retry "$dir/$n.body" "$retry_ms")
    sleep "$(awk -v ms="$retry_ms" 'BEGIN { print ms / 1000 }')"
  done
  echo "still no 204 after 30 connections" >&2
  return 1
}

# The last `retry:` value in a body, else DEFAULT.
last_retry() {
  local value
  value=$(grep '^retry: ' "$1" | tail -n 1 | cut -c8-)
  echo "${value:-$2}"
}

# Waits (up to 15 s) until the command succeeds.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 300); do
    "$@" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for $what"
  return 1
}

# Whether the stream in DIR holds at least N events.
has_events() { [ "$(events_of "$1" | grep -c '^id: ')" -ge "$2" ]; }

# Starts `follow` in the background on case CASE's topic at HUB, in $work/CASE.
start_follower() {
  local hub=$1 case=$2 dir=$work/$2
  mkdir -p "$dir"
  follow "$hub?match=$(jq -rn --arg topic "$(topic_of "$case")" '$topic | @uri')" "$dir" \
    >"$dir/follow.log" 2>&1 &
  echo $! >"$dir/follower.pid"
}

# Whether the follower of DIR has returned.
follower_done() { ! kill -0 "$(cat "$1/follower.pid")" 2>/dev/null; }

# Stops the follower of DIR if it still runs: DIR/stop, then its running curl (by pid).
stop_follower() {
  local dir=$1
  [ -e "$dir/follower.pid" ] && ! follower_done "$dir" || return 0
  touch "$dir/stop"
  kill "$(cat "$dir/curl.pid")" 2>/dev/null
  wait_for "the follower to stop" follower_done "$dir"
}

# Compares two texts; prints a diff and fails when they differ.
same() {
  local what=$1 got=$2 want=$3
  [ "$got" = "$want" ] && return 0
  echo "$what differs (- expected, + received):"
  diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/    /'
  return 1
}

# Named events, multi-line data (LF, CRLF, lone CR, blank lines), ids, unicode: the exact
# bytes the hub writes.
case_events() {
  local dir=$work/events
  start_follower "$INTEROP_LIVE_HUB" events
  wait_for "the stream to open" grep -q '^retry: ' "$dir/1.body" || return 1
  publish "$INTEROP_LIVE_HUB" events 1 8 || return 1
  wait_for "8 events" has_events "$dir" 8 || return 1
  stop_follower "$dir"
  same "the stream" "$(events_of "$dir")" "$(expected_wire events 1 8)"
}

# The hub closes streams 1 to 2 s after they open (--max-connection-age 1s, checked every
# second) with a retry: hint; one update every 500 ms spans at least one drop. Rerun with the
# last id it printed, curl misses nothing and gets nothing twice.
case_resume_after_drop() {
  local case=resume-after-drop dir=$work/resume-after-drop
  start_follower "$INTEROP_AGING_HUB" $case
  wait_for "the stream to open" grep -q '^retry: ' "$dir/1.body" || return 1
  publish "$INTEROP_AGING_HUB" $case 1 8 0.5 || return 1
  wait_for "8 events" has_events "$dir" 8 || return 1
  stop_follower "$dir"
  same "the stream" "$(events_of "$dir")" "$(expected_wire $case 1 8)" || return 1
  # Every connection but the last (which the test stopped) was answered 200 and ended by the
  # hub with a clean end of the chunked body (curl's exit code 0).
  if head -n -1 "$dir/connections" | awk '$3 != 200 || $4 != 0' | grep -q .; then
    echo "a connection failed (n, Last-Event-ID, status, curl exit code):"
    cat "$dir/connections"
    return 1
  fi
  if ! awk -v last="$client-$case-8:with:colons" 'NR > 1 && $2 != last' "$dir/connections" |
    grep -q .; then
    echo "no drop before the last update:"
    cat "$dir/connections"
    return 1
  fi
}

# The durable hub is stopped after the first half; the second half is published on the
# restarted hub while curl is not running; rerun with the last id it printed, curl gets the
# second half from redb history.
case_resume_after_restart() {
  local case=resume-after-restart dir=$work/resume-after-restart resumed
  start_follower "$INTEROP_DURABLE_HUB" $case
  wait_for "the stream to open" grep -q '^retry: ' "$dir/1.body" || return 1
  publish "$INTEROP_DURABLE_HUB" $case 1 4 || return 1
  wait_for "4 events" has_events "$dir" 4 || return 1
  touch "$dir/hold"
  "$INTEROP_HUB_SH" stop "$INTEROP_DURABLE_DIR" || return 1
  wait_for "curl to end" test -e "$dir/held" || return 1
  "$INTEROP_HUB_SH" start "$INTEROP_DURABLE_DIR" || return 1
  publish "$INTEROP_DURABLE_HUB" $case 5 8 || return 1
  rm "$dir/hold"
  wait_for "8 events" has_events "$dir" 8 || return 1
  stop_follower "$dir"
  same "the stream" "$(events_of "$dir")" "$(expected_wire $case 1 8)" || return 1
  same "the second connection (n, Last-Event-ID, status)" \
    "$(sed -n 2p "$dir/connections" | cut -d' ' -f1-3)" "2 $client-$case-4 200" || return 1
  resumed=$(grep -i '^mercure-last-event-id:' "$dir/2.head" | cut -d' ' -f2 | tr -d '\r')
  same "the restarted hub's Mercure-Last-Event-ID" "$resumed" "$client-$case-4"
}

# The stream is ended with a final event: curl prints it and exits 0 as the hub closes the
# stream; rerun with the final event's id, it is answered 204 with no body.
case_stop_on_204() {
  local case=stop-on-204 dir=$work/stop-on-204
  start_follower "$INTEROP_LIVE_HUB" $case
  wait_for "the stream to open" grep -q '^retry: ' "$dir/1.body" || return 1
  publish "$INTEROP_LIVE_HUB" $case 1 1 || return 1
  post "$INTEROP_LIVE_HUB/end" "$(final_form $case)" || return 1
  jq -e '.closed == 1' "$work/post.answer" >/dev/null || { cat "$work/post.answer"; return 1; }
  wait_for "the 204" follower_done "$dir" || return 1
  same "the stream" "$(events_of "$dir")" "$(expected_wire $case 1 1 yes)" || return 1
  same "the connections (n, Last-Event-ID, status, curl exit code)" "$(cat "$dir/connections")" \
    "1 - 200 0"$'\n'"2 $client-$case-bye 204 0" || return 1
  [ ! -s "$dir/2.body" ] || { echo "the 204 had a body: $(cat "$dir/2.body")"; return 1; }
}

mkdir -p "$work"
failures=0
for case in events resume-after-drop resume-after-restart stop-on-204; do
  # In this shell, not a $(...) subshell: the followers are its children, and their output
  # goes to files, so nothing waits on a pipe they hold.
  if "case_${case//-/_}" >"$work/$case.out" 2>&1; then
    echo "PASS $client $case"
  else
    failures=$((failures + 1))
    echo "FAIL $client $case: $(sed '2,$s/^/    /' "$work/$case.out")"
  fi
  stop_follower "$work/$case" >/dev/null 2>&1
done
[ "$failures" -eq 0 ]
