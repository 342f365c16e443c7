package replicas

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Status is the part of the plugin's /status document that the cluster's
// tests read: each check, and what a cluster adds to it.
type Status struct {
	Checks []Check `json:"checks"`
}

// Check is one check on /status.
type Check struct {
	Block   string   `json:"block"`
	Name    string   `json:"name"`
	Healthy bool     `json:"healthy"`
	Cluster *Cluster `json:"cluster"` // nil without a cluster
}

// Cluster is a check's observers and the views of it that the replica
// holds.
type Cluster struct {
	Observers []string `json:"observers"`
	Views     []View   `json:"views"`
}

// View is one member's view of a check.
type View struct {
	Member     string  `json:"member"`
	Observer   bool    `json:"observer"`
	Fresh      bool    `json:"fresh"`
	Healthy    bool    `json:"healthy"`
	Message    string  `json:"message"`
	AgeSeconds float64 `json:"age_seconds"`
}

// View is member's view of the check, if the replica holds one.
func (c Check) View(member string) (View, bool) {
	if c.Cluster != nil {
		for _, v := range c.Cluster.Views {
			if v.Member == member {
				return v, true
			}
		}
	}
	return View{}, false
}

// CheckStatus reads the replica's /status and returns the check named
// check of the block whose key starts with zone; a check without a cluster
// section is an error.
func (r *Replica) CheckStatus(zone, check string) (Check, error) {
	code, body, err := r.Get("/status", r.Ports.Status)
	if err != nil {
		return Check{}, err
	}
	if code != http.StatusOK {
		return Check{}, fmt.Errorf("/status: %d", code)
	}
	var doc Status
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return Check{}, fmt.Errorf("/status: %v", err)
	}
	for _, c := range doc.Checks {
		if c.Name == check && strings.HasPrefix(strings.TrimPrefix(c.Block, "dns://"), zone) {
			if c.Cluster == nil {
				return c, fmt.Errorf("/status: check %s of %s has no cluster section", check, c.Block)
			}
			return c, nil
		}
	}
	return Check{}, fmt.Errorf("/status has no check %s in %s: %s", check, zone, body)
}
