#!/bin/sh
# homestead against the limit of its own TLS + HTTP stack, measured alternately by the
# same load generator in one run, and the ratio of their throughputs.
#
#   examples/loadgen/limit.sh [ROUNDS] [-- LOADGEN OPTIONS]
#
# First homestead answers the benchmark review once and its response body is saved;
# then ROUNDS times (default 3): homestead, then the limit server (examples/loadgen/limit.rs,
# answering the saved bytes), each spawned and driven by `loadgen` with the same options
# (default: 8 connections, closed loop, 10 s after a 2 s warm-up). Run from the workspace
# root after
#
#   cargo build --release --bin homestead --example loadgen --example limit
#
# TARGET (default: target/release, or $CARGO_TARGET_DIR/release) names the binaries.
set -eu
rounds=${1:-3}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || set -- --connections 8 --duration 10s
target=${TARGET:-${CARGO_TARGET_DIR:-target}/release}
loadgen=$target/examples/loadgen
homestead=$target/homestead
limit=$target/examples/limit
for bin in "$loadgen" "$homestead" "$limit"; do
    [ -x "$bin" ] || { echo "$bin missing: build it first (see $0)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$loadgen" --spawn "$homestead" --connections 1 --warmup 0s --duration 1s \
    --save-response "$work/response.json" >/dev/null
echo "limit answers homestead's response: $(wc -c <"$work/response.json") bytes"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

total_h=0
total_l=0
i=1
while [ "$i" -le "$rounds" ]; do
    for server in homestead limit; do
        if [ $server = homestead ]; then bin=$homestead; else bin=$limit; fi
        LIMIT_RESPONSE="$work/response.json" "$loadgen" --spawn "$bin" "$@" >"$work/run.txt" 2>&1 ||
            { cat "$work/run.txt" >&2; exit 1; }
        rate=$(sed -n 's/.*requests\/s: \([0-9]*\).*/\1/p' "$work/run.txt")
        errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$work/run.txt")
        p99=$(sed -n 's/.*p99: \([0-9.]* ms\).*/\1/p' "$work/run.txt")
        rss=$(sed -n 's/.*VmHWM): \([0-9]* kB\).*/\1/p' "$work/run.txt")
        cpu=$(sed -n 's/.*(\([0-9]*\)% of one core) = \([0-9]*\) requests per CPU-second/\1 % of a core, \2 requests per CPU-second/p' "$work/run.txt")
        printf 'round %d  %-9s  %6s requests/s  errors %s  p99 %s  peak RSS %s  server CPU %s\n' \
            "$i" "$server" "$rate" "$errors" "$p99" "$rss" "$cpu"
        [ "$i" -eq 1 ] && echo "round 1  $server TLS: $(sed -n 's/^TLS: //p' "$work/run.txt")"
        if [ $server = homestead ]; then
            total_h=$((total_h + rate))
            ratio_h=$rate
        else
            total_l=$((total_l + rate))
            echo "round $i  ratio homestead/limit: $(awk "BEGIN{printf \"%.2f\", $ratio_h/$rate}")"
        fi
    done
    i=$((i + 1))
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "all rounds: homestead $((total_h / rounds))/s, limit $((total_l / rounds))/s, ratio $(awk "BEGIN{printf \"%.2f\", $total_h/$total_l}")"
