# Shared by the bench/*.sh scripts: tools, the build, processes and Corefiles.
# Sourced, not run. Every wait here is bounded in time.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "FAIL: $*"
    exit 1
}

# ensure_tools installs what the scripts call, with Debian's packages, when missing.
ensure_tools() {
    local missing=()
    command -v dnsperf >/dev/null || missing+=(dnsperf)
    command -v dig >/dev/null || missing+=(bind9-dnsutils)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    command -v go >/dev/null || die "go is not installed"
}

# The processes this script started, stopped by their PIDs on exit.
BENCH_PIDS=()
BENCH_WORK=""

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$BENCH_WORK" ] && [ -z "${KEEP_WORK:-}" ]; then
        rm -rf "$BENCH_WORK"
    elif [ -n "$BENCH_WORK" ]; then
        log "work files kept in $BENCH_WORK"
    fi
}

# bench_init makes the work directory and arranges the clean-up.
bench_init() {
    BENCH_WORK="$(mktemp -d /tmp/hfbench.XXXXXX)"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# stop_pid stops one process this script started and forgets it.
stop_pid() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local kept=() p
    for p in "${BENCH_PIDS[@]}"; do
        [ "$p" = "$pid" ] || kept+=("$p")
    done
    BENCH_PIDS=("${kept[@]}")
}

# SERVER_WRAPPER: a command CoreDNS runs under (taskset, valgrind), and
# CLIENT_WRAPPER the same for the load generators and backends; empty runs
# them as they are.
SERVER_WRAPPER=()
CLIENT_WRAPPER=()

# pin_cpus puts CoreDNS alone on the last CPU with GOMAXPROCS=1 and the load
# generators and backends on the others. On a small machine dnsperf, the
# backends and CoreDNS otherwise compete for the same cores, and where the
# scheduler happens to put them moves QPS by ±10 % from one run to the next.
pin_cpus() {
    local last=$(($(nproc) - 1))
    ((last >= 1)) || die "--pin needs at least 2 CPUs"
    command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
    SERVER_WRAPPER=(env GOMAXPROCS=1 taskset -c "$last")
    CLIENT_WRAPPER=(taskset -c "0-$((last - 1))")
}

# on_clients runs a load generator under CLIENT_WRAPPER, in the foreground.
on_clients() {
    "${CLIENT_WRAPPER[@]}" "$@"
}

# build_bins builds CoreDNS (with healthfailover) and the helpers into the work directory.
build_bins() {
    local what
    log "building cmd/coredns and the bench helpers"
    (cd "$BENCH_ROOT" && go build -o "$BENCH_WORK/coredns" ./cmd/coredns) || die "go build ./cmd/coredns"
    for what in "$@"; do
        (cd "$BENCH_ROOT" && go build -o "$BENCH_WORK/$what" "./bench/$what") || die "go build ./bench/$what"
    done
}

# start_backends runs bench/backends on 127.0.0.1 and sets BACKEND_HTTP (an
# array of HOST:PORT) and BACKEND_CLOSED (a HOST:PORT nothing listens on).
start_backends() {
    local file="$BENCH_WORK/backends.txt" i
    "${CLIENT_WRAPPER[@]}" "$BENCH_WORK/backends" -host 127.0.0.1 -n "${1:-8}" -out "$file" -max 3h &
    BENCH_PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        [ -f "$file" ] && grep -qx ready "$file" && break
        sleep 0.1
    done
    grep -qx ready "$file" 2>/dev/null || die "backends did not start"
    mapfile -t BACKEND_HTTP < <(awk '$1 == "http" {print $2}' "$file")
    BACKEND_CLOSED="$(awk '$1 == "closed" {print $2}' "$file")"
}

