#!/usr/bin/env bash
# Query throughput and latency of healthfailover against the hosts plugin and
# against whoami (a floor: CoreDNS with one of its smallest plugins), in ONE
# CoreDNS process: the three are server blocks on different ports, so that
# the health checks running in the background cost all three the same, and
# the ratios compare the query paths alone.
#
#   bench/throughput.sh [--smoke] [--pin] [--runs R] [--seconds S] [N...]
#
# For each N (default 10 and 10000) it serves N names hI.bench.test A:
#   healthfailover  N record sets, primary checked, secondary unchecked; the
#                   checks run (min(N, CHECKS_MAX=1000) of them, http and tcp,
#                   every CHECK_INTERVAL=1s, against 8 loopback HTTP
#                   listeners; c0 points at a closed port, c1 at an HTTP 500,
#                   so their records answer the secondary);
#   hosts           the same N names and answers, from a hosts file;
#   whoami          any name.
# It checks the answers with dig, runs dnsperf at saturation alternating
# healthfailover, hosts, whoami (R runs of S seconds each, default 5 and 5),
# takes the median QPS of each and the median of the per-round ratios (each
# run against the hosts run next to it in time, which cancels slow drifts of
# the machine's load), then measures latency percentiles at a fixed
# rate of half the hosts plugin's saturated QPS with bench/latency (dnsperf
# 2.10 reports no percentiles), healthfailover, hosts and a second hosts
# server (hosts-again, the control) taking turns query by query in the same
# runs, and prints a table.
#
# --pin: CoreDNS alone on the last CPU with GOMAXPROCS=1, dnsperf, the
# latency client and the backends on the others.
#
# --smoke: N=10, one run of 2 s each; checks that everything works and that
# the answers are right (exit status 1 otherwise). Not a measurement.
#
# Environment: BENCH_PORT (default 15300: uses it and the next 4 ports),
# CHECKS_MAX, CHECK_INTERVAL, DNSPERF_CLIENTS (2), DNSPERF_OUTSTANDING (100),
# LAT_RUNS (5), LAT_SECONDS (5), KEEP_WORK=1 keeps the work directory.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

smoke=0
pin=0
runs=5
seconds=5
ns=()
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) smoke=1 ;;
    --pin) pin=1 ;;
    --runs) runs=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    -h | --help)
        usage
        exit 0
        ;;
    *[!0-9]* | "") die "unknown argument $1" ;;
    *) ns+=("$1") ;;
    esac
    shift
done
lat_runs=${LAT_RUNS:-5}
lat_seconds=${LAT_SECONDS:-5}
if ((smoke)); then
    ns=(10)
    runs=1
    seconds=2
    lat_runs=1
    lat_seconds=2
