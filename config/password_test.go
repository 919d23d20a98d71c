package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordBlocklist: password.blocklist names a readable file, taken
// relative to the configuration file, and a problem with it is placed on
// its line.
func TestPasswordBlocklist(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "breached.txt"), []byte("hunter2hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "lists"), 0o700); err != nil {
		t.Fatal(err)
	}
	const head = "geoip: {allow_missing: true}\nroutes: [{name: a, host: a.example, upstream: 'http://127.0.0.1:1'}]\n"
	for _, tc := range []struct {
		name, blocklist string
		want            string // the problem, "" for none
	}{
		{"a file beside the configuration", "breached.txt", ""},
		{"an absolute path", filepath.Join(dir, "breached.txt"), ""},
		{"none", "", ""},
		{"a missing file", "missing.txt", "4:3: password.blocklist: open " + filepath.Join(dir, "missing.txt") + ": no such file or directory"},
		{"a directory", "lists", "4:3: password.blocklist: " + filepath.Join(dir, "lists") + " is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "portcullis.yaml")
			yaml := head + "password:\n  blocklist: '" + tc.blocklist + "'\n"
			if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Load(path)
			if tc.want != "" {
				if err == nil || err.Error() != path+":"+tc.want {
					t.Fatalf("problems:\n%v\nwant:\n%s:%s", err, path, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := f.Gateway().PasswordBlocklist
			switch {
			case tc.blocklist == "" && got != "":
				t.Errorf("no blocklist configured, gateway given %q", got)
			case tc.blocklist != "" && got != filepath.Join(dir, "breached.txt"):
				t.Errorf("gateway given %q, want the file beside the configuration", got)
			}
		})
	}
}

// TestUnreadablePasswordBlocklist: a file the gateway may not read is
// reported by check, not at the first password change.
func TestUnreadablePasswordBlocklist(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	path := filepath.Join(t.TempDir(), "breached.txt")
	if err := os.WriteFile(path, []byte("x\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte("geoip: {allow_missing: true}\nroutes: [{name: a, host: a.example, upstream: 'http://x'}]\npassword: {blocklist: '" + path + "'}\n"))
	if err == nil || !strings.Contains(err.Error(), "password.blocklist: open "+path+": permission denied") {
		t.Fatalf("unreadable blocklist: %v", err)
	}
}
