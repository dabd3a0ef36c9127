package testkit

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ModulePath is the module whose root RepoRoot looks for.
const ModulePath = "github.com/ioswarm/ioswarm"

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot returns the root directory of the ioswarm module: the closest directory, walking
// up from the working directory, whose go.mod declares module ModulePath. Nested modules
// (integration/node, examples) are skipped over. It fails the test when there is none.
func RepoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() { rootDir, rootErr = findRepoRoot() })
	if rootErr != nil {
		t.Fatalf("testkit: %v", rootErr)
	}
	return rootDir
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if modulePath(filepath.Join(dir, "go.mod")) == ModulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod declaring module " + ModulePath + " above the working directory")
		}
		dir = parent
	}
}

// modulePath returns the module path declared by the go.mod file at path, or "".
func modulePath(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}
