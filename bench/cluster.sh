#!/usr/bin/env bash
# Cluster benchmark: one Herald node with local (redb) history, one node on Redis, and two
# nodes on Redis with the subscribers split between them, same load generator (`herald
# bench`), same run. Appends a `## Cluster` section to bench/RESULTS.md.
#
# Run with:   bench/cluster.sh                 (full sizes, a few minutes)
#             SCALE=0.1 bench/cluster.sh       (a quick run at a tenth of the sizes)
# Overrides:  SUBS_BURST EVENTS_BURST SUBS_STEADY STEADY_SECS DURABLE_SECS SKIP_BUILD=1
#             RESULTS=path
#
# Redis is a redis-server this script starts on a free loopback port (no persistence, so
# the figures measure Herald and the protocol, not a disk), and stops. Every bench run is
# bounded by --timeout; every hub is stopped by pid after each scenario.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=${SCALE:-1}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
SUBS_BURST=${SUBS_BURST:-$(scale 10000)}
EVENTS_BURST=${EVENTS_BURST:-100}
SUBS_STEADY=${SUBS_STEADY:-$(scale 1000)}
STEADY_SECS=${STEADY_SECS:-5}
DURABLE_SECS=${DURABLE_SECS:-10}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
KEY=bench-secret-$$
HERALD=$ROOT/target/release/herald

ulimit -n "$(ulimit -Hn)" || true

if [[ -z ${SKIP_BUILD:-} ]]; then
    (cd "$ROOT" && cargo build --release -p herald)
fi
command -v redis-server >/dev/null || { apt-get update; apt-get install -y redis-server; }

WORK=$(mktemp -d /tmp/herald-cluster-bench.XXXXXX)
OUT=$WORK/out
mkdir -p "$OUT"
PIDS=()
REDIS_PID=
stop_hubs() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
cleanup() {
    stop_hubs
    if [[ -n $REDIS_PID ]]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
wait_port "$REDIS_PORT"

# start_hubs SETUP: SETUP is `redb`, `redis-1` or `redis-2`; sets URLS (bench flags) and PIDS.
start_hubs() {
    local setup=$1 count=1 transport=()
    case $setup in
        redb) ;;
        redis-1) transport=(--transport "redis://127.0.0.1:$REDIS_PORT" --cluster-name "bench-$RANDOM") ;;
        redis-2) count=2; transport=(--transport "redis://127.0.0.1:$REDIS_PORT" --cluster-name "bench-$RANDOM") ;;
    esac
    URLS=()
    for node in $(seq "$count"); do
        local port
        port=$(free_port)
        HERALD_LOG=warn "$HERALD" serve --listen "127.0.0.1:$port" --jwt-key "$KEY" --anonymous \
            --data-dir "$WORK/data-$setup-$node-$RANDOM" \
            "${transport[@]}" >"$WORK/hub-$setup-$node.log" 2>&1 &
        PIDS+=($!)
        wait_port "$port"
        URLS+=(--url "http://127.0.0.1:$port")
    done
}

COMMANDS=()
# scenario NAME SETUP bench-args…
scenario() {
    local name=$1 setup=$2
    shift 2
    start_hubs "$setup"
    local pid_args=()
    for pid in "${PIDS[@]}"; do pid_args+=(--hub-pid "$pid"); done
    echo "== $name / $setup" >&2
    COMMANDS+=("$name/$setup: herald bench ${URLS[*]} $* --jwt-key \$KEY --hub-pid <pids>")
    if ! "$HERALD" bench "${URLS[@]}" --json "$@" --jwt-key "$KEY" "${pid_args[@]}" >"$OUT/$name-$setup.json" 2>"$OUT/$name-$setup.err"; then
        COMMANDS+=("  (bench exited non-zero: $(tail -1 "$OUT/$name-$setup.err"))")
    fi
    stop_hubs
}

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for setup in redb redis-1 redis-2; do
    scenario "a-burst" "$setup" --subscribers "$SUBS_BURST" --events "$EVENTS_BURST" --rate 0 --publishers 4 --timeout 300s
    scenario "b-steady" "$setup" --subscribers "$SUBS_STEADY" --events $((100 * STEADY_SECS)) --rate 100 --publishers 4 --timeout 120s
    scenario "e-durable" "$setup" --subscribers 0 --duration "${DURABLE_SECS}s" --publishers 64 --timeout 120s
done

python3 - "$OUT" "$RESULTS" "$LOAD" "$SCALE" "${COMMANDS[@]}" <<'PY'
import json, os, sys, datetime
out, results, load, scale, commands = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
names = {"a-burst": "(a) burst", "b-steady": "(b) 1k × 100/s", "e-durable": "(e) publish, 64 publishers"}
setups = {"redb": "1 node, redb", "redis-1": "1 node, Redis", "redis-2": "2 nodes, Redis"}
rows = []
for scenario in names:
    for setup in setups:
        path = os.path.join(out, f"{scenario}-{setup}.json")
        try:
            r = json.load(open(path))
        except (OSError, ValueError):
            rows.append(f"| {names[scenario]} | {setups[setup]} | failed | | | | | |")
            continue
        per_cpu = r.get("deliveries_per_hub_cpu_second")
        rows.append(
            f"| {names[scenario]} | {setups[setup]} | {r['subscribers_connected']:,}/{r['subscribers_requested']:,} "
            f"| {r['delivered']:,}/{r['expected']:,} | {r['hub_cpu_seconds'] or 0:.2f} "
            f"| {f'{per_cpu:,.0f}' if per_cpu else '-'} "
            f"| {r['latency_p50_ms']:.1f} / {r['latency_p99_ms']:.1f} / {r['latency_max_ms']:.1f} "
            f"| {r['publishes_per_second']:,.0f} (p99 {r['publish_p99_ms']:.1f} ms) |"
        )
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
text = f"""
## Cluster ({now}, SCALE={scale})

Machine: 2 cores; load average at start {load} (hubs, Redis and the load generator share
these cores; other work may have been running). Produced by `bench/cluster.sh`; each row is
fresh hubs, Redis without persistence started by the script. With 2 nodes the subscribers are
split between them and the events are published to the first; hub CPU is both nodes' sum
(Redis's own CPU is not counted). 100-byte events.

| scenario | setup | subscribers | delivered/expected | hub CPU s | deliveries per hub CPU-s | latency ms p50 / p99 / max | publishes/s |
|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n\nCommands (`$KEY` is the hubs' --jwt-key):\n\n```\n" + "\n".join(commands) + "\n```\n"
with open(results, "a") as f:
    f.write(text)
print(text)
PY