fi
[ ${#ns[@]} -gt 0 ] || ns=(10 10000)
port=${BENCH_PORT:-15300}
hf_port=$port hosts_port=$((port + 1)) whoami_port=$((port + 2)) ready_port=$((port + 3)) again_port=$((port + 4))
interval=${CHECK_INTERVAL:-1s}
checks_max=${CHECKS_MAX:-1000}
clients=${DNSPERF_CLIENTS:-2}
outstanding=${DNSPERF_OUTSTANDING:-100}

ensure_tools
((pin)) && pin_cpus
bench_init
started=$(date +%s)
build_bins backends latency
build_done=$(date +%s)
start_backends 8

# perf_run PLUGIN PORT QUERIES OUT: one saturated dnsperf run; sets PERF_QPS
# and PERF_LOST, and PERF_CPU: CoreDNS's CPU time per answered query in µs
# (less sensitive than QPS to other work on the machine).
perf_run() {
    local plugin=$1 p=$2 q=$3 out=$4 noerr total cpu0 cpu1
    cpu0=$(cpu_ticks "$COREDNS_PID")
    on_clients dnsperf -s 127.0.0.1 -p "$p" -d "$q" -c "$clients" -T 1 -q "$outstanding" -t 2 -l "$seconds" >"$out" 2>&1 ||
        { fail "dnsperf against $plugin exited non-zero"; cat "$out" >&2; }
    cpu1=$(cpu_ticks "$COREDNS_PID")
    PERF_QPS="$(dnsperf_field "$out" "Queries per second")"
    PERF_LOST="$(dnsperf_field "$out" "Queries lost")"
    total="$(dnsperf_field "$out" "Queries completed")"
    noerr="$(awk '/Response codes:/ {for (i = 1; i < NF; i++) if ($i == "NOERROR") print $(i+1)}' "$out")"
    if [ -z "$PERF_QPS" ] || [ "${total:-0}" = 0 ]; then
        fail "dnsperf against $plugin: no result"
        PERF_QPS=0
    elif [ "${noerr:-0}" != "$total" ]; then
        fail "dnsperf against $plugin: ${noerr:-0} NOERROR of $total answers ($(grep 'Response codes' "$out"))"
    fi
    PERF_QPS=${PERF_QPS%.*}
    PERF_LOST=${PERF_LOST:-0}
    PERF_CPU=$(awk -v t="$((cpu1 - cpu0))" -v n="${total:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print "nan"}')
}

# paired_ratios "A1 A2 …" "B1 B2 …": the median of Ai/Bi and their range,
# e.g. "1.02(0.97-1.06)".
paired_ratios() {
    local -a a b
    local i ratios=()
    read -ra a <<<"$1"
    read -ra b <<<"$2"
    for i in "${!a[@]}"; do
        ratios+=("$(awk -v x="${a[i]}" -v y="${b[i]}" 'BEGIN {printf "%.3f", x / y}')")
    done
    printf '%s(%s-%s)' "$(median "${ratios[@]}" | awk '{printf "%.2f", $1}')" \
        "$(printf '%s\n' "${ratios[@]}" | sort -g | head -1 | awk '{printf "%.2f", $1}')" \
        "$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1 | awk '{printf "%.2f", $1}')"
}

table="$BENCH_WORK/table.txt"
lat_table="$BENCH_WORK/latency.txt"
: >"$table"
: >"$lat_table"
for n in "${ns[@]}"; do
    dir="$BENCH_WORK/n$n"
    mkdir -p "$dir"
    conf="$dir/Corefile"
    nchecks=$((n < checks_max ? n : checks_max))
    log "N=$n: generating Corefile ($n record sets, $nchecks checks every $interval, hosts file, whoami)"
    healthfailover_corefile "$n" "$conf" "$hf_port" "$ready_port" "$interval" "$nchecks" "$hosts_port" "$dir/hosts" "$whoami_port"
    # hosts-again serves the same hosts file a second time: in the latency
    # runs it is the control, what two identical servers differ by.
    printf 'bench.test:%s {\n    bind 127.0.0.1\n    hosts %s {\n        reload 0\n        no_reverse\n    }\n}\n' "$again_port" "$dir/hosts" >>"$conf"
    t0=$(date +%s.%N)
    start_coredns "$conf" "$dir/coredns.log" "$ready_port"
    log "N=$n: CoreDNS ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s (pid $COREDNS_PID)"
    check_answers "$conf" "$n" "$hf_port" "$hosts_port" "$whoami_port"

    declare -A qps=() lost=() cpu=()
    for ((r = 1; r <= runs; r++)); do
        for plugin in healthfailover hosts whoami; do
            case $plugin in
            healthfailover) p=$hf_port ;;
            hosts) p=$hosts_port ;;
            whoami) p=$whoami_port ;;
            esac
            perf_run "$plugin" "$p" "$conf.queries" "$dir/dnsperf.$plugin.$r.txt"
            qps[$plugin]+="$PERF_QPS "
            cpu[$plugin]+="$PERF_CPU "
            lost[$plugin]=$((${lost[$plugin]:-0} + PERF_LOST))
            log "N=$n run $r/$runs $plugin: $PERF_QPS QPS, CoreDNS $PERF_CPU CPU-µs/query (lost $PERF_LOST)"
        done
    done
    # shellcheck disable=SC2086
    {
        m_hf=$(median ${qps[healthfailover]})
        m_hosts=$(median ${qps[hosts]})
        m_who=$(median ${qps[whoami]})
        c_hosts=$(median ${cpu[hosts]})
        c_who=$(median ${cpu[whoami]})
    }
    for plugin in healthfailover hosts whoami; do
        # shellcheck disable=SC2086
        m=$(median ${qps[$plugin]})
        # shellcheck disable=SC2086
        c=$(median ${cpu[$plugin]})
        printf '%s %s %s %s %s %s %s %s %s %s %s\n' "$n" "$plugin" "$m" \
            "$(awk -v a="$m" -v b="$m_hosts" 'BEGIN {printf "%.2f", a / b}')" \
            "$(paired_ratios "${qps[$plugin]}" "${qps[hosts]}")" \
            "$(awk -v a="$m" -v b="$m_who" 'BEGIN {printf "%.2f", a / b}')" \
            "$c" \
            "$(awk -v a="$c" -v b="$c_hosts" 'BEGIN {printf "%.2f", a / b}')" \
            "$(awk -v a="$c" -v b="$c_who" 'BEGIN {printf "%.2f", a / b}')" \
            "${lost[$plugin]}" "$(echo ${qps[$plugin]} | tr ' ' '/')" >>"$table"
    done

    # Latency at a fixed rate, half of what hosts saturated at, shared by
    # healthfailover, hosts and hosts-again in one run: their queries take
    # turns, so a stall of the machine or of the process hits all alike.
    # hosts-again against hosts is the control: the spread of the method.
    rate=$(awk -v m="$m_hosts" 'BEGIN {printf "%d", m / 2}')
    lat_plugins=(healthfailover hosts hosts-again)
    declare -A p50=() p99=() p999=() llost=() behind=() stalls=()
    for ((r = 1; r <= lat_runs; r++)); do
        # Which one goes first rotates from run to run.
        servers="" labels=""
        for ((k = 0; k < 3; k++)); do
            plugin=${lat_plugins[(r + k) % 3]}
            case $plugin in
            healthfailover) p=$hf_port ;;
            hosts) p=$hosts_port ;;
            hosts-again) p=$again_port ;;
            esac
            servers+="${servers:+,}127.0.0.1:$p"
            labels+="${labels:+,}$plugin"
        done
        out="$(on_clients "$BENCH_WORK/latency" -server "$servers" -label "$labels" -queries "$conf.queries" \
            -rate "$rate" -duration "${lat_seconds}s")" || fail "latency run $r"
        while read -r line; do
            plugin=$(kv "$line" label)
            log "N=$n latency run $r/$lat_runs: $line"
            [ "$(kv "$line" errors)" = 0 ] || fail "latency against $plugin: wrong answers: $line"
            p50[$plugin]+="$(kv "$line" p50_us) "
            p99[$plugin]+="$(kv "$line" p99_us) "
            p999[$plugin]+="$(kv "$line" p999_us) "
            llost[$plugin]=$((${llost[$plugin]:-0} + $(kv "$line" lost)))
            stalls[$plugin]=$((${stalls[$plugin]:-0} + $(kv "$line" stalls)))
            b=$(kv "$line" behind_max_us)
            ((b > ${behind[$plugin]:-0})) && behind[$plugin]=$b
        done <<<"$out"
    done
    for plugin in "${lat_plugins[@]}"; do
        # shellcheck disable=SC2086
        printf '%s %s %s %s %s %s %s %s %s %s\n' "$n" "$plugin" "$((rate / 3))" "$(median ${p50[$plugin]})" \
            "$(median ${p99[$plugin]})" "$(paired_ratios "${p99[$plugin]}" "${p99[hosts]}")" \
            "$(median ${p999[$plugin]})" "${llost[$plugin]}" "${behind[$plugin]:-0}" "${stalls[$plugin]}" >>"$lat_table"
    done
    unset qps lost cpu p50 p99 p999 llost behind stalls

    # Answers still right after the load, and CoreDNS's log free of errors.
    check_answers "$conf" "$n" "$hf_port" "$hosts_port" "$whoami_port"
    if grep -Eiq 'panic|\[ERROR\]' "$dir/coredns.log"; then
        fail "CoreDNS logged errors (N=$n):"
        grep -Ei 'panic|\[ERROR\]' "$dir/coredns.log" | head -5 >&2
    fi
    stop_pid "$COREDNS_PID"
done

echo
echo "Saturated throughput (dnsperf -c $clients -T 1 -q $outstanding -l $seconds, $runs runs each, alternating; one CoreDNS process$( ((pin)) && echo ", pinned: CoreDNS alone on CPU $(($(nproc) - 1)) with GOMAXPROCS=1"))"
{
    echo "N plugin median_QPS QPS_vs_hosts per_round_vs_hosts(median,min-max) QPS_vs_whoami CPU_µs/query CPU_vs_hosts CPU_vs_whoami lost_queries runs_QPS"
    cat "$table"
} | align
echo
echo "Latency at a fixed rate (half of hosts' median QPS in all, healthfailover, hosts and hosts-again taking turns; bench/latency, open loop, UDP; median of $lat_runs runs of ${lat_seconds}s)"
{
    echo "N plugin rate_QPS p50_us p99_us p99_per_run_vs_hosts(median,min-max) p99.9_us lost sender_behind_max_us sender_stalls"
    cat "$lat_table"
} | align
echo
machine_line "$(load_average)"
echo "health checks: min(N, $checks_max) per N, every $interval, http and tcp against ${#BACKEND_HTTP[@]} loopback listeners"
wall_time "$started" "$build_done"
finish "$smoke"
