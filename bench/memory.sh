#!/usr/bin/env bash
# Memory of CoreDNS with healthfailover, by the number of record sets and of
# checks: the figures behind the sizing rule of deploy/kubernetes/README.md.
#
#   bench/memory.sh [--smoke] [--runs R] [--gets G] [--rounds K]
#
# For each size (SETS CHECKS) it starts the built CoreDNS on a Corefile with
# SETS record sets `hI.bench.test A { primary … check cK; secondary … }`
# sharing CHECKS checks (default interval, half http, half tcp, against
# loopback backends; without checks the primaries are unchecked), plus
# ready, prometheus and `status`, as deployed. Once /ready says 200 it
# scrapes /metrics once (as Prometheus would), and reads VmRSS from
# /proc/PID/status ("ready"); then K rounds of G concurrent GETs of /status
# ("after GETs": VmRSS, and RssAnon, the part that is not the binary's
# pages, which the kernel can drop and read again), and VmHWM, the peak of
# VmRSS over the whole run. Sizes: 0, 1,000 and
# 10,000 sets without checks; 0, 100 and 1,000 checks without sets; and
# 10,000 sets with 1,000 checks, to compare with what the fit predicts.
# The per-set cost is the least-squares slope over the sets-only runs, the
# per-check cost over the checks-only runs; R runs per size (default 1),
# median of each figure.
#
# --smoke: sizes 0/100 sets and 0/10 checks, one round of GETs; checks that
# every status document holds every entry and that CoreDNS answers; exit 1
# if not. Environment: BENCH_PORT (default 15340: uses it and the next 3
# ports), READY_TIMEOUT.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

smoke=0 runs=1 gets=11 rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) smoke=1 ;;
    --runs) runs=$2; shift ;;
    --gets) gets=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument $1" ;;
    esac
    shift
done
port=${BENCH_PORT:-15340}
dns_port=$port ready_port=$((port + 1)) status_port=$((port + 2)) metrics_port=$((port + 3))

if ((smoke)); then
    sizes=("0 0" "100 0" "0 10" "100 10")
    rounds=1
else
    sizes=("0 0" "1000 0" "10000 0" "0 100" "0 1000" "10000 1000")
fi

ensure_tools
bench_init
started=$(date +%s)
build_bins backends
build_done=$(date +%s)
start_backends 8

