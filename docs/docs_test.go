// Package docs holds the checks that keep the documentation true to the repository:
// README.md and the pages in docs/ link only to files and headings that exist, every
// page is reachable from the README, every test a page cites exists and is cited only
// in the promise table, the layout table matches the packages' imports, pkg/ depends
// on nothing internal, and every repository path named in a comment exists.
package docs

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// root is the repository, seen from this package's directory, where go test runs.
const root = ".."

const module = "github.com/token-refresher/token-refresher"

// pages returns README.md and every Markdown page in docs/, relative to root.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, d := range docs {
		out = append(out, filepath.Join("docs", filepath.Base(d)))
	}
	return out
}

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// prose returns a Markdown page without its fenced code blocks, line by line, with
// each line's number.
func prose(text string) map[int]string {
	lines := map[int]string{}
	fence := ""
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")) {
			fence = trimmed[:3]
			continue
		}
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		lines[i+1] = line
	}
	return lines
}

var (
	inlineCode = regexp.MustCompile("`[^`]*`")
	mdLink     = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
)

// links returns the targets of the Markdown links in a page, outside code, by the
// line they start on. A link's text may wrap onto the next line.
func links(text string) map[int][]string {
	lines := prose(text)
	all := make([]string, strings.Count(text, "\n")+1)
	for n, line := range lines {
		all[n-1] = line
	}
	// Inline code is blanked out, not removed, so offsets still give line numbers.
	blank := inlineCode.ReplaceAllStringFunc(strings.Join(all, "\n"), func(code string) string {
		return strings.Map(func(r rune) rune {
			if r == '\n' {
				return r
			}
			return ' '
		}, code)
	})
	out := map[int][]string{}
	for _, m := range mdLink.FindAllStringSubmatchIndex(blank, -1) {
		n := strings.Count(blank[:m[0]], "\n") + 1
		out[n] = append(out[n], blank[m[2]:m[3]])
	}
	return out
}

