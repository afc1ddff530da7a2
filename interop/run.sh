#!/usr/bin/env bash
# Interoperability tests: SSE clients nobody here wrote, against a real `herald serve`.
#
#   interop/run.sh [node] [python] [curl]      (default: all three)
#
# Builds the herald binary (or uses $HERALD), starts three hubs on free loopback ports, sets up
# each client (npm ci in interop/node, a venv in interop/python/.venv), runs each client's
# test, prints PASS or FAIL per client and case, stops the hubs it started (by pid) and exits
# non-zero on any failure. See interop/README.md for the cases and what each client does.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(node python curl)

if [ -z "${HERALD:-}" ]; then
  echo "== building herald"
  (cd "$root" && cargo build -q -p herald) || exit 1
  HERALD=$root/target/debug/herald
fi
export HERALD

work=$(mktemp -d "${TMPDIR:-/tmp}/herald-interop.XXXXXX")
passed=0
failed=0

stop_hubs() {
  local dir
  for dir in "$work"/hub-*; do
    [ -d "$dir" ] && "$here/hub.sh" stop "$dir"
  done
}
trap stop_hubs EXIT

# Three hubs, each for the cases that need its settings. Subscribers are anonymous; publishing
# needs the token minted below (one audience for all three, so one token).
secret=interop-secret-long-enough-for-hs256
common=(--jwt-key "$secret" --jwt-audience herald-interop --anonymous --no-pages)
echo "== starting hubs (logs in $work)"
# events, stop-on-204: a plain hub; a short retry so that clients meet the 204 quickly.
"$here/hub.sh" init "$work/hub-live" -- --memory --retry 300ms "${common[@]}" || exit 1
# resume-after-drop: the hub closes every stream after 1 s, with a retry: hint.
"$here/hub.sh" init "$work/hub-aging" -- --memory --retry 100ms --max-connection-age 1s \
  "${common[@]}" || exit 1
# resume-after-restart: history in redb, so it survives the restart the test does.
"$here/hub.sh" init "$work/hub-durable" -- --data-dir "$work/hub-durable/data" --retry 300ms \
  --shutdown-grace 1s "${common[@]}" || exit 1

INTEROP_TOKEN=$("$HERALD" token --key "$secret" --audience herald-interop --publish '*' --ttl 2h) ||
  exit 1
INTEROP_LIVE_HUB=$(cat "$work/hub-live/url")
INTEROP_AGING_HUB=$(cat "$work/hub-aging/url")
INTEROP_DURABLE_HUB=$(cat "$work/hub-durable/url")
INTEROP_DURABLE_DIR=$work/hub-durable
INTEROP_HUB_SH=$here/hub.sh
INTEROP_WORK=$work
export INTEROP_TOKEN INTEROP_LIVE_HUB INTEROP_AGING_HUB INTEROP_DURABLE_HUB INTEROP_DURABLE_DIR \
  INTEROP_HUB_SH INTEROP_WORK

# Installs what a client needs; its output goes to the client's log.
set_up() {
  case $1 in
    node)
      if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "node and npm are needed (apt-get install nodejs npm)"
        return 1
      fi
      # npm ci again only when the lock file changed since the last install.
      (cd "$here/node" && {
        [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
      })
      ;;
    python)
      [ -x "$here/python/.venv/bin/python" ] || python3 -m venv "$here/python/.venv" || {
        echo "python3 -m venv failed (apt-get install python3-venv)"
        return 1
      }
      "$here/python/.venv/bin/pip" install --quiet --disable-pip-version-check \
        -r "$here/python/requirements.txt"
      ;;
    curl)
      if ! command -v curl >/dev/null || ! command -v jq >/dev/null; then
        echo "curl and jq are needed (apt-get install curl jq)"
        return 1
      fi
      ;;
    *)
      echo "unknown client $1 (node, python or curl)"
      return 1
      ;;
  esac
}

for client in "${clients[@]}"; do
  echo "== $client"
  log=$work/$client.log
  if ! set_up "$client" >"$log" 2>&1; then
    cat "$log"
    echo "FAIL $client setup"
    failed=$((failed + 1))
    continue
  fi
  # Each test prints one `PASS <client> <case>` or `FAIL <client> <case>: why` line per case;
  # a test that dies or hangs (5 minutes) is a failure of its own.
  case $client in
    node) command=(node "$here/node/test.mjs") ;;
    python) command=("$here/python/.venv/bin/python" "$here/python/test_httpx_sse.py") ;;
    curl) command=(bash "$here/curl/test.sh") ;;
  esac
  timeout -k 5 300 "${command[@]}" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  passes=$(grep -c '^PASS ' "$log")
  fails=$(grep -c '^FAIL ' "$log")
  passed=$((passed + passes))
  failed=$((failed + fails))
  if [ "$status" -ne 0 ] && [ "$fails" -eq 0 ]; then
    echo "FAIL $client: the test exited with status $status without saying which case failed"
    failed=$((failed + 1))
  elif [ "$status" -eq 0 ] && [ "$passes" -eq 0 ]; then
    echo "FAIL $client: the test ran no case"
    failed=$((failed + 1))
  fi
done

stop_hubs
if [ "$failed" -gt 0 ]; then
  for dir in "$work"/hub-*; do
    echo "== last lines of $dir/hub.log"
    tail -n 15 "$dir/hub.log"
  done
  echo "(everything is kept in $work)"
else
  rm -rf "$work"
fi
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
