package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs the whole story (about 10 s: two thresholds of a 1 s check)
// and wants the failover and the failback in what it prints.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	err := run(&out)
	text := out.String()
	if err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, text)
	}
	stop := strings.Index(text, "Stopping US EAST")
	restart := strings.Index(text, "Starting US EAST again")
	if stop < 0 || restart < stop {
		t.Fatalf("the story lacks its stop and restart:\n%s", text)
	}
	failover := regexp.MustCompile(`after \d+\.\ds DNS answers 127\.0\.0\.12 → the page says US WEST`)
	failback := regexp.MustCompile(`after \d+\.\ds DNS answers 127\.0\.0\.11 → the page says US EAST`)
	if !failover.MatchString(text[stop:restart]) {
		t.Errorf("no failover line after stopping US EAST:\n%s", text)
	}
	if !failback.MatchString(text[restart:]) {
		t.Errorf("no failback line after starting US EAST again:\n%s", text)
	}
	for _, want := range []string{"Failover took", "Failback took", "check east: healthy -> unhealthy", "check east: unhealthy -> healthy"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	t.Logf("demo output:\n%s", text)
}
