# Shell helpers shared by the benchmark scripts (sourced, not run).

# scale N: N times $SCALE, rounded, at least 1 (quick runs at a fraction of the sizes).
scale() { python3 -c "import sys; print(max(1, int(round(float(sys.argv[1]) * float(sys.argv[2])))))" "$1" "$SCALE"; }

# wait_port PORT: waits up to 10 s until something accepts connections on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}
