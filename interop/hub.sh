#!/usr/bin/env bash
# One `herald serve` for the interop tests, kept in a state directory so that the runner and
# the tests (which restart the durable hub mid-test) can start and stop it by pid:
#
#   hub.sh init DIR -- SERVE_ARGS...  pick a free loopback port, save the arguments, start it
#   hub.sh start DIR                  start it again: same port, same arguments (same data dir)
#   hub.sh stop DIR                   stop the pid it started: SIGTERM, SIGKILL after 10 s
#
# DIR/url is the hub URL, DIR/pid the running hub's pid, DIR/hub.log its output.
# HERALD names the binary (default: target/debug/herald of this repository).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
HERALD=${HERALD:-$(dirname "$here")/target/debug/herald}

die() {
  echo "hub.sh: $*" >&2
  exit 1
}

# Whether a pid is a live process (a zombie, one that exited but was not yet reaped, is not).
alive() {
  local state
  [ -r "/proc/$1/stat" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)
  [ "$state" != Z ]
}

# Whether the pid in DIR/pid is a live `herald serve` (and not a reused pid now running
# something else).
running() {
  local dir=$1 pid
  [ -f "$dir/pid" ] || return 1
  pid=$(cat "$dir/pid")
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q ' serve '
}

start() {
  local dir=$1 port args
  running "$dir" && die "$dir: already running as pid $(cat "$dir/pid")"
  port=$(cat "$dir/port")
  mapfile -t args <"$dir/args"
  # Output goes to a file, not to our caller's pipes: a test that runs `hub.sh start` waits
  # for those pipes to close, which would be when the hub exits.
  NO_COLOR=1 "$HERALD" serve --listen "127.0.0.1:$port" "${args[@]}" </dev/null >>"$dir/hub.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
      return 0
    fi
    alive "$(cat "$dir/pid")" || { tail -n 20 "$dir/hub.log" >&2; die "$dir: herald serve exited"; }
    sleep 0.1
  done
  tail -n 20 "$dir/hub.log" >&2
  die "$dir: herald serve did not answer /healthz within 10 s"
}

stop() {
  local dir=$1 pid
  running "$dir" || { rm -f "$dir/pid"; return 0; }
  pid=$(cat "$dir/pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    running "$dir" || { rm -f "$dir/pid"; return 0; }
    sleep 0.1
  done
  echo "hub.sh: $dir: pid $pid ignored SIGTERM for 10 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

init() {
  local dir=$1
  shift
  [ "${1:-}" = -- ] && shift
  [ -x "$HERALD" ] || die "no herald binary at $HERALD (cargo build -p herald)"
  mkdir -p "$dir"
  # A port free now; the hub binds it a moment later and keeps it across restarts, because
  # the hub URL (and so the tokens' audience and the clients' URLs) names it.
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$dir/port"
  printf '%s\n' "$@" >"$dir/args"
  echo "http://127.0.0.1:$(cat "$dir/port")/.well-known/mercure" >"$dir/url"
  start "$dir"
}

command=${1:-}
[ $# -ge 2 ] || die "usage: hub.sh init DIR -- SERVE_ARGS... | start DIR | stop DIR"
shift
case $command in
  init) init "$@" ;;
  start) start "$1" ;;
  stop) stop "$1" ;;
  *) die "unknown command $command (init, start or stop)" ;;
esac
