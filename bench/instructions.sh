#!/usr/bin/env bash
# CPU instructions per answered query of healthfailover against the hosts
# plugin and whoami, counted by valgrind's callgrind in ONE CoreDNS process.
#
#   bench/instructions.sh [--smoke] [--rounds R] [--queries Q] [N...]
#
# Why: on a small shared machine dnsperf's QPS moves by ±10 % from one run
# to the next, more than the plugins differ. The instructions CoreDNS runs
# per query hardly depend on what else the machine does, so they compare the
# query paths to a few per cent, run after run; at saturation a CPU-bound
# server's QPS follows them (they do not see cache misses or system calls).
#
# The servers are those of bench/throughput.sh (N record sets hI.bench.test,
# the same names from a hosts file, whoami), with min(N, CHECKS_MAX=10)
# checks probing every CHECK_INTERVAL=1s the whole time (fewer than there:
# under callgrind each probe is ~50 times slower). CoreDNS runs with
# GOMAXPROCS=1, so that no idle processor spins looking for work (a count
# that depends on timing), and GODEBUG=asyncpreemptoff=1, because callgrind
# aborts on the runtime's preemption signals, and cpu.rdtscp=off, because
# valgrind 3.19 does not decode RDTSCP on some processors (AMD EPYC among
# them) and the runtime's lock reads the clock with it; and GOGC=off: a collection
# costs in proportion to the live heap (tens of MB at N=10000) and starts
# every so many bytes allocated, so whichever phase it happened to land in
# would count up to ten thousand instructions a query more. The collector's
# share follows the bytes allocated per query, which the Go benchmarks
# report (healthfailover allocates a third of what hosts does).
#
# Each round runs four phases, alternating: healthfailover, hosts, whoami,
# idle. A phase zeroes callgrind's counters, sends Q queries (default
# 20000) with dnsperf at QUERY_RATE (default 3000) per second, or nothing
# for as long in the idle phase, then dumps the counters. The idle phase is
# the background (probes, timers, the collector's idle work), taken off
# the others: instructions per query = (phase - median idle) / Q. Median of
# R rounds (default 5), each also as a ratio to hosts and to whoami.
#
# --smoke: N=10, one round of 2000 queries; checks that everything works
# and the answers are right (exit status 1 otherwise). Not a measurement.
#
# Environment: BENCH_PORT (default 15310: uses it and the next 3 ports),
# CHECKS_MAX, CHECK_INTERVAL, QUERY_RATE, KEEP_WORK=1 keeps the work directory.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

smoke=0
rounds=5
queries=20000
ns=()
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) smoke=1 ;;
    --rounds) rounds=$2; shift ;;
    --queries) queries=$2; shift ;;
    -h | --help)
        usage
        exit 0
        ;;
    *[!0-9]* | "") die "unknown argument $1" ;;
    *) ns+=("$1") ;;
    esac
    shift
done
if ((smoke)); then
    ns=(10)
    rounds=1
    queries=2000
