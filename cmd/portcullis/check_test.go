package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/plugins/directory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// check runs `portcullis check` on a file and returns what a person sees
// on stderr.
func check(t *testing.T, path string) string {
	t.Helper()
	var out, errs bytes.Buffer
	err := run(t.Context(), []string{"check", "--config", path}, nil, &out, &errs)
	if err == nil {
		t.Fatalf("check %s passed: %s", path, out.String())
	}
	report(&errs, err)
	return errs.String()
}

// TestCheckGolden: testdata/check.yaml has one value of the wrong type, one
// unknown key and three broken rules (the config package's and the
// gateway's); check names each once, on its line, in the same order every
// time.
func TestCheckGolden(t *testing.T) {
	const fixture, golden = "testdata/check.yaml", "testdata/check.golden"
	got := check(t, fixture)
	for range 5 {
		if again := check(t, fixture); again != got {
			t.Fatalf("a second run differs:\n%s\nthen:\n%s", got, again)
		}
	}
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("check %s:\n%s\nwant (%s; go test -update rewrites it):\n%s", fixture, got, golden, want)
	}
	// Independently of the golden file, so that -update cannot bless a lost
	// or doubled problem.
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	for _, want := range []string{
		fixture + ":9:3: listen.admin: ",
		fixture + ":15:17: session.idle_timeout: ",
		fixture + ":25:5: routes[1].host: ",
		fixture + ":27:5: routes[1].timeout: unknown key",
		fixture + ":30:3: identity.assertion_ttl: ",
	} {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%q is reported %d times, want once:\n%s", want, n, got)
		}
	}
	if len(lines) != 5 {
		t.Errorf("%d problems reported, want 5:\n%s", len(lines), got)
	}
}

// TestCheckNamesSyntaxErrorLine: yaml.v3 says "line 3" for this file (where
// the list began, counted from 0); the mistake is on line 6.
func TestCheckNamesSyntaxErrorLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	const bad = "geoip: {allow_missing: true}\n" +
		"routes:\n" +
		"  - name: savings\n" +
		"    host: savings.example\n" +
		"    upstream: http://127.0.0.1:9101\n" +
		"   path_prefix: /x\n" // one space short
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	got := check(t, path)
	want := path + ":6: not valid YAML: did not find expected '-' indicator\n"
	if got != want {
		t.Fatalf("check:\n%s\nwant:\n%s", got, want)
	}
}

// TestCheckDirectory: check opens the customer directory as serve does, so
// a customer file with a bad record, a token file others can read and a
// plain-http URL to another host are reported before serve is started, and
// a good file passes.
func TestCheckDirectory(t *testing.T) {
	dir := t.TempDir()
	for name, f := range map[string]struct {
		data []byte
		mode os.FileMode
	}{
		"customers.json": {directory.SampleJSON(), 0o600},
		"broken.json":    {[]byte(`{"customers": [{"customer_id": "c1"}]}`), 0o600},
		"token":          {[]byte("s3cret-token\n"), 0o600},
		"open-token":     {[]byte("s3cret-token\n"), 0o644},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	const head = "geoip: {allow_missing: true}\nroutes: [{name: a, host: a.example, upstream: 'http://127.0.0.1:1'}]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"a good file", "directory: {file: customers.json}\n", ""},
		{"a bad record", "directory: {file: broken.json}\n", "directory: broken.json: "},
		{"a token others can read", "directory: {url: 'https://dir.example', token_file: open-token}\n", "directory: "},
		{"plain http to another host", "directory: {url: 'http://dir.example', token_file: token}\n", "directory: url: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "portcullis.yaml")
			if err := os.WriteFile(path, []byte(head+tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				var out, errs bytes.Buffer
				if err := run(t.Context(), []string{"check", "--config", path}, nil, &out, &errs); err != nil {
					t.Fatalf("check: %v\n%s", err, errs.String())
				}
				return
			}
			if got := check(t, path); !strings.Contains(got, tc.want) {
				t.Errorf("check said:\n%s\nwant %q", got, tc.want)
			}
		})
	}
}
