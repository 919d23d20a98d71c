package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminTokensAreChecked(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("good.token", strings.Repeat("a1", 16)+"\n")
	write("short.token", "abc\n")
	write("empty.token", "")
	write("two.token", strings.Repeat("a1", 16)+"\n"+strings.Repeat("b2", 16)+"\n")
	base := "geoip: {allow_missing: true}\nroutes:\n  - {name: a, host: a.example, upstream: 'http://127.0.0.1:1'}\nadmin:\n  tokens:\n"
	for _, tc := range []struct {
		name, tokens string
		want         []string
	}{
		{"a named token", "    - {name: alice, file: good.token}\n", nil},
		{"no name", "    - {file: good.token}\n", []string{"admin.tokens[0].name: is required"}},
		{"a name with capitals", "    - {name: Alice, file: good.token}\n", []string{`admin.tokens[0].name: "Alice" may hold only`}},
		{"two tokens of one name", "    - {name: alice, file: good.token}\n    - {name: alice, file: good.token}\n",
			[]string{`admin.tokens[1].name: "alice" names another token too`}},
		{"no file", "    - {name: alice}\n", []string{"admin.tokens[0].file: is required"}},
		{"a missing file", "    - {name: alice, file: missing.token}\n", []string{"admin.tokens[0].file: open "}},
		{"an empty file", "    - {name: alice, file: empty.token}\n", []string{"admin.tokens[0].file: " + filepath.Join(dir, "empty.token") + " is empty"}},
		{"a short token", "    - {name: alice, file: short.token}\n", []string{"holds 3 characters; a token needs at least 32"}},
		{"two lines", "    - {name: alice, file: two.token}\n", []string{"several lines"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "portcullis.yaml")
			if err := os.WriteFile(path, []byte(base+tc.tokens), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Load(path)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tok, err := f.Admin.Tokens[0].Token()
				if err != nil || string(tok) != strings.Repeat("a1", 16) || f.Admin.Tokens[0].File != filepath.Join(dir, "good.token") {
					t.Fatalf("token %q %v, file %s", tok, err, f.Admin.Tokens[0].File)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("report lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
