#!/usr/bin/env bash
# Soak test: a release `herald serve` (redb history in a temporary directory) under 30 minutes
# of churn from `herald soak`: subscribers connecting and leaving continuously (a wave between
# 200 and 2000 connected), 40 publishes/s over 20 public and 20 private topics, a quarter of the
# subscribers resuming with Last-Event-ID. Every delivery is checked (no gap, no repeat, resumes
# start right after their id, no private update to anonymous subscribers); the hub's VmRSS and
# open descriptors are sampled every minute and printed as a table; at the end the hub must
# report no connection left, hold no more descriptors than before, and its RSS must be flat.
# Exits non-zero otherwise. Not part of CI (it takes DURATION plus the build).
#
# Run with:   bench/soak.sh                      (30 minutes)
#             DURATION=5m bench/soak.sh          (a short run; the RSS verdict needs >= 15 samples)
# Overrides:  DURATION PORT HISTORY HERALD=path SKIP_BUILD=1; any further arguments go to `herald soak`
#             (e.g. --rate 100 --max-subscribers 4000 --sample-every 30s).
#
# Everything listens on 127.0.0.1. The hub is stopped by its pid and the temporary directory
# removed on exit; `herald soak` is bounded by DURATION plus the longest subscriber lifetime.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-30m}
PORT=${PORT:-39093}
HISTORY=${HISTORY:-10000}
HERALD=${HERALD:-$ROOT/target/release/herald}
KEY=soak-secret-$$-$RANDOM$RANDOM

# Hub and soak each hold one descriptor per subscriber.
ulimit -n "$(ulimit -Hn)" || true

if [[ -z ${SKIP_BUILD:-} ]]; then
    (cd "$ROOT" && cargo build --release -p herald)
fi

WORK=$(mktemp -d /tmp/herald-soak.XXXXXX)
HUB_PID=
cleanup() {
    if [[ -n $HUB_PID ]] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill "$HUB_PID" 2>/dev/null || true
        wait "$HUB_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

HERALD_LOG=${HERALD_LOG:-warn} "$HERALD" serve \
    --listen "127.0.0.1:$PORT" \
    --data-dir "$WORK/data" \
    --history-size "$HISTORY" \
    --jwt-key "$KEY" \
    --anonymous \
    --no-pages \
    >"$WORK/hub.log" 2>&1 &
HUB_PID=$!

for _ in $(seq 100); do
    if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$HUB_PID" 2>/dev/null; then
        cat "$WORK/hub.log" >&2
        echo "soak: the hub exited before it was ready" >&2
        exit 1
    fi
    sleep 0.1
done

echo "soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "soak: hub $("$HERALD" --version) pid $HUB_PID, redb history ($HISTORY updates) in $WORK/data"
status=0
HERALD_LOG=${HERALD_LOG:-warn} "$HERALD" soak \
    --url "http://127.0.0.1:$PORT" \
    --hub-pid "$HUB_PID" \
    --jwt-key "$KEY" \
    --duration "$DURATION" \
    "$@" || status=$?
echo "soak: redb file $(du -k "$WORK/data/history.redb" | cut -f1) KiB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if ! kill -0 "$HUB_PID" 2>/dev/null; then
    echo "soak: the hub died during the run" >&2
    status=1
fi
if grep -qiE 'panic|error' "$WORK/hub.log"; then
    echo "soak: the hub logged errors:" >&2
    grep -iE 'panic|error' "$WORK/hub.log" | head -20 >&2
    status=1
fi
exit $status