# memory_corefile SETS CHECKS OUT: the Corefile of one size. The checks use
# the plugin's default interval (10 s), so 1,000 of them probe 100 times a
# second, as they would deployed.
memory_corefile() {
    local n=$1 m=$2 out=$3 nb=${#BACKEND_HTTP[@]} k i check
    {
        printf 'bench.test:%s {\n    bind 127.0.0.1\n    ready 127.0.0.1:%s\n    prometheus 127.0.0.1:%s\n' \
            "$dns_port" "$ready_port" "$metrics_port"
        printf '    healthfailover {\n        status 127.0.0.1:%s\n' "$status_port"
        for ((k = 0; k < m; k++)); do
            if ((k % 2 == 0)); then
                printf '        check c%d http://%s/health\n' "$k" "${BACKEND_HTTP[k % nb]}"
            else
                printf '        check c%d tcp://%s\n' "$k" "${BACKEND_HTTP[k % nb]}"
            fi
        done
        for ((i = 0; i < n; i++)); do
            check=""
            ((m > 0)) && check=" check c$((i % m))"
            printf '        record h%d.bench.test A {\n            primary 127.1.%d.%d%s\n            secondary 127.2.%d.%d\n        }\n' \
                "$i" $((i / 250)) $((i % 250 + 1)) "$check" $((i / 250)) $((i % 250 + 1))
        done
        printf '    }\n}\n'
    } >"$out"
}

# kib FIELD PID: a VmRSS-like field of /proc/PID/status, in KiB.
kib() {
    awk -v f="$1:" '$1 == f {print $2}' "/proc/$2/status"
}

# get_burst: ROUNDS rounds of GETS concurrent GETs of /status, each bounded
# in time; sets DOC_BYTES to the size of a document; fail() on an error.
get_burst() {
    local r j pids out
    for ((r = 0; r < rounds; r++)); do
        pids=()
        for ((j = 0; j < gets; j++)); do
            out="$BENCH_WORK/status.$j"
            curl -s --noproxy '*' --max-time 60 -o "$out" -w '%{http_code}\n' "http://127.0.0.1:$status_port/status" >"$out.code" &
            pids+=($!)
        done
        for j in "${!pids[@]}"; do
            wait "${pids[j]}" || fail "GET /status $j: curl exit $?"
            [ "$(cat "$BENCH_WORK/status.$j.code")" = 200 ] || fail "GET /status $j: HTTP $(cat "$BENCH_WORK/status.$j.code")"
        done
    done
    DOC_BYTES=$(stat -c %s "$BENCH_WORK/status.0")
}

# measure SETS CHECKS: one run of one size; prints "sets checks ready_kib
# after_kib anon_kib hwm_kib doc_bytes".
measure() {
    local n=$1 m=$2 conf="$BENCH_WORK/Corefile" want entries ready after anon hwm
    memory_corefile "$n" "$m" "$conf"
    start_coredns "$conf" "$BENCH_WORK/coredns.log" "$ready_port"
    curl -s --noproxy '*' --max-time 30 -o /dev/null "http://127.0.0.1:$metrics_port/metrics" || fail "GET /metrics"
    ready=$(kib VmRSS "$COREDNS_PID")
    get_burst
    after=$(kib VmRSS "$COREDNS_PID")
    anon=$(kib RssAnon "$COREDNS_PID")
    hwm=$(kib VmHWM "$COREDNS_PID")
    if ((n > 0)); then
        want=127.1.0.2
        [ "$(dig_a "$dns_port" h1.bench.test)" = "$want" ] || fail "$n sets, $m checks: h1.bench.test is '$(dig_a "$dns_port" h1.bench.test)', want $want"
    fi
    # Every entry of the document, in every reader's copy.
    for ((j = 0; j < gets; j++)); do
        entries=$(grep -c '"block":' "$BENCH_WORK/status.$j" || true)
        [ "$entries" = $((n + m)) ] || fail "$n sets, $m checks: GET $j has $entries entries, want $((n + m))"
    done
    stop_pid "$COREDNS_PID"
    echo "$n $m $ready $after $anon $hwm $DOC_BYTES"
}

results="$BENCH_WORK/results.txt"
: >"$results"
for size in "${sizes[@]}"; do
    read -r n m <<<"$size"
    for ((run = 0; run < runs; run++)); do
        log "$n record sets, $m checks (run $((run + 1))/$runs)"
        measure "$n" "$m" >>"$results"
    done
done

# The median of each figure per size, in MiB.
medians="$BENCH_WORK/medians.txt"
for size in "${sizes[@]}"; do
    read -r n m <<<"$size"
    line="$n $m"
    for col in 3 4 5 6 7; do
        line="$line $(median $(awk -v n="$n" -v m="$m" -v c="$col" '$1 == n && $2 == m {print $c}' "$results"))"
    done
    echo "$line"
done >"$medians"

echo
echo "CoreDNS RSS by size (MiB; median of $runs run(s); $rounds round(s) of $gets concurrent GETs of /status)"
{
    echo "record_sets checks RSS_ready RSS_after_GETs anon_after_GETs peak_(VmHWM) status_document"
    awk '{printf "%d %d %.1f %.1f %.1f %.1f %.2fMB\n", $1, $2, $3 / 1024, $4 / 1024, $5 / 1024, $6 / 1024, $7 / 1e6}' "$medians"
} | align

# fit COL WHICH: the least-squares slope (KiB per unit) of column COL over
# the sets-only runs (WHICH=1) or the checks-only runs (WHICH=2).
fit() {
    awk -v col="$1" -v which="$2" '
        (which == 1 && $2 == 0) || (which == 2 && $1 == 0) {x = $which; y = $col; n++; sx += x; sy += y; sxx += x * x; sxy += x * y}
        END {d = n * sxx - sx * sx; if (n < 2 || d == 0) {print "nan nan"; exit} b = (n * sxy - sx * sy) / d; print b, (sy - b * sx) / n}' "$medians"
}
echo
{
    echo "figure per_record_set per_check base"
    for col in 3 4 5 6; do
        read -r per_set base_s < <(fit "$col" 1)
        read -r per_check base_c < <(fit "$col" 2)
        case $col in 3) label=RSS_ready ;; 4) label=RSS_after_GETs ;; 5) label=anon_after_GETs ;; 6) label="peak_(VmHWM)" ;; esac
        awk -v l="$label" -v s="$per_set" -v c="$per_check" -v b1="$base_s" -v b2="$base_c" \
            'BEGIN {printf "%s %.2fKiB %.2fKiB %.1fMiB\n", l, s, c, (b1 + b2) / 2 / 1024}'
    done
} | align
if ((smoke)); then
    echo "(smoke: the sizes are too small for the fit to mean anything)"
else
    read -r per_set base_s < <(fit 6 1)
    read -r per_check base_c < <(fit 6 2)
    awk -v s="$per_set" -v c="$per_check" -v b="$base_s" -v b2="$base_c" '$1 == 10000 && $2 == 1000 {
        printf "\n10,000 sets with 1,000 checks: peak %.1f MiB measured, %.1f MiB from the fit (base + 10000 x set + 1000 x check)\n",
            $6 / 1024, ((b + b2) / 2 + 10000 * s + 1000 * c) / 1024}' "$medians"
fi
echo
machine_line "$(load_average)"
wall_time "$started" "$build_done"
finish "$smoke"