# start_coredns COREFILE LOG READYPORT: runs CoreDNS and waits (at most
# READY_TIMEOUT seconds, default 120) until /ready says 200, i.e. every check
# has had its first probe. Sets COREDNS_PID.
start_coredns() {
    local conf=$1 logf=$2 readyport=$3 i code="" limit=${READY_TIMEOUT:-120}
    (cd "$(dirname "$conf")" && exec "${SERVER_WRAPPER[@]}" "$BENCH_WORK/coredns" -conf "$conf") >"$logf" 2>&1 &
    COREDNS_PID=$!
    BENCH_PIDS+=("$COREDNS_PID")
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$COREDNS_PID" 2>/dev/null || {
            cat "$logf" >&2
            die "CoreDNS exited at start"
        }
        code="$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$readyport/ready" || true)"
        [ "$code" = 200 ] && return 0
        sleep 0.1
    done
    tail -20 "$logf" >&2
    die "CoreDNS not ready within $limit s (last /ready: $code)"
}

# fail counts a problem and logs it; the scripts exit 1 at the end if any.
failures=0
fail() {
    log "FAIL: $*"
    failures=$((failures + 1))
}

# check_answers CONF N HF_PORT HOSTS_PORT WHOAMI_PORT: digs a few names of
# a Corefile written by healthfailover_corefile on each of its servers and
# compares them with CONF.expected; fail() for each wrong answer.
check_answers() {
    local conf=$1 n=$2 hf_port=$3 hosts_port=$4 whoami_port=$5 name want got i st
    local picks=(0 1 2 3 $((n - 1)) $((n / 2)) $((n / 3)) $((n * 2 / 3 + 1)))
    for i in "${picks[@]}"; do
        ((i < n)) || continue
        read -r name want < <(sed -n "$((i + 1))p" "$conf.expected")
        got="$(dig_a "$hf_port" "$name")"
        [ "$got" = "$want" ] || fail "healthfailover $name: got '$got', want '$want'"
        got="$(dig_a "$hosts_port" "$name")"
        [ "$got" = "$want" ] || fail "hosts $name: got '$got', want '$want'"
        st="$(dig_status "$whoami_port" "$name")"
        [[ "$st" == NOERROR* ]] || fail "whoami $name: status '$st'"
    done
    st="$(dig_status "$hf_port" h0.bench.test)"
    [[ "$st" == "NOERROR "*aa* ]] || fail "healthfailover h0.bench.test: want NOERROR with aa, got '$st'"
    st="$(dig_status "$hf_port" nosuchname.bench.test)"
    [[ "$st" == NXDOMAIN* ]] || fail "healthfailover nosuchname.bench.test: want NXDOMAIN, got '$st'"
}

# dig_a PORT NAME: the A records of NAME from 127.0.0.1:PORT, sorted, one line.
dig_a() {
    dig +short +time=1 +tries=2 -p "$1" @127.0.0.1 "$2" A | sort | paste -sd, -
}

# dig_status PORT NAME: the rcode and flags of the answer, e.g. "NOERROR qr aa rd".
dig_status() {
    dig +noall +comments +time=1 +tries=2 -p "$1" @127.0.0.1 "$2" A |
        awk '/status:/ {s=$6; sub(",", "", s)} /^;; flags:/ {f=$0; sub(/.*flags: */, "", f); sub(/;.*/, "", f)} END {print s, f}'
}

# dnsperf_field FILE LABEL: a number from dnsperf's statistics, e.g. "Queries per second".
dnsperf_field() {
    awk -v label="$2" 'index($0, label ":") {sub(/.*: */, ""); print $1; exit}' "$1"
}

# cpu_ticks PID: the user+system CPU time of a process, in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# median of the numbers given.
median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR == 0) {print "nan"; exit} if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'
}

# kv LINE KEY: the value of KEY in a line of key=value pairs.
kv() {
    tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2; exit}'
}

