package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/portcullis/portcullis"

// forbidden lists, for each directory of the tree, the packages its
// non-test code must not import; the longest directory that contains a file
// gives its rules. A rule "x/..." is x and everything under it; a plain "x"
// is that package alone. Data flows cmd → plugins → gateway → policies → OPA,
// so that the core never depends on an implementation of its extension
// points; inside gateway, the root assembles the rooms (login, stepup, and
// the flows to come), which never import each other; the rooms build on
// session, device, credential, facts and notify, and those on web and the
// store contract, never the other way.
var forbidden = func() map[string][]string {
	core := []string{"plugins/...", "cmd/..."}
	rooms := []string{"gateway", "gateway/login/...", "gateway/stepup/...", "gateway/settings/...", "gateway/passkey/..."}
	with := func(lists ...[]string) []string {
		var out []string
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}
	return map[string][]string{
		"gateway":            core,
		"gateway/login":      with(core, []string{"gateway", "gateway/stepup/...", "gateway/settings/...", "gateway/passkey/..."}),
		"gateway/stepup":     with(core, []string{"gateway", "gateway/login/...", "gateway/settings/...", "gateway/passkey/..."}),
		"gateway/settings":   with(core, []string{"gateway", "gateway/login/...", "gateway/stepup/...", "gateway/passkey/..."}),
		"gateway/passkey":    with(core, []string{"gateway", "gateway/login/...", "gateway/stepup/...", "gateway/settings/..."}),
		"gateway/session":    with(core, rooms),
		"gateway/device":     with(core, rooms, []string{"gateway/session/..."}),
		"gateway/notify":     with(core, rooms, []string{"gateway/session/...", "gateway/web/...", "gateway/credential/...", "gateway/facts/...", "gateway/device/..."}),
		"gateway/credential": with(core, rooms, []string{"gateway/session/..."}),
		"gateway/facts":      with(core, rooms, []string{"gateway/session/...", "gateway/web/..."}),
		"gateway/web":        with(core, rooms, []string{"gateway/session/...", "gateway/credential/...", "gateway/facts/..."}),
		"gateway/store":      with(core, rooms, []string{"gateway/session/...", "gateway/credential/...", "gateway/facts/...", "gateway/web/...", "policies/..."}),
		"policies":           {"gateway/...", "plugins/...", "cmd/..."},
		"plugins":            {"cmd/..."},
		"config":             core,
		"sampleapp":          core,
		"assertion":          {"gateway/...", "plugins/...", "cmd/...", "policies/..."},
		"certs":              {"gateway/...", "plugins/...", "cmd/...", "policies/..."},
	}
}()

// rulesFor returns the rules of the longest directory in forbidden that
// holds rel (a slash-separated path of a file).
func rulesFor(rel string) []string {
	best, rules := -1, []string(nil)
	for dir, r := range forbidden {
		if strings.HasPrefix(rel, dir+"/") && len(dir) > best {
			best, rules = len(dir), r
		}
	}
	return rules
}

// breaks reports whether importing p breaks the rule.
func breaks(p, rule string) bool {
	if sub, ok := strings.CutSuffix(rule, "/..."); ok {
		return p == module+"/"+sub || strings.HasPrefix(p, module+"/"+sub+"/")
	}
	return p == module+"/"+rule
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
		rel = filepath.ToSlash(rel)
		rules := rulesFor(rel)
		if len(rules) == 0 {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, rule := range rules {
				if breaks(p, rule) {
					bad = append(bad, rel+" imports "+p)
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(bad)
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
		"gateway/bad.go":       "package gateway\n\nimport _ \"" + module + "/plugins/store/sqlite\"\n",
		"gateway/ok_test.go":   "package gateway\n\nimport _ \"" + module + "/plugins/geoip\"\n",
		"policies/bad.go":      "package policies\n\nimport _ \"" + module + "/gateway\"\n",
		"plugins/ok.go":        "package plugins\n\nimport _ \"" + module + "/gateway\"\n",
		"gateway/web/bad.go":   "package web\n\nimport _ \"" + module + "/gateway/session\"\n",
		"gateway/login/ok.go":  "package login\n\nimport _ \"" + module + "/gateway/session\"\n",
		"gateway/login/bad.go": "package login\n\nimport _ \"" + module + "/gateway\"\n",
		"gateway/store/bad.go": "package store\n\nimport _ \"" + module + "/policies\"\n",
		"gateway/ok.go":        "package gateway\n\nimport _ \"" + module + "/gateway/login\"\n",
	} {
		writeFile(t, filepath.Join(dir, path), src)
	}
	got := strings.Join(importViolations(t, dir), "\n")
	want := strings.Join([]string{
		"gateway/bad.go imports " + module + "/plugins/store/sqlite",
		"gateway/login/bad.go imports " + module + "/gateway",
		"gateway/store/bad.go imports " + module + "/policies",
		"gateway/web/bad.go imports " + module + "/gateway/session",
		"policies/bad.go imports " + module + "/gateway",
	}, "\n")
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
