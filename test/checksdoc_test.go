package test

import (
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/healthfailover/healthfailover/internal/inprocess"
)

// The corefile blocks of docs/checks.md load, as the README's do.
func TestChecksDocCorefiles(t *testing.T) {
	const doc = "../docs/checks.md"
	blocks, err := corefileBlocks(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no corefile block", doc)
	}
	inprocess.PlaceDirective()
	for _, b := range blocks {
		body := strings.Repeat("\n", b.line-1) + b.text
		input := caddy.CaddyfileInput{Contents: []byte(body), Filepath: "docs/checks.md", ServerTypeName: "dns"}
		if err := caddy.ValidateAndExecuteDirectives(input, nil, true); err != nil {
			t.Errorf("the corefile block at docs/checks.md:%d does not load: %v\n%s", b.line, err, b.text)
		}
	}
}
