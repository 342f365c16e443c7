package test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// statusDoc is the part of the status endpoint's JSON the tests read, as a
// user's tool would decode it.
type statusDoc struct {
	Checks  []checkStatus  `json:"checks"`
	Records []recordStatus `json:"records"`
}

type checkStatus struct {
	Name                string      `json:"name"`
	Healthy             bool        `json:"healthy"`
	Checked             bool        `json:"checked"`
	Since               time.Time   `json:"since"`
	Last                *lastResult `json:"last"`
	ConsecutiveFailures int         `json:"consecutive_failures"`
	Successes           uint64      `json:"successes"`
	Failures            uint64      `json:"failures"`
	Transitions         uint64      `json:"transitions"`
	HealthyChildren     *int        `json:"healthy_children"`
}

type lastResult struct {
	Reason  string           `json:"reason"`
	Message string           `json:"message"`
	At      time.Time        `json:"at"`
	Phases  map[string]int64 `json:"phases_us"`
}

type recordStatus struct {
	Name        string   `json:"name"`
	ServingTier int      `json:"serving_tier"`
	Answer      []string `json:"answer"`
}

// readStatus fetches and decodes the status endpoint at addr (HOST:PORT).
func readStatus(t *testing.T, addr string) statusDoc {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/status")
	if code != http.StatusOK {
		t.Fatalf("status endpoint: %d %s", code, body)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, body)
	}
	return doc
}

func findCheck(doc statusDoc, name string) (checkStatus, bool) {
	for _, c := range doc.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return checkStatus{}, false
}