// anchors returns the anchors GitHub gives a page's headings: lower case, inline
// markup and punctuation dropped, spaces turned into hyphens, and "-1", "-2", ...
// appended to repeats.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range prose(text) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		title := mdLink.ReplaceAllStringFunc(m[1], func(l string) string {
			return l[strings.Index(l, "[")+1 : strings.Index(l, "]")]
		})
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// TestDocLinks checks every relative link of README.md and docs/*.md: the file exists,
// and a #anchor names a heading of the page it points to.
func TestDocLinks(t *testing.T) {
	for _, page := range pages(t) {
		text := read(t, page)
		for line, targets := range links(text) {
			for _, target := range targets {
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, anchor, _ := strings.Cut(target, "#")
				file := page
				if path != "" {
					file = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
					if _, err := os.Stat(filepath.Join(root, file)); err != nil {
						t.Errorf("%s:%d: link to %s: no such file", page, line, target)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(file, ".md") {
					t.Errorf("%s:%d: link to %s: an anchor into a file that is not Markdown", page, line, target)
					continue
				}
				if !anchors(read(t, file))[anchor] {
					t.Errorf("%s:%d: link to %s: %s has no heading with anchor #%s", page, line, target, file, anchor)
				}
			}
		}
	}
}

// TestDocPagesLinkedFromReadme checks that a reader who starts at the README can reach
// every page in docs/.
func TestDocPagesLinkedFromReadme(t *testing.T) {
	linked := map[string]bool{}
	for _, targets := range links(read(t, "README.md")) {
		for _, target := range targets {
			path, _, _ := strings.Cut(target, "#")
			linked[filepath.Clean(filepath.FromSlash(path))] = true
		}
	}
	for _, page := range pages(t)[1:] {
		if !linked[page] {
			t.Errorf("%s is not linked from README.md", page)
		}
	}
}

var citedTest = regexp.MustCompile("`((?:Test|Fuzz|Benchmark|Example)[A-Za-z0-9_]*)(/[^`]*)?`")

// The promise table is the one place the documentation names tests: prose explains,
// the table says which tests hold each promise.
const (
	promisePage    = "docs/design.md"
	promiseHeading = "## What it promises, and the tests that hold it"
)

// TestDocCitedTestsExist checks that every test, fuzz target, benchmark and example
// that README.md and docs/*.md cite in backticks is a func in some _test.go file, and
// that only the promise table cites them.
func TestDocCitedTestsExist(t *testing.T) {
	funcs := testFuncs(t)
	if !funcs["TestDocCitedTestsExist"] {
		t.Fatal("the scan of _test.go files did not find this test: the check is broken")
	}
	cited := 0
	for _, page := range pages(t) {
		lines := prose(read(t, page))
		table := promiseTable(lines, page)
		for line, text := range lines {
			for _, m := range citedTest.FindAllStringSubmatch(text, -1) {
				if !funcs[m[1]] {
					t.Errorf("%s:%d: cites %s, which no _test.go file defines", page, line, m[1])
				}
				if !table[line] {
					t.Errorf("%s:%d: names %s outside the promise table (%s, %q): prose names no tests", page, line, m[1], promisePage, promiseHeading)
					continue
				}
				cited++
			}
		}
	}
	if cited < 50 {
		t.Errorf("the promise table cites %d tests, want at least 50: the check is broken", cited)
	}
}

// promiseTable returns the numbers of the table rows under promiseHeading, when page
// is promisePage.
func promiseTable(lines map[int]string, page string) map[int]bool {
	rows := map[int]bool{}
	if page != filepath.FromSlash(promisePage) {
		return rows
	}
	start, last := 0, 0
	for n, line := range lines {
		if strings.TrimSpace(line) == promiseHeading {
			start = n
		}
		last = max(last, n)
	}
	if start == 0 {
		return rows
	}
	for n := start + 1; n <= last; n++ {
		line := lines[n]
		if heading.MatchString(line) {
			break
		}
		if strings.HasPrefix(line, "|") {
			rows[n] = true
		}
	}
	return rows
}

var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark|Example)[A-Za-z0-9_]*)\(`)

// testFuncs returns the names of the test, fuzz, benchmark and example functions of
// every _test.go file in the repository, whatever its build tags.
func testFuncs(t *testing.T) map[string]bool {
	t.Helper()
	funcs := map[string]bool{}
	walk(t, func(rel string) {
		if !strings.HasSuffix(rel, "_test.go") {
			return
		}
		for _, m := range testFunc.FindAllStringSubmatch(read(t, rel), -1) {
			funcs[m[1]] = true
		}
	})
	return funcs
}

// walk calls fn with the path, relative to root, of every file of the repository,
// leaving out what tools and installs put there (dot directories, node_modules).
func walk(t *testing.T, fn func(rel string)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		fn(rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	// repoPath matches a path under one of the repository's top-level folders, or
	// under the folder of shared project notes, which is not part of the repository
	// (so naming it in a comment is always stale).
	repoPath = regexp.MustCompile(`(?:^|[\s("'\x60,;:=])((?:\.ci|cmd|docs|events|examples|functions|internal|localstack|pkg|scripts|shared|testdata)/[A-Za-z0-9_./*{}-]*)`)
	// bareFile matches a file name that stands alone in a Go comment, such as a
	// Markdown page named without its folder: it is looked for next to the
	// commenting file and at the root.
	bareFile = regexp.MustCompile(`(?:^|[\s("'\x60,;:])([A-Za-z0-9_-]+\.(?:md|yaml|yml|toml|json|mk|txt))\b`)
	// notPaths look like repository paths but name something else.
	notPaths = map[string]bool{
		"localstack/localstack": true, // the Docker image
	}
)

// TestCommentPathsExist checks that every repository path named in a comment exists:
// in Go comments, and in the comment lines of scripts, Makefiles and YAML or TOML
// files. A comment that names a file which has moved or gone misleads the reader.
func TestCommentPathsExist(t *testing.T) {
	checked := 0
	walk(t, func(rel string) {
		var comments []comment
		isGo := strings.HasSuffix(rel, ".go")
		switch base := filepath.Base(rel); {
		case isGo:
			comments = goComments(t, rel)
		case base == "Makefile" || strings.HasSuffix(base, ".mk") || strings.HasSuffix(base, ".yaml") ||
			strings.HasSuffix(base, ".yml") || strings.HasSuffix(base, ".toml") || strings.HasSuffix(base, ".txt") ||
			strings.HasSuffix(base, ".py") || isScript(t, rel):
			comments = hashComments(t, rel)
		default:
			return
		}
		for _, c := range comments {
			checked++
			for _, name := range namedPaths(c.text, isGo) {
				if !exists(rel, name) {
					t.Errorf("%s:%d: the comment names %s, which does not exist", rel, c.line, name)
				}
			}
		}
	})
	if checked < 100 {
		t.Fatalf("only %d comments checked: the scan is broken", checked)
	}
}

type comment struct {
	line int
	text string
}

func goComments(t *testing.T, rel string) []comment {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, rel), nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []comment
	for _, g := range f.Comments {
		for _, c := range g.List {
			out = append(out, comment{fset.Position(c.Slash).Line, c.Text})
		}
	}
	return out
}

// hashComments returns the lines of a script or configuration file whose first
// non-blank character is '#', and the text after " # " on other lines.
func hashComments(t *testing.T, rel string) []comment {
	t.Helper()
	var out []comment
	sc := bufio.NewScanner(strings.NewReader(read(t, rel)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, comment{n, line})
		} else if _, after, ok := strings.Cut(line, " # "); ok {
			out = append(out, comment{n, after})
		}
	}
	return out
}

// isScript reports whether a file starts with "#!".
func isScript(t *testing.T, rel string) bool {
	t.Helper()
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 2)
	n, _ := f.Read(head)
	return n == 2 && string(head) == "#!"
}

