package checker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The scale benchmark runs its backends in a child process (this test
// binary again, as TestScaleBackends), so that the CPU time it reports for
// the checker is the checker's alone; the backends' is reported apart.

const scaleBackendsEnv = "HEALTHFAILOVER_SCALE_BACKENDS"

// TestScaleBackends is not a test: it is the backends of BenchmarkScale10k
// when run as its child, and returns at once otherwise.
func TestScaleBackends(t *testing.T) {
	if os.Getenv(scaleBackendsEnv) != "1" {
		return
	}
	// Several loopback destinations, so that the 4-tuples of ten thousand
	// connections a second never run short.
	for i := 2; i <= 5; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		tcp, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				conn, err := tcp.Accept()
				if err != nil {
					return
				}
				conn.Close() // as a server would: the probe's reset follows
			}
		}()
		web, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			// A minimal HTTP server, so that the backends take as little
			// of the machine as they can: read the request, answer, close.
			reply := []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
			for {
				conn, err := web.Accept()
				if err != nil {
					return
				}
				go func() {
					defer conn.Close()
					conn.SetDeadline(time.Now().Add(5 * time.Second))
					buf := make([]byte, 1024)
					for n := 0; !bytes.Contains(buf[:n], []byte("\r\n\r\n")); {
						m, err := conn.Read(buf[n:])
						if err != nil || n+m == len(buf) {
							return
						}
						n += m
					}
					conn.Write(reply)
				}()
			}
		}()
		fmt.Printf("tcp %s\nhttp %s\n", tcp.Addr(), web.Addr())
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes our stdin
	os.Exit(0)
}

// backends starts the child process and returns its addresses by kind.
func backends(b *testing.B) (map[Kind][]string, func() time.Duration, func()) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleBackends$", "-test.count=1")
	cmd.Env = append(os.Environ(), scaleBackendsEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	addrs := map[Kind][]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		if kind, addr, ok := strings.Cut(sc.Text(), " "); ok {
			addrs[Kind(kind)] = append(addrs[Kind(kind)], addr)
		}
	}
	if len(addrs[TCP]) == 0 || len(addrs[HTTP]) == 0 {
		stop()
		b.Fatalf("backends did not start: %v", addrs)
	}
	cpu := func() time.Duration { return processCPU(b, cmd.Process.Pid) }
	return addrs, cpu, stop
}

// processCPU reads a process's user+system time from /proc.
func processCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ
	return time.Duration(utime+stime) * time.Second / ticks
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScale10k runs 10,000 checks at a 1 s interval against loopback
// backends for several seconds, and reports the checker's CPU time per
// probe, its memory per check and how late probes start against their
// schedule. Run it once:
//
//	go test -run '^$' -bench Scale10k -benchtime 1x ./checker/
//
// HEALTHFAILOVER_SCALE_KIND=tcp|http|mixed (default mixed, half each) and
// HEALTHFAILOVER_SCALE_SECONDS (default 5) change the load.
func BenchmarkScale10k(b *testing.B) {
	if testing.Short() {
		b.Skip("long")
	}
	const checks = 10000
	const interval = time.Second
	seconds := 5
	if s, err := strconv.Atoi(os.Getenv("HEALTHFAILOVER_SCALE_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	mix := os.Getenv("HEALTHFAILOVER_SCALE_KIND")
	if mix == "" {
		mix = "mixed"
	}

	addrs, backendCPU, stop := backends(b)
	defer stop()

	specs := make([]Spec, checks)
	for i := range specs {
		kind := TCP
		if mix == "http" || (mix == "mixed" && i%2 == 1) {
			kind = HTTP
		}
		list := addrs[kind]
		specs[i] = Spec{Name: fmt.Sprintf("check-%05d", i), Kind: kind, Address: list[i%len(list)],
			Interval: interval, ConnectTimeout: interval / 2, ResponseTimeout: interval / 2}
	}

	var (
		measuring atomic.Bool
		late      = make([]int64, checks*(seconds+2))
		samples   atomic.Int64
		warmLate  atomic.Int64 // the most a probe before the window was late
		probes    atomic.Int64
		failures  atomic.Int64
		lastFail  atomic.Value
	)
	opts := Options{
		OnResult: func(check string, r Result) {
			if !measuring.Load() {
				return
			}
			probes.Add(1)
			if !r.OK {
				failures.Add(1)
				lastFail.Store(r.Message)
			}
		},
		onProbe: func(check string, due, began time.Time) {
			d := int64(began.Sub(due))
			if !measuring.Load() {
				for w := warmLate.Load(); d > w && !warmLate.CompareAndSwap(w, d); w = warmLate.Load() {
				}
				return
			}
			if i := samples.Add(1) - 1; i < int64(len(late)) {
				late[i] = d
			}
		},
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	for range b.N {
		c, err := New(specs, opts)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		c.Start(nil)
		for !c.Ready() && time.Since(start) < 10*interval {
			time.Sleep(time.Millisecond)
		}
		ready := time.Since(start)
		// Let the first probes, spread over the first quarter second, pass.
		time.Sleep(time.Until(start.Add(interval + interval/2)))

		measuring.Store(true)
		wall, cpu, bcpu := time.Now(), selfCPU(), backendCPU()
		time.Sleep(time.Duration(seconds) * interval)
		measuring.Store(false)
		elapsed, cpu, bcpu := time.Since(wall), selfCPU()-cpu, backendCPU()-bcpu

		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		goroutines := runtime.NumGoroutine()
		c.Stop()

		n := float64(probes.Load())
		lateness := slices.Clone(late[:min(samples.Load(), int64(len(late)))])
		slices.Sort(lateness)
		pct := func(q float64) float64 {
			if len(lateness) == 0 {
				return 0
			}
			return 100 * float64(lateness[int(q*float64(len(lateness)-1))]) / float64(interval)
		}
		b.ReportMetric(n/elapsed.Seconds(), "probes/s")
		b.ReportMetric(float64(failures.Load()), "failed-probes")
		b.ReportMetric(float64(cpu.Microseconds())/n, "checker-cpu-µs/probe")
		b.ReportMetric(float64(bcpu.Microseconds())/n, "backend-cpu-µs/probe")
		b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "checker-cores")
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/checks, "heap-B/check")
		b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/checks, "stack-B/check")
		b.ReportMetric(float64(goroutines), "goroutines")
		over := len(lateness) - sort.Search(len(lateness), func(i int) bool { return lateness[i] > int64(interval/10) })
		b.ReportMetric(100*float64(over)/float64(max(1, len(lateness))), "over-10%-late-%")
		b.ReportMetric(pct(0.5), "late-p50-%")
		b.ReportMetric(pct(0.99), "late-p99-%")
		b.ReportMetric(pct(1), "late-max-%")
		b.ReportMetric(100*float64(warmLate.Load())/float64(interval), "first-wave-late-max-%")
		b.ReportMetric(ready.Seconds(), "ready-s")
		if f := failures.Load(); f > 0 {
			b.Logf("%d probes failed, the last with %q", f, lastFail.Load())
		}
	}
}
