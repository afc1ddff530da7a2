#!/usr/bin/env bash
# Fan-out benchmark: Herald side by side with Nchan (nginx + libnginx-mod-nchan) and a
# hand-written Node.js server (bench/peers/node-sse.js), same machine, same load generator
# (`herald bench`), same run. Appends a `## Fan-out` section to
# bench/RESULTS.md.
#
# Run with:   bench/compare.sh                 (full sizes, several minutes)
#             SCALE=0.1 bench/compare.sh       (a quick run at a tenth of the sizes)
# Overrides:  SUBS_BURST SUBS_STEADY_BIG SUBS_STEADY_SMALL SUBS_IDLE SUBS_TOPICS EVENTS_BURST
#             EVENTS_TOPICS STEADY_BIG_SECS STEADY_SMALL_SECS DURABLE_SECS IDLE_SECS
#             HERALD_PORT NCHAN_PORT NODE_PORT SKIP_NCHAN=1 SKIP_NODE=1 SKIP_BUILD=1 RESULTS=path
#
# Everything listens on 127.0.0.1; every bench run is bounded by --timeout; both hubs are
# stopped by pid after each scenario.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=${SCALE:-1}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
SUBS_BURST=${SUBS_BURST:-$(scale 10000)}
EVENTS_BURST=${EVENTS_BURST:-100}
SUBS_STEADY_BIG=${SUBS_STEADY_BIG:-$(scale 10000)}
STEADY_BIG_SECS=${STEADY_BIG_SECS:-20}
SUBS_STEADY_SMALL=${SUBS_STEADY_SMALL:-$(scale 1000)}
STEADY_SMALL_SECS=${STEADY_SMALL_SECS:-5}
SUBS_IDLE=${SUBS_IDLE:-$(scale 19000)}
IDLE_SECS=${IDLE_SECS:-5}
SUBS_TOPICS=${SUBS_TOPICS:-$(scale 10000)}
EVENTS_TOPICS=${EVENTS_TOPICS:-$(scale 20000)}
DURABLE_SECS=${DURABLE_SECS:-10}
HERALD_PORT=${HERALD_PORT:-39081}
NCHAN_PORT=${NCHAN_PORT:-39082}
NODE_PORT=${NODE_PORT:-39083}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
KEY=bench-secret-$$
HERALD=$ROOT/target/release/herald

# The hub and the bench each hold one fd per subscriber.
ulimit -n "$(ulimit -Hn)" || true

if [[ -z ${SKIP_BUILD:-} ]]; then
    (cd "$ROOT" && cargo build --release -p herald)
fi

if [[ -z ${SKIP_NCHAN:-} ]]; then
    if ! command -v nginx >/dev/null || ! ls /usr/lib/nginx/modules/ngx_nchan_module.so >/dev/null 2>&1; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y nginx libnginx-mod-nchan
    fi
fi

if [[ -z ${SKIP_NODE:-} ]] && ! command -v node >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs
fi

WORK=$(mktemp -d /tmp/herald-compare.XXXXXX)
OUT=$WORK/out
mkdir -p "$OUT" "$WORK/nginx"
HUB_PID=
cleanup() {
    if [[ -n $HUB_PID ]]; then kill "$HUB_PID" 2>/dev/null || true; wait "$HUB_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT


cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile 20000;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    nchan_shared_memory_size 512M;
    server {
        listen 127.0.0.1:$NCHAN_PORT backlog=4096;
        location = /sub {
            nchan_subscriber eventsource;
            nchan_channel_id \$arg_id;
        }
        location = /pub {
            nchan_publisher;
            nchan_channel_id \$arg_id;
            nchan_message_buffer_length 100;
        }
    }
}
EOF

# Request logs off on both sides (nginx: access_log off; Herald logs each request at info).
export HERALD_LOG=${HERALD_LOG:-warn}

# start_hub herald|herald-redb|nchan: starts a fresh hub, sets HUB_PID and PIDS (all its processes).
start_hub() {
    case $1 in
    herald)
        "$HERALD" serve --memory --anonymous --jwt-key "$KEY" --listen "127.0.0.1:$HERALD_PORT" \
            >"$WORK/herald.log" 2>&1 &
        HUB_PID=$!; PORT=$HERALD_PORT ;;
    herald-redb)
        rm -rf "$WORK/redb"
        "$HERALD" serve --data-dir "$WORK/redb" --anonymous --jwt-key "$KEY" --listen "127.0.0.1:$HERALD_PORT" \
            >"$WORK/herald.log" 2>&1 &
        HUB_PID=$!; PORT=$HERALD_PORT ;;
    node)
        node "$ROOT/bench/peers/node-sse.js" "$NODE_PORT" >"$WORK/node.log" 2>&1 &
        HUB_PID=$!; PORT=$NODE_PORT ;;
    nchan)
        nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx/stdout.log" 2>&1 &
        HUB_PID=$!; PORT=$NCHAN_PORT ;;
    esac
    wait_port "$PORT"
    PIDS=("--hub-pid" "$HUB_PID")
    if [[ $1 == nchan ]]; then
        sleep 0.3
        for child in $(pgrep -P "$HUB_PID"); do PIDS+=("--hub-pid" "$child"); done
    fi
}

stop_hub() {
    kill "$HUB_PID" 2>/dev/null || true
    wait "$HUB_PID" 2>/dev/null || true
    HUB_PID=
    sleep 1 # let TIME_WAIT sockets and the port settle
}

