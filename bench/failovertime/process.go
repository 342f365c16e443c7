package main

import (
	"fmt"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/healthfailover/healthfailover/internal/corednsproc"
)

// dnsperfLoad is dnsperf holding a steady query rate in the background.
type dnsperfLoad struct {
	p *corednsproc.Process
}

func startLoad(dnsperf, server string, port, qps int, queries string, limit time.Duration) (*dnsperfLoad, error) {
	p, err := corednsproc.Run(dnsperf, "-s", server, "-p", strconv.Itoa(port), "-d", queries,
		"-Q", strconv.Itoa(qps), "-c", "2", "-T", "1", "-t", "1",
		"-l", strconv.Itoa(int(limit.Seconds())+1))
	if err != nil {
		return nil, err
	}
	return &dnsperfLoad{p: p}, nil
}

var (
	dnsperfQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	dnsperfLost = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	dnsperfSent = regexp.MustCompile(`Queries sent:\s+([0-9]+)`)
	dnsperfCode = regexp.MustCompile(`Response codes:\s+(.*)`)
)

// finish stops dnsperf (SIGINT makes it print its statistics) and returns
// a one-line summary.
func (l *dnsperfLoad) finish() string {
	l.p.Stop(syscall.SIGINT, 5*time.Second)
	out := l.p.Output()
	get := func(re *regexp.Regexp) string {
		if m := re.FindStringSubmatch(out); m != nil {
			return m[1]
		}
		return "?"
	}
	return fmt.Sprintf("%s QPS, %s sent, %s lost, response codes: %s", get(dnsperfQPS), get(dnsperfSent), get(dnsperfLost), get(dnsperfCode))
}
