package docs

import (
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLayering proves the dependency rules the layout promises, with go list:
// no package under internal/ that speaks HTTP (imports net/http itself) depends on
// the registry, so a protocol package knows nothing of how it is configured; and
// pkg/, what code outside this repository imports, depends on no internal package.
func TestLayering(t *testing.T) {
	imports := goList(t, "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
	var http []string
	for _, line := range imports {
		pkg, deps, _ := strings.Cut(line, " ")
		if strings.HasPrefix(pkg, module+"/internal/") && slices.Contains(strings.Fields(deps), "net/http") {
			http = append(http, pkg)
		}
	}
	if !slices.Contains(http, module+"/internal/oauth") {
		t.Fatalf("internal/oauth is not among the packages that speak HTTP (%v): the check is broken", http)
	}
	for _, pkg := range http {
		if slices.Contains(goList(t, "-deps", pkg), module+"/internal/registry") {
			t.Errorf("%s speaks HTTP and depends on internal/registry", pkg)
		}
	}
	// pkg/tokens is a module of its own: its packages are listed from its directory,
	// and its graph must hold no package of the function's module.
	for _, pkg := range goListIn(t, filepath.Join(root, "pkg", "tokens"), "./...") {
		for _, dep := range goListIn(t, filepath.Join(root, "pkg", "tokens"), "-deps", "-test", pkg) {
			if strings.HasPrefix(dep, module+"/internal/") {
				t.Errorf("%s, meant for outside code, depends on %s", pkg, dep)
			}
		}
	}
}

// goList runs go list at the repository's root and returns its output, line by line.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	return goListIn(t, root, args...)
}

// goListIn runs go list in dir.
func goListIn(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list %v: %v\n%s", args, err, stderr)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
