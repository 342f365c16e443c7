#!/usr/bin/env bash
# What sharing health between replicas (the `cluster` block) saves and
# costs, with CoreDNS replicas and real nginx backends on loopback:
#
#   bench/cluster.sh [--smoke] [--trials N] [clusterbench flags...]
#
# Builds cmd/coredns and bench/clusterbench, which runs every replica as a
# process of its own on an address of its own (127.0.8X.N, one DNS port for
# all: replicas share a check only when their server blocks have the same
# keys), and prints three tables:
#   probe load   one check at 1s with `observers 2`: requests at its nginx
#                per interval (access log) with 1, 3, 5 and 7 replicas,
#                against as many replicas without a cluster;
#   consistency  5 replicas, observers 2, interval 500ms, thresholds 2;
#                N trials (default 20) of stopping and starting the
#                primary's nginx: each replica's time to switch, the time
#                until the last, and the spread between first and last;
#   scale        7 replicas with 1,000 checks at 10s against 4 nginx, with
#                the default cluster and without one: probes/s at the
#                backends, gossip bytes/s per member (sent + received) and
#                CPU per member (utime + stime from /proc/PID/stat).
# Exits 1 when an answer was wrong, a trial flapped or did not finish, or a
# replica logged an error. About 6 minutes.
#
# --smoke: sizes 1 and 3, 2 trials, 4 replicas with 100 checks at 2s: checks
# that it works (about a minute), it is not a measurement.
# `bench/cluster.sh -- -h` lists the program's flags.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke)
        args+=(-sizes 1,3 -load-window 3 -trials 2 -scale-replicas 4 -checks 100
            -scale-interval 2s -scale-window 5s)
        ;;
    --trials) args+=(-trials "$2"); shift ;;
    --) shift; args+=("$@"); break ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) args+=("$1") ;;
    esac
    shift
done

nginx_bin="$(command -v nginx || true)"
[ -n "$nginx_bin" ] || { [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx; } || true
if [ -z "$nginx_bin" ]; then
    log "installing nginx-light"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
fi
command -v go >/dev/null || die "go is not installed"
bench_init
started=$(date +%s)
build_bins clusterbench
build_done=$(date +%s)
status=0
"$BENCH_WORK/clusterbench" -coredns "$BENCH_WORK/coredns" -nginx "$nginx_bin" -work "$BENCH_WORK/run" "${args[@]}" || status=$?
echo
machine_line "$(load_average)"
wall_time "$started" "$build_done"
exit "$status"