COMMANDS=$WORK/commands.txt
# run NAME HUB ARGS...: one fresh hub, one bench run, JSON kept in $OUT/NAME.HUB.json.
run() {
    local name=$1 hub=$2; shift 2
    local target=herald
    [[ $hub == nchan ]] && target=nchan
    start_hub "$hub"
    local args=(bench --target "$target" --url "http://127.0.0.1:$PORT" --json "$@")
    # The Node.js peer speaks the same subset of the protocol and ignores the token.
    [[ $target == herald ]] && args+=(--jwt-key "$KEY")
    echo "$name/$hub: herald ${args[*]/$KEY/\$KEY} --hub-pid <pids>" | tee -a "$COMMANDS"
    if ! "$HERALD" "${args[@]}" "${PIDS[@]}" >"$OUT/$name.$hub.json" 2>"$OUT/$name.$hub.err"; then
        echo "  (bench exited non-zero: $(tail -1 "$OUT/$name.$hub.err"))" | tee -a "$COMMANDS"
    fi
    tail -1 "$OUT/$name.$hub.json" || true
    stop_hub
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
HUBS=()
[[ -z ${SKIP_NCHAN:-} ]] && HUBS+=(nchan)
[[ -z ${SKIP_NODE:-} ]] && HUBS+=(node)
HUBS+=(herald)

for hub in "${HUBS[@]}"; do
    run a-burst "$hub" --subscribers "$SUBS_BURST" --events "$EVENTS_BURST" --rate 0 --publishers 4 --timeout 300s
    run b-steady-10k "$hub" --subscribers "$SUBS_STEADY_BIG" --events $((5 * STEADY_BIG_SECS)) --rate 5 --publishers 4 --timeout 300s
    run b-steady-1k "$hub" --subscribers "$SUBS_STEADY_SMALL" --events $((100 * STEADY_SMALL_SECS)) --rate 100 --publishers 8 --timeout 120s
    run c-idle "$hub" --subscribers "$SUBS_IDLE" --idle "${IDLE_SECS}s" --timeout 300s
    if [[ $hub == herald ]]; then
        run d-topics "$hub" --subscribers "$SUBS_TOPICS" --topics "$SUBS_TOPICS" --wildcard --events "$EVENTS_TOPICS" --publishers 8 --timeout 300s
    else
        run d-topics "$hub" --subscribers "$SUBS_TOPICS" --topics "$SUBS_TOPICS" --events "$EVENTS_TOPICS" --publishers 8 --timeout 300s
    fi
done
run e-durable herald-redb --subscribers 0 --duration "${DURABLE_SECS}s" --publishers 64 --timeout 120s

python3 - "$OUT" "$RESULTS" "$COMMANDS" "$LOAD_START" "$SCALE" <<'PY'
import json, os, sys, glob, subprocess, datetime
out, results, commands, load, scale = sys.argv[1:]
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
nproc = os.cpu_count()
rows = []
def f(v, d=1):
    if v is None: return "-"
    if isinstance(v, float): return f"{v:,.{d}f}"
    return f"{v:,}"
names = {"a-burst": "(a) burst", "b-steady-10k": "(b) 10k × 5/s", "b-steady-1k": "(b) 1k × 100/s",
         "c-idle": "(c) idle", "d-topics": "(d) own topics", "e-durable": "(e) durable publish"}
for name in names:
    for hub in ("nchan", "node", "herald", "herald-redb"):
        path = f"{out}/{name}.{hub}.json"
        if not os.path.exists(path): continue
        try:
            r = json.loads(open(path).read().strip().splitlines()[-1])
        except Exception:
            rows.append(f"| {names[name]} | {hub} | run failed: {open(path.replace('.json', '.err')).read().strip().splitlines()[-1:]} |" + " |" * 10)
            continue
        rows.append("| " + " | ".join([
            names[name], hub,
            f"{r['subscribers_connected']:,}/{r['subscribers_requested']:,}",
            f"{r['delivered']:,}/{r['expected']:,}",
            f(r.get("deliveries_per_second"), 0),
            f(r.get("hub_cpu_seconds"), 2),
            f(r.get("deliveries_per_hub_cpu_second"), 0),
            f"{r['latency_p50_ms']:.1f} / {r['latency_p99_ms']:.1f} / {r['latency_p999_ms']:.1f} / {r['latency_max_ms']:.1f}",
            f((r.get("hub_rss_per_subscriber_bytes") or 0) / 1024, 1) if r.get("hub_rss_per_subscriber_bytes") is not None else "-",
            f(r.get("publishes_per_second"), 0),
            f"{r['publish_p99_ms']:.1f}",
        ]) + " |")
new = not os.path.exists(results)
with open(results, "a") as fh:
    if new:
        fh.write("# Benchmark results\n\nRecorded by the scripts in `bench/`, newest last.\n")
    fh.write(f"\n## Fan-out ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, SCALE={scale})\n\n")
    fh.write(f"Machine: {nproc} cores, {model}; load average at start {load} (the hub under test and\n")
    fh.write("the load generator share these cores; other builds may have been running). Peers: nchan\n")
    fh.write("(nginx + Nchan, 2 workers, in memory), node (bench/peers/node-sse.js, one process). Produced by\n")
    fh.write(f"`SCALE={scale} bench/compare.sh`; each row is a fresh hub. 100-byte events.\n\n")
    fh.write("| scenario | hub | subscribers | delivered/expected | deliveries/s | hub CPU s | deliveries per hub CPU-s | latency ms p50 / p99 / p99.9 / max | hub RSS KiB per subscriber | publishes/s | publish p99 ms |\n")
    fh.write("|---|---|---|---|---|---|---|---|---|---|---|\n")
    fh.write("\n".join(rows) + "\n\nCommands (`$KEY` is the hub's --jwt-key):\n\n```\n")
    fh.write(open(commands).read())
    fh.write("```\n")
print(f"appended to {results}")
PY
