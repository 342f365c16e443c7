#!/usr/bin/env bash
# What hostile backends cost: probe durations against their timeouts, the
# schedule of a healthy check beside them, DNS latency and heap, with one
# check against each kind of broken or hostile backend (a connect that times
# out, a server that never answers, one that trickles, an endless body, a
# huge header, a stalled or a non-TLS handshake, a reset mid-response).
#
#   bench/hostile.sh [--smoke] [--duration D] [hostile flags...]
#
# Builds bench/hostile, which runs CoreDNS in its own process beside the
# backends, and runs it for D (default 10s). Prints a table per check and the
# figures of the healthy check, DNS and the heap; exits 1 when a probe
# outlasted its timeouts (plus -slack), a check failed for the wrong reason,
# the healthy check fell behind its interval, an answer was wrong or slow,
# or the heap grew by more than 4 MiB. These were the assertions of the
# hostile backends test, which asserts behaviour only.
#
# --smoke: 3s, and exit 1 only on wrong results and answers: it checks that
# everything works on a shared machine; it is not a measurement.
# `bench/hostile.sh -- -h` lists the program's flags.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

duration=10s
bounds=true
args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke)
        duration=3s
        bounds=false
        ;;
    --duration) duration=$2; shift ;;
    --) shift; args+=("$@"); break ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) args+=("$1") ;;
    esac
    shift
done

command -v go >/dev/null || die "go is not installed"
bench_init
started=$(date +%s)
log "building bench/hostile"
(cd "$BENCH_ROOT" && go build -o "$BENCH_WORK/hostile" ./bench/hostile) || die "go build ./bench/hostile"
build_done=$(date +%s)
log "measuring for $duration"
status=0
"$BENCH_WORK/hostile" -duration "$duration" -bounds="$bounds" "${args[@]}" || status=$?
echo
machine_line "$(load_average)"
wall_time "$started" "$build_done"
exit "$status"
