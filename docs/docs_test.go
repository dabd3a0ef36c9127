// Package docs_test keeps the README's Go code compiled: every ```go block
// of README.md must be, line for line, a program of examples/ or the part
// of an Example function between its "// README begin" and "// README end"
// comments (which the Go toolchain compiles and vets). A block may start
// with an import group: its paths must be among the example file's imports.
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// sources hold the compiled counterparts of the README's code.
var sources = []string{
	"examples/quickstart/main.go",
	"server/example_readme_test.go",
	"adapter/redis/example_test.go",
	"adapter/redis/sharded_example_test.go",
	"client/example_test.go",
}

var (
	goBlock     = regexp.MustCompile("(?s)```go\n(.*?)```")
	importGroup = regexp.MustCompile(`(?s)^import \((.*?)\)\n\n`)
	marked      = regexp.MustCompile(`(?s)\n([ \t]*)// README begin\n(.*?)\n[ \t]*// README end\n`)
)

// source is a compiled counterpart: a whole file, or a marked region of one.
type source struct {
	name, text, file string
}

func TestReadmeCodeIsCompiled(t *testing.T) {
	readme := read(t, "README.md")
	var srcs []source
	for _, name := range sources {
		file := read(t, name)
		if !strings.HasSuffix(name, "_test.go") {
			srcs = append(srcs, source{name, strings.SplitN(file, "\npackage ", 2)[1], file})
			continue
		}
		for _, m := range marked.FindAllStringSubmatch(file, -1) {
			srcs = append(srcs, source{name, dedent(m[2], m[1]), file})
		}
	}
	blocks := goBlock.FindAllStringSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("no ```go block in README.md")
	}
	used := map[int]bool{}
	for i, b := range blocks {
		code, imports := b[1], ""
		if m := importGroup.FindStringSubmatch(code); m != nil {
			imports, code = m[1], code[len(m[0]):]
		}
		code = strings.TrimPrefix(code, "package ")
		found := -1
		for j, s := range srcs {
			if strings.TrimSpace(s.text) == strings.TrimSpace(code) {
				found = j
				break
			}
		}
		first := strings.SplitN(strings.TrimSpace(code), "\n", 2)[0]
		if found < 0 {
			t.Errorf("README block %d (%q…) is not the code of any of %v: change both together", i+1, first, sources)
			continue
		}
		used[found] = true
		for _, line := range strings.Split(imports, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.Contains(srcs[found].file, line) {
				t.Errorf("README block %d imports %s, which %s does not", i+1, line, srcs[found].name)
			}
		}
	}
	for j, s := range srcs {
		if !used[j] {
			t.Errorf("%s: a README region (%q…) that README.md does not show", s.name, strings.SplitN(strings.TrimSpace(s.text), "\n", 2)[0])
		}
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dedent removes indent from the start of every line of s.
func dedent(s, indent string) string {
	lines := strings.Split(indent+s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, indent)
	}
	return strings.Join(lines, "\n")
}
