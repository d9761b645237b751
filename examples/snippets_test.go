package examples

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fencedBlock is a fenced code block of a Markdown page: its language and its text.
var fencedBlock = regexp.MustCompile("(?ms)^```(python|js)\n(.*?)^```")

// TestConsumerDocSnippetsAreRun holds docs/consumers.md to its claim that its Python
// and Node.js snippets are tested: each must appear, verbatim, in an example file
// that the integration tests run.
func TestConsumerDocSnippetsAreRun(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "consumers.md"))
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{"python": "python/*.py", "js": "node/*.js"}
	blocks := fencedBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 4 {
		t.Fatalf("got %d Python and Node.js snippets in docs/consumers.md, want at least 4", len(blocks))
	}
	for _, b := range blocks {
		lang, code := b[1], b[2]
		files, err := filepath.Glob(sources[lang])
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			found = found || strings.Contains(string(src), code)
		}
		if !found {
			t.Errorf("this %s snippet of docs/consumers.md is in no file of %s, so nothing runs it:\n%s", lang, sources[lang], code)
		}
	}
}
