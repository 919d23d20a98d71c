package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/portcullis/portcullis"

// forbidden lists, for each part of the tree, the parts its non-test code
// must not import: data flows cmd → plugins → gateway → policies → OPA, so
// that the core never depends on an implementation of its extension points.
var forbidden = map[string][]string{
	"gateway":   {"plugins", "cmd"},
	"policies":  {"gateway", "plugins", "cmd"},
	"plugins":   {"cmd"},
	"config":    {"plugins", "cmd"},
	"sampleapp": {"plugins", "cmd"},
}

// importViolations returns "file imports path" for every forbidden import
// under root.
func importViolations(t *testing.T, root string) []string {
	t.Helper()
	var bad []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		rules := forbidden[top]
		if len(rules) == 0 {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, part := range rules {
				if p == module+"/"+part || strings.HasPrefix(p, module+"/"+part+"/") {
					bad = append(bad, filepath.ToSlash(rel)+" imports "+p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bad
}

func TestImportDirection(t *testing.T) {
	for _, v := range importViolations(t, "../..") {
		t.Errorf("%s: the core must not depend on what sits above it (cmd → plugins → gateway → policies)", v)
	}
}

func TestImportDirectionCatchesAViolation(t *testing.T) {
	dir := t.TempDir()
	for path, src := range map[string]string{
		"gateway/bad.go":     "package gateway\n\nimport _ \"" + module + "/plugins/store/sqlite\"\n",
		"gateway/ok_test.go": "package gateway\n\nimport _ \"" + module + "/plugins/geoip\"\n",
		"policies/bad.go":    "package policies\n\nimport _ \"" + module + "/gateway\"\n",
		"plugins/ok.go":      "package plugins\n\nimport _ \"" + module + "/gateway\"\n",
	} {
		writeFile(t, filepath.Join(dir, path), src)
	}
	got := strings.Join(importViolations(t, dir), "\n")
	want := "gateway/bad.go imports " + module + "/plugins/store/sqlite\npolicies/bad.go imports " + module + "/gateway"
	if got != want {
		t.Fatalf("violations:\n%s\nwant:\n%s", got, want)
	}
}

func writeFile(t *testing.T, path, src string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	var out, errs strings.Builder
	run(t.Context(), []string{"--help"}, strings.NewReader(""), &out, &errs)
	help := out.String() + errs.String()
	for _, cmd := range []string{"serve", "check", "demo", "admin  user add|list|unlock", "admin  keys list|rotate", "policy test", "policy eval"} {
		if !strings.Contains(help, cmd) {
			t.Errorf("--help does not list %q:\n%s", cmd, help)
		}
	}
}