// namedPaths returns the repository paths a comment names, without trailing
// punctuation; a path with a wildcard or placeholder is cut before it. Bare file
// names count only in Go comments: scripts and configuration files name files of
// other projects too (an upstream lock file, a package's own files).
func namedPaths(text string, bare bool) []string {
	res := []*regexp.Regexp{repoPath}
	if bare {
		res = append(res, bareFile)
	}
	var out []string
	for _, re := range res {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			p := m[1]
			if i := strings.IndexAny(p, "*{"); i >= 0 {
				p = p[:strings.LastIndex(p[:i], "/")+1]
			}
			p = strings.TrimRight(p, ".,;:")
			if p != "" && !notPaths[p] {
				out = append(out, p)
			}
		}
	}
	return out
}

// exists reports whether name, named in file rel, is a path of the repository: from
// the root, or next to rel.
func exists(rel, name string) bool {
	for _, base := range []string{root, filepath.Join(root, filepath.Dir(rel))} {
		if _, err := os.Stat(filepath.Join(base, filepath.FromSlash(name))); err == nil {
			return true
		}
	}
	return false
}

// layoutPage holds the layout table, one row per path.
const layoutPage = "docs/design.md"

var (
	layoutRow = regexp.MustCompile("^\\| `([^`]+/)` \\|[^|]*\\|([^|]*)\\|")
	codeSpan  = regexp.MustCompile("`([^`]+)`")
)

// TestLayoutMatchesImports checks the layout table of docs/design.md against the code: every
// Go package has a row, and imports no package of the project that its row does not
// list. Tests may import more (test helpers, fakes).
func TestLayoutMatchesImports(t *testing.T) {
	allowed := map[string][]string{}
	for _, line := range strings.Split(read(t, layoutPage), "\n") {
		m := layoutRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		allowed[m[1]] = []string{}
		for _, imp := range codeSpan.FindAllStringSubmatch(m[2], -1) {
			allowed[m[1]] = append(allowed[m[1]], imp[1])
		}
	}
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	packages := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		dir := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/") + "/"
		packages++
		may, ok := allowed[dir]
		if !ok {
			t.Errorf("%s, Layout: no row for %s", layoutPage, dir)
			continue
		}
		for _, imp := range fields[1:] {
			if dep, ok := strings.CutPrefix(imp, module+"/"); ok && !slices.Contains(may, dep) {
				t.Errorf("%s imports %s, which its row in %s, Layout, does not list", dir, dep, layoutPage)
			}
		}
	}
	if packages < 10 {
		t.Fatalf("go list found %d packages: the check is broken", packages)
	}
}
