package test

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	_ "github.com/healthfailover/healthfailover"
	"github.com/healthfailover/healthfailover/internal/inprocess"
)

const readme = "../README.md"

// TestReadmeCorefiles loads every corefile block of the README, fenced as
// CoreDNS's own READMEs fence the ones its test/readme_test.go loads:
//
//	~~~ corefile
//	. {
//	    whoami
//	}
//	~~~
//
// Every directive's setup runs (parsing and wiring, as at start-up), but
// nothing starts: caddy's justValidate runs no OnStartup, opens no socket
// and starts no probe, so the README's documentation addresses are never
// sent a packet.
func TestReadmeCorefiles(t *testing.T) {
	blocks, err := corefileBlocks(readme)
	if err != nil {
		t.Fatal(err)
	}
	inprocess.PlaceDirective()
	if len(blocks) == 0 {
		t.Fatalf("%s has no corefile block (fenced as ~~~ corefile … ~~~): nothing to test", readme)
	}
	for _, b := range blocks {
		// Blank lines ahead of the block make caddy's errors name the
		// README's own line numbers.
		body := strings.Repeat("\n", b.line-1) + b.text
		input := caddy.CaddyfileInput{Contents: []byte(body), Filepath: "README.md", ServerTypeName: "dns"}
		if err := caddy.ValidateAndExecuteDirectives(input, nil, true); err != nil {
			t.Errorf("the corefile block at README.md:%d does not load: %v\n%s", b.line, err, b.text)
		}
	}
}

// TestReadmeSections checks the README has CoreDNS's plugin sections, in order.
func TestReadmeSections(t *testing.T) {
	want := []string{"Name", "Description", "Syntax", "Examples", "Metrics", "Ready", "Bugs", "See Also"}
	f, err := os.Open(readme)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if h, ok := strings.CutPrefix(s.Text(), "## "); ok && slices.Contains(want, h) {
			got = append(got, h)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s has the sections %q, want %q in this order", readme, got, want)
	}
}

// corefileBlock is one corefile block of a markdown file: its text, and the
// line its first line of text is on.
type corefileBlock struct {
	line int
	text string
}

// corefileBlocks returns the blocks opened by "~~~ corefile" (or
// "``` corefile") and closed by the same fence.
func corefileBlocks(path string) ([]corefileBlock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		blocks []corefileBlock
		fence  string // the open block's fence, "" outside a block
		cur    corefileBlock
		n      int
	)
	s := bufio.NewScanner(f)
	for s.Scan() {
		n++
		line := s.Text()
		switch {
		case fence == "" && (line == "~~~ corefile" || line == "``` corefile"):
			fence = line[:3]
			cur = corefileBlock{line: n + 1}
		case fence != "" && line == fence:
			blocks = append(blocks, cur)
			fence = ""
		case fence != "":
			cur.text += line + "\n"
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if fence != "" {
		return nil, fmt.Errorf("%s: the corefile block opened at line %d is never closed", path, cur.line-1)
	}
	return blocks, nil
}
