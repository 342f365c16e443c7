package monitoring_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The Kubernetes guide, where a user looks, shows how to load both.
func TestDocsMentionEveryFile(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "kubernetes", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"grafana_dashboard", prometheusRuleFile, dashboardFile} {
		if !bytes.Contains(readme, []byte(want)) {
			t.Errorf("deploy/kubernetes/README.md does not mention %s", want)
		}
	}
}