# healthfailover_corefile N OUT HF_PORT READY_PORT INTERVAL CHECKS [HOSTS_PORT
# HOSTS_FILE WHOAMI_PORT]: writes a Corefile with healthfailover serving N
# record sets hI.bench.test A, with CHECKS checks at INTERVAL against the
# backends shared among them, and optionally the hosts and whoami server
# blocks. It also writes OUT.expected ("NAME VALUE": the right answer) and
# OUT.queries (dnsperf's query file). Check c0 points at a closed port and
# c1 at an HTTP 500: their records answer with the secondary.
healthfailover_corefile() {
    local n=$1 out=$2 hfport=$3 readyport=$4 interval=$5 checks=$6
    local hostsport=${7:-} hostsfile=${8:-} whoamiport=${9:-}
    local nb=${#BACKEND_HTTP[@]} k i url
    ((checks > n)) && checks=$n
    {
        printf 'bench.test:%s {\n    bind 127.0.0.1\n    ready 127.0.0.1:%s\n    healthfailover {\n' "$hfport" "$readyport"
        for ((k = 0; k < checks; k++)); do
            if ((k == 0)); then
                url="tcp://$BACKEND_CLOSED"
            elif ((k == 1)); then
                url="http://${BACKEND_HTTP[0]}/fail"
            elif ((k % 2 == 0)); then
                url="http://${BACKEND_HTTP[k % nb]}/health"
            else
                url="tcp://${BACKEND_HTTP[k % nb]}"
            fi
            printf '        check c%d %s {\n            interval %s\n        }\n' "$k" "$url" "$interval"
        done
        for ((i = 0; i < n; i++)); do
            printf '        record h%d.bench.test A {\n            primary 127.1.%d.%d check c%d\n            secondary 127.2.%d.%d\n        }\n' \
                "$i" $((i / 250)) $((i % 250 + 1)) $((i % checks)) $((i / 250)) $((i % 250 + 1))
        done
        printf '    }\n}\n'
        if [ -n "$hostsport" ]; then
            printf 'bench.test:%s {\n    bind 127.0.0.1\n    hosts %s {\n        reload 0\n        no_reverse\n    }\n}\n' "$hostsport" "$hostsfile"
        fi
        if [ -n "$whoamiport" ]; then
            printf 'bench.test:%s {\n    bind 127.0.0.1\n    whoami\n}\n' "$whoamiport"
        fi
    } >"$out"
    # The right answers: the secondary where the check is down (c0, c1).
    for ((i = 0; i < n; i++)); do
        if ((i % checks < 2)); then
            printf 'h%d.bench.test 127.2.%d.%d\n' "$i" $((i / 250)) $((i % 250 + 1))
        else
            printf 'h%d.bench.test 127.1.%d.%d\n' "$i" $((i / 250)) $((i % 250 + 1))
        fi
    done >"$out.expected"
    awk '{print $1, "A"}' "$out.expected" >"$out.queries"
    if [ -n "$hostsfile" ]; then
        # hosts serves the same answers as healthfailover does.
        awk '{print $2, $1}' "$out.expected" >"$hostsfile"
    fi
}

# align: prints whitespace-separated columns aligned (column(1) may be
# missing); widths count UTF-8 characters, not bytes (µ).
align() {
    awk 'function chars(s) {gsub(/[\200-\277]/, "", s); return length(s)}
        {for (i = 1; i <= NF; i++) {cell[NR, i] = $i; if (chars($i) > w[i]) w[i] = chars($i)} if (NF > nf) nf = NF}
        END {for (r = 1; r <= NR; r++) {line = ""; for (i = 1; i <= nf; i++) {c = cell[r, i]; line = line c; if (i < nf) line = line sprintf("%" (w[i] - chars(c) + 2) "s", "")} print line}}'
}

# machine_line prints the machine a table was measured on, then what is given.
machine_line() {
    echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $*"
}

# load_average prints the load average now.
load_average() {
    echo "load average now $(cut -d' ' -f1-3 /proc/loadavg)"
}

# wall_time STARTED BUILD_DONE prints how long the script took, build and run.
wall_time() {
    local end
    end=$(date +%s)
    echo "wall time: $((end - $1)) s ($(($2 - $1)) s build, $((end - $2)) s run)"
}

# finish SMOKE exits 1 if fail() was called, else 0 (saying so in a smoke run).
finish() {
    if ((failures > 0)); then
        echo "FAILED: $failures problem(s), see the log above"
        exit 1
    fi
    (($1)) && echo "smoke: OK"
    exit 0
}

# usage prints the calling script's header comment: its help.
usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}
