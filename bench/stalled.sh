#!/usr/bin/env bash
# What subscribers that never read cost the ones that do: `herald bench` runs against a fresh
# `herald serve --memory` (release build), once without and once with `--stalled`, for each
# scenario, REPEAT times interleaved. Loopback only; every run is bounded by --timeout.
#
# Run with:  bash bench/stalled.sh            (REPEAT=2 STALLED=200 SUBS=1000 SECS=30)
# Output:    one JSON line per run in $OUT (default target/bench-stalled), and a table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-2}
STALLED=${STALLED:-200}
SUBS=${SUBS:-1000}
SECS=${SECS:-30}
RATE=${RATE:-100}
PORT=${PORT:-3911}
OUT=${OUT:-target/bench-stalled}
KEY=bench-stalled-key-long-enough-for-hs256
HERALD=target/release/herald
export HERALD_LOG=${HERALD_LOG:-warn}

[[ -x $HERALD ]] || cargo build --release -p herald
mkdir -p "$OUT"
ulimit -n 20000 2>/dev/null || true

HUB_PID=
cleanup() { [[ -n $HUB_PID ]] && kill "$HUB_PID" 2>/dev/null || true; }
trap cleanup EXIT

run() { # run NAME SIZE STALLED
    local name=$1 size=$2 stalled=$3
    "$HERALD" serve --memory --anonymous --no-pages --jwt-key "$KEY" --listen "127.0.0.1:$PORT" \
        >"$OUT/hub.log" 2>&1 &
    HUB_PID=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
    local args=(bench --url "http://127.0.0.1:$PORT" --jwt-key "$KEY" --json --subscribers "$SUBS"
        --events $((RATE * SECS)) --rate "$RATE" --size "$size" --publishers 4 --stalled "$stalled"
        --timeout $((SECS * 3 + 60))s --hub-pid "$HUB_PID")
    echo "herald ${args[*]/$KEY/\$KEY}" >>"$OUT/commands.txt"
    "$HERALD" "${args[@]}" >>"$OUT/$name.json" 2>"$OUT/$name.err" || echo "  ($name: bench failed: $(tail -1 "$OUT/$name.err"))"
    kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true; HUB_PID=
    sleep 1
}

rm -f "$OUT"/*.json "$OUT/commands.txt"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for _ in $(seq "$REPEAT"); do
    for size in 100 1000; do
        run "size$size-stalled0" "$size" 0
        run "size$size-stalled$STALLED" "$size" "$STALLED"
    done
done

echo "load average at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
print("| run | readers | stalled | delivered | p50 ms | p99 ms | p99.9 ms | max ms | hub CPU s | hub RSS connected → end (MiB) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for path in sorted(glob.glob(f"{out}/*.json")):
    name = os.path.basename(path)[:-5]
    for line in open(path):
        r = json.loads(line)
        rss = "-"
        if r.get("hub_rss_after_connect_kb") and r.get("hub_rss_end_kb"):
            rss = f"{r['hub_rss_after_connect_kb']/1024:.1f} → {r['hub_rss_end_kb']/1024:.1f}"
        print(f"| {name} | {r['subscribers_connected']} | {r['stalled_subscribers']} | {r['delivered']}/{r['expected']} "
              f"| {r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} | {r['latency_p999_ms']:.2f} | {r['latency_max_ms']:.2f} "
              f"| {r['hub_cpu_seconds']:.2f} | {rss} |")
print()
print("| configuration | runs | median p50 ms | median p99 ms | median p99.9 ms | median hub RSS growth while publishing (MiB) |")
print("|---|---|---|---|---|---|")
for path in sorted(glob.glob(f"{out}/*.json")):
    runs = [json.loads(line) for line in open(path)]
    med = lambda key: statistics.median(r[key] for r in runs)
    growth = statistics.median((r["hub_rss_end_kb"] - r["hub_rss_after_connect_kb"]) / 1024 for r in runs)
    print(f"| {os.path.basename(path)[:-5]} | {len(runs)} | {med('latency_p50_ms'):.1f} | {med('latency_p99_ms'):.1f} "
          f"| {med('latency_p999_ms'):.1f} | {growth:.1f} |")
PY
