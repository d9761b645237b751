package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/token-refresher/token-refresher/internal/registry"
)

// yamlBlock is a fenced YAML block of a page.
var yamlBlock = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

// TestDocRegistryExamplesLoad loads every registry the documentation shows (each
// YAML block that starts with "providers:") with the function's own loader, so an
// example a reader copies is one the function accepts.
func TestDocRegistryExamplesLoad(t *testing.T) {
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(root, "README.md"))
	loaded := 0
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range yamlBlock.FindAllStringSubmatch(string(text), -1) {
			if !strings.HasPrefix(m[1], "providers:") {
				continue
			}
			loaded++
			if _, err := registry.Load(strings.NewReader(m[1]), registry.Options{}); err != nil {
				t.Errorf("%s: an example registry does not load: %v", filepath.Base(page), err)
			}
		}
	}
	if loaded == 0 {
		t.Fatal("found no example registry: the check is broken")
	}
}
