package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminUserAddJudgesThePassword: the admin command refuses what the
// policy refuses of a new password, with the configured blocklist, and
// says what to change.
func TestAdminUserAddJudgesThePassword(t *testing.T) {
	cfg, _ := adminEnv(t)
	list := filepath.Join(filepath.Dir(cfg), "breached.txt")
	if err := os.WriteFile(list, []byte("Harbour-Lantern-1987\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	withList := strings.Replace(string(b), "password: {memory_kib: 8192, iterations: 1}", "password: {memory_kib: 8192, iterations: 1, blocklist: breached.txt}", 1)
	if withList == string(b) {
		t.Fatal("the admin configuration changed shape; update this test")
	}
	if err := os.WriteFile(cfg, []byte(withList), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, password string
		args           []string
		want           string // in the refusal; "" when added
	}{
		{"too short", "short-pw", nil, "at least 12 characters"},
		{"common", "password1234", nil, "common or breached"},
		{"on the blocklist, in another case", "harbour-LANTERN-1987", nil, "common or breached"},
		{"the username", "my-grace.hopper-is-here-9", nil, "username"},
		{"a name", "quiet-Hopper-meadow-41", []string{"--name", "Grace Hopper"}, "first or last name"},
		{"guessable", "Summer2024!!", nil, "easy to guess"},
		{"a passphrase", "plinth mantra gusty orbit", []string{"--name", "Grace Hopper"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runAdmin(t, cfg, tc.password+"\n", append([]string{"add", "--username", "grace.hopper"}, tc.args...)...)
			if tc.want == "" {
				if err != nil || !strings.Contains(out, "added grace.hopper") {
					t.Fatalf("add: %q %v", out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.password) {
				t.Fatalf("add = %v, want a refusal saying %q that never quotes the password", err, tc.want)
			}
		})
	}
}
