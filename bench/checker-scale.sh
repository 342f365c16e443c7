#!/usr/bin/env bash
# The checker's scale benchmark (BenchmarkScale10k in ./checker: 10,000 checks
# at a 1 s interval against loopback backends), run beside DNS load: CoreDNS
# with a healthfailover Corefile (1,000 record sets, 100 checks every 1 s)
# answers dnsperf at a steady rate (LOAD_QPS, default 10000) for the whole
# benchmark. By default the benchmark also runs once alone first, so that the
# table shows what the load costs it (--no-baseline skips that run).
#
#   bench/checker-scale.sh [--no-baseline] [--smoke]
#
# The benchmark is `go test -run '^$' -bench Scale10k -benchtime 1x ./checker/`,
# compiled first (go test -c) so that the compiler does not run beside the
# load, then run as that binary with the same flags from ./checker.
# HEALTHFAILOVER_SCALE_KIND and HEALTHFAILOVER_SCALE_SECONDS pass through to
# the benchmark. --smoke: 2 s of measurement and no baseline.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

baseline=1
while [ $# -gt 0 ]; do
    case "$1" in
    --no-baseline) baseline=0 ;;
    --smoke)
        baseline=0
        export HEALTHFAILOVER_SCALE_SECONDS=2
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument $1" ;;
    esac
    shift
done
load_qps=${LOAD_QPS:-10000}
port=${BENCH_PORT:-15320}
dns_port=$port ready_port=$((port + 1))

ensure_tools
bench_init
started=$(date +%s)
build_bins backends
log "compiling the checker's tests"
(cd "$BENCH_ROOT" && go test -c -o "$BENCH_WORK/checker.test" ./checker/) || die "go test -c ./checker/"
if ! "$BENCH_WORK/checker.test" -test.list '^BenchmarkScale10k$' | grep -qx BenchmarkScale10k; then
    die "./checker has no BenchmarkScale10k yet: nothing to run"
fi

# bench_run LABEL: runs the benchmark once; its output goes to $BENCH_WORK/LABEL.txt.
bench_run() {
    local out="$BENCH_WORK/$1.txt"
    log "benchmark ($1): go test -run '^\$' -bench Scale10k -benchtime 1x ./checker/"
    (cd "$BENCH_ROOT/checker" && "$BENCH_WORK/checker.test" -test.run '^$' -test.bench Scale10k -test.benchtime 1x \
        -test.timeout 10m) >"$out" 2>&1 || {
        cat "$out" >&2
        die "the benchmark failed"
    }
    grep -q '^BenchmarkScale10k' "$out" || {
        cat "$out" >&2
        die "no BenchmarkScale10k result"
    }
    cat "$out" >&2
}

if ((baseline)); then
    bench_run alone
fi

start_backends 8
conf="$BENCH_WORK/Corefile"
healthfailover_corefile 1000 "$conf" "$dns_port" "$ready_port" 1s 100
start_coredns "$conf" "$BENCH_WORK/coredns.log" "$ready_port"
[ "$(dig_a "$dns_port" h2.bench.test)" = 127.1.0.3 ] || die "CoreDNS answers wrong: h2.bench.test $(dig_a "$dns_port" h2.bench.test)"
log "CoreDNS ready; dnsperf -Q $load_qps in the background"
dnsperf -s 127.0.0.1 -p "$dns_port" -d "$conf.queries" -Q "$load_qps" -c 2 -T 1 -t 1 -l 900 >"$BENCH_WORK/dnsperf.txt" 2>&1 &
perf_pid=$!
BENCH_PIDS+=("$perf_pid")
sleep 1
kill -0 "$perf_pid" 2>/dev/null || die "dnsperf exited at start: $(cat "$BENCH_WORK/dnsperf.txt")"
cpu0=$(cpu_ticks "$COREDNS_PID") t0=$(date +%s.%N)
bench_run beside
cpu1=$(cpu_ticks "$COREDNS_PID") t1=$(date +%s.%N)
kill -INT "$perf_pid" 2>/dev/null || true
for ((i = 0; i < 50; i++)); do
    kill -0 "$perf_pid" 2>/dev/null || break
    sleep 0.1
done
stop_pid "$perf_pid"
stop_pid "$COREDNS_PID"

# The metrics of each run: "value unit" pairs after the iteration count and ns/op.
metrics() {
    awk '/^BenchmarkScale10k/ {for (i = 3; i < NF; i += 2) print $(i+1), $i}' "$BENCH_WORK/$1.txt"
}
echo
echo "BenchmarkScale10k (10,000 checks, 1 s interval, ${HEALTHFAILOVER_SCALE_KIND:-mixed} tcp/http, ${HEALTHFAILOVER_SCALE_SECONDS:-5} s measured)"
if ((baseline)); then
    LC_ALL=C join -t' ' -a2 -e- -o '0,1.2,2.2' <(metrics alone | LC_ALL=C sort -k1,1) <(metrics beside | LC_ALL=C sort -k1,1) |
        LC_ALL=C sort -k1,1 | { echo "metric alone beside_DNS_load"; cat; } | align
else
    metrics beside | { echo "metric beside_DNS_load"; cat; } | align
fi
echo
echo "DNS load: dnsperf -Q $load_qps against CoreDNS (1000 record sets, 100 checks): $(dnsperf_field "$BENCH_WORK/dnsperf.txt" "Queries per second") QPS," \
    "$(dnsperf_field "$BENCH_WORK/dnsperf.txt" "Queries lost") lost; CoreDNS used" \
    "$(awk -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (c1 - c0) / hz / (t1 - t0)}') cores during the benchmark"
machine_line "$(load_average)"
echo "wall time: $(($(date +%s) - started)) s"
