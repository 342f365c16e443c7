// Command backends serves the health-check targets of the benchmark scripts:
// plain HTTP on a few loopback listeners, answering 500 on /fail and 200 "OK"
// on anything else (a tcp check only needs the accept). It also reports a
// loopback port where nothing listens, for checks that must be down.
//
//	backends -host 127.0.0.1 -n 8 -out FILE -max 1h
//
// FILE gets one line per listener ("http 127.0.0.1:PORT"), one "closed
// 127.0.0.1:PORT" and a last line "ready". The process ends on SIGTERM or
// SIGINT, or after -max at the latest.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
)

func main() {
	host := flag.String("host", "127.0.0.1", "loopback address to listen on")
	n := flag.Int("n", 8, "number of HTTP listeners (each is a separate destination, so that probes do not run short of ports)")
	out := flag.String("out", "", "file to write the addresses to (default: stdout)")
	maxLife := flag.Duration("max", time.Hour, "exit after this long at the latest")
	flag.Parse()
	if ip := net.ParseIP(*host); ip == nil || !ip.IsLoopback() {
		log.Fatalf("backends: %q is not a loopback address", *host)
	}

	var lines []string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fail") {
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "OK\n")
	})
	for range *n {
		b, err := fakebackend.StartHTTP(fakebackend.Options{IP: *host, Handler: handler})
		if err != nil {
			log.Fatalf("backends: %v", err)
		}
		lines = append(lines, "http "+b.Addr())
	}
	// A port that was free a moment ago and is closed now: connections to it
	// are refused.
	closed, err := fakebackend.ClosedPort(*host)
	if err != nil {
		log.Fatalf("backends: %v", err)
	}
	lines = append(lines, "closed "+closed)
	lines = append(lines, "ready")

	text := strings.Join(lines, "\n") + "\n"
	if *out == "" {
		fmt.Print(text)
	} else {
		// Written whole and renamed, so that a reader never sees half of it.
		tmp := *out + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			log.Fatalf("backends: %v", err)
		}
		if err := os.Rename(tmp, *out); err != nil {
			log.Fatalf("backends: %v", err)
		}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(*maxLife):
	}
}
