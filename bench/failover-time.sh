#!/usr/bin/env bash
# Failover and failback time as a DNS client sees it, for four ways a backend
# fails: connection refused (listener closed), HTTP 500, a hang (accepts and
# never answers) and a slow answer (later than response_timeout).
#
#   bench/failover-time.sh [--smoke] [--trials N] [failovertime flags...]
#
# Builds cmd/coredns and bench/failovertime, which starts the backends
# (Go net/http servers on 127.0.0.21…, flipped in-process), CoreDNS as a
# separate process, dnsperf -Q 5000 against it for the whole run, and a
# client that queries every 5 ms. Checks: interval 200ms, failure_threshold 2,
# success_threshold 2, connect and response timeouts 100ms; bound =
# threshold × interval + timeout + 100 ms = 600 ms. 20 trials per mode
# (--smoke: 2). Prints median and worst per mode and whether within the
# bound; exits 1 when a trial was not, flapped or did not finish.
# A second table compares the refused mode without and with fast_interval
# (-fast, default 100ms; 0 leaves it out), the two side by side; -modes ''
# leaves the first table out. The measured run in bench/README.md:
#   bench/failover-time.sh -- -modes '' -interval 2s -failure-threshold 3 -fast 250ms -give-up 15s
# `bench/failover-time.sh -- -h` lists the program's flags (-load, -poll, -v, …).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

trials=20
args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) trials=2 ;;
    --trials) trials=$2; shift ;;
    --) shift; args+=("$@"); break ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) args+=("$1") ;;
    esac
    shift
done

ensure_tools
bench_init
started=$(date +%s)
build_bins failovertime
build_done=$(date +%s)
log "running $trials trials per mode"
status=0
"$BENCH_WORK/failovertime" -coredns "$BENCH_WORK/coredns" -dnsperf "$(command -v dnsperf)" -trials "$trials" "${args[@]}" || status=$?
echo
machine_line "$(load_average)"
wall_time "$started" "$build_done"
exit "$status"