fi
[ ${#ns[@]} -gt 0 ] || ns=(10 10000)
port=${BENCH_PORT:-15310}
hf_port=$port hosts_port=$((port + 1)) whoami_port=$((port + 2)) ready_port=$((port + 3))
interval=${CHECK_INTERVAL:-1s}
checks_max=${CHECKS_MAX:-10}
rate=${QUERY_RATE:-3000}

ensure_tools
command -v valgrind >/dev/null || {
    log "installing valgrind"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends valgrind >/dev/null
}
command -v callgrind_control >/dev/null || die "callgrind_control (valgrind) is missing"
bench_init
started=$(date +%s)
build_bins backends
build_done=$(date +%s)
start_backends 8

# phase PLUGIN PORT QUERYFILE REPEAT DUMPFILE: zeroes the counters, sends
# the queries (none for idle), dumps, and sets PHASE_IR to the instructions
# counted in between.
phase() {
    local plugin=$1 p=$2 qfile=$3 repeat=$4 dump=$5 out completed
    callgrind_control -z "$COREDNS_PID" >/dev/null 2>&1
    if [ "$plugin" = idle ]; then
        sleep "$(awk -v q="$queries" -v r="$rate" 'BEGIN {printf "%.2f", q / r}')"
    else
        out="$dump.dnsperf.txt"
        dnsperf -s 127.0.0.1 -p "$p" -d "$qfile" -n "$repeat" -Q "$rate" -c 1 -T 1 -t 5 >"$out" 2>&1 ||
            fail "dnsperf against $plugin exited non-zero"
        completed="$(dnsperf_field "$out" "Queries completed")"
        [ "${completed:-0}" = "$queries" ] || fail "dnsperf against $plugin: ${completed:-0} of $queries queries answered"
        grep -q "NOERROR $queries" "$out" || fail "dnsperf against $plugin: not every answer NOERROR ($(grep 'Response codes' "$out"))"
    fi
    callgrind_control -d "$COREDNS_PID" >/dev/null 2>&1
    dumps=$((dumps + 1))
    PHASE_IR="$(awk '/^totals:/ {print $2}' "$CALLGRIND_OUT.$dumps")"
    [ -n "$PHASE_IR" ] || die "no callgrind totals in $CALLGRIND_OUT.$dumps"
}

table="$BENCH_WORK/table.txt"
: >"$table"
for n in "${ns[@]}"; do
    dir="$BENCH_WORK/n$n"
    mkdir -p "$dir"
    conf="$dir/Corefile"
    nchecks=$((n < checks_max ? n : checks_max))
    log "N=$n: generating Corefile ($n record sets, $nchecks checks every $interval, hosts file, whoami)"
    healthfailover_corefile "$n" "$conf" "$hf_port" "$ready_port" "$interval" "$nchecks" "$hosts_port" "$dir/hosts" "$whoami_port"
    # dnsperf sends the query file REPEAT times: Q queries in all.
    lines=$(wc -l <"$conf.queries")
    repeat=$(((queries + lines - 1) / lines))
    head -n "$((queries < lines ? queries : lines))" "$conf.queries" >"$dir/queries"
    lines=$(wc -l <"$dir/queries")
    ((lines * repeat == queries)) || die "--queries $queries must be a multiple of $lines (or at most it)"

    CALLGRIND_OUT="$dir/callgrind.out"
    dumps=0
    SERVER_WRAPPER=(env GOMAXPROCS=1 GOGC=off GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off
        valgrind --tool=callgrind --callgrind-out-file="$CALLGRIND_OUT" --dump-instr=no --compress-strings=no)
    t0=$(date +%s.%N)
    READY_TIMEOUT=600 start_coredns "$conf" "$dir/coredns.log" "$ready_port"
    log "N=$n: CoreDNS ready under callgrind in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s (pid $COREDNS_PID)"
    check_answers "$conf" "$n" "$hf_port" "$hosts_port" "$whoami_port"

    declare -A ir=()
    for ((r = 1; r <= rounds; r++)); do
        for plugin in healthfailover hosts whoami idle; do
            case $plugin in
            healthfailover) p=$hf_port ;;
            hosts) p=$hosts_port ;;
            whoami) p=$whoami_port ;;
            idle) p="" ;;
            esac
            phase "$plugin" "$p" "$dir/queries" "$repeat" "$dir/phase.$r.$plugin"
            ir[$plugin]+="$PHASE_IR "
            log "N=$n round $r/$rounds $plugin: $PHASE_IR instructions"
        done
    done
    # shellcheck disable=SC2086
    idle=$(median ${ir[idle]})
    per_query() {
        # shellcheck disable=SC2086
        for v in ${ir[$1]}; do
            awk -v v="$v" -v i="$idle" -v q="$queries" 'BEGIN {printf "%.0f\n", (v - i) / q}'
        done
    }
    # shellcheck disable=SC2046
    {
        q_hosts=$(median $(per_query hosts))
        q_who=$(median $(per_query whoami))
    }
    for plugin in healthfailover hosts whoami; do
        # shellcheck disable=SC2046
        m=$(median $(per_query "$plugin"))
        printf '%s %s %s %s %s %s\n' "$n" "$plugin" "$m" \
            "$(awk -v a="$m" -v b="$q_hosts" 'BEGIN {printf "%.3f", a / b}')" \
            "$(awk -v a="$m" -v b="$q_who" 'BEGIN {printf "%.3f", a / b}')" \
            "$(per_query "$plugin" | paste -sd/ -)" >>"$table"
    done
    printf '%s %s %s - - %s\n' "$n" "idle(background)" \
        "$(awk -v i="$idle" -v q="$queries" 'BEGIN {printf "%.0f", i / q}')" \
        "$(for v in ${ir[idle]}; do awk -v v="$v" -v q="$queries" 'BEGIN {printf "%.0f\n", v / q}'; done | paste -sd/ -)" >>"$table"
    unset ir

    check_answers "$conf" "$n" "$hf_port" "$hosts_port" "$whoami_port"
    if grep -Eiq 'panic|\[ERROR\]' "$dir/coredns.log"; then
        fail "CoreDNS logged errors (N=$n):"
        grep -Ei 'panic|\[ERROR\]' "$dir/coredns.log" | head -5 >&2
    fi
    stop_pid "$COREDNS_PID"
done

echo
echo "Instructions per answered query (callgrind; $rounds rounds of $queries queries at $rate QPS per plugin, alternating; one CoreDNS process, GOMAXPROCS=1, GOGC=off)"
{
    echo "N plugin median_instructions/query vs_hosts vs_whoami rounds"
    cat "$table"
} | align
echo
echo "idle(background): the instructions of an idle phase as long as a query phase, per query; taken off the others"
machine_line "$(valgrind --version)"
wall_time "$started" "$build_done"
finish "$smoke"
