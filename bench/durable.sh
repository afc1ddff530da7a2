#!/usr/bin/env bash
# Durable publish throughput (DESIGN.md §6: redb history, group commit, 64 concurrent
# publishers), interleaving hub binaries so that they share the machine's noise.
#
# Run with:   bench/durable.sh [RUNS] LABEL=BINARY [LABEL=BINARY ...]
# e.g.        bench/durable.sh 4 before=/tmp/herald-main after=target/release/herald
# Env:        HUB_ENV="HERALD_LOG=warn"  extra environment for the hub (default: the hub's own
#             default, the access log on at info, to a file);
#             QUIET_WAIT=45  seconds to wait, before each run, for running rustc processes to
#             finish (a shared build machine); the line says `quiet` or `busy`.
# Each run: a fresh hub on an empty data dir, then
#   herald bench --subscribers 0 --duration 10s --publishers 64 --timeout 120s
# One line per run: publishes/s, publish p50/p99, hub CPU-seconds and CPU-µs per publish, and
# the load average at the start.
set -euo pipefail
RUNS=3
if [[ ${1:-} =~ ^[0-9]+$ ]]; then RUNS=$1; shift; fi
(($# > 0)) || { sed -n 2,14p "$0"; exit 2; }
KEY=durable-bench-secret-0123456789abcdef0123
PORT=${PORT:-39181}
WORK=$(mktemp -d /tmp/herald-durable.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

for run in $(seq 1 "$RUNS"); do
    for pair in "$@"; do
        label=${pair%%=*} bin=${pair#*=}
        for _ in $(seq 1 "${QUIET_WAIT:-0}"); do pgrep -x rustc >/dev/null || break; sleep 1; done
        busy=$(pgrep -x rustc >/dev/null && echo busy || echo quiet)
        rm -rf "$WORK/redb"
        # shellcheck disable=SC2086 # HUB_ENV is a list of VAR=VALUE words
        env ${HUB_ENV:-} "$bin" serve --data-dir "$WORK/redb" --anonymous --jwt-key "$KEY" \
            --listen "127.0.0.1:$PORT" >"$WORK/hub.log" 2>&1 &
        hub=$!
        for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
        load=$(cut -d' ' -f1-3 /proc/loadavg)
        out=$(HERALD_LOG=warn "$bin" bench --url "http://127.0.0.1:$PORT" --json --subscribers 0 \
            --duration 10s --publishers 64 --timeout 120s --jwt-key "$KEY" --hub-pid "$hub" | tail -1)
        kill "$hub"; wait "$hub" 2>/dev/null || true
        python3 - "$label" "$run" "$load" "$busy" "$out" <<'PY'
import json, sys
label, run, load, busy, out = sys.argv[1:]
r = json.loads(out)
cpu = r.get("hub_cpu_seconds", 0)
print(f"{label} run {run}: {r['publishes_per_second']:,.0f}/s  p50 {r['publish_p50_ms']:.2f} ms"
      f"  p99 {r['publish_p99_ms']:.2f} ms  hub CPU {cpu:.2f} s"
      f" ({1e6 * cpu / max(1, r['events_published']):.1f} µs/publish)"
      f"  errors {r['publish_errors']}  load {load}  {busy}")
PY
        sleep 1
    done
done
