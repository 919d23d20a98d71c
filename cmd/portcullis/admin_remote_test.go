package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/compose/composetest"
	"github.com/portcullis/portcullis/policies"
)

const cliAdminToken = "0123456789abcdef0123456789abcdef-alice"

// startAdminServe writes a configuration with alice's admin token and a
// decision log, creates frank through the direct admin command, and runs
// the gateway until the test ends. It returns the admin listener's URL,
// the token file, the running gateway's parts and its log.
func startAdminServe(t *testing.T) (server, tokenFile string, a *app, logs *composetest.LogBuffer) {
	t.Helper()
	dir := t.TempDir()
	tokenFile = filepath.Join(dir, "alice.token")
	if err := os.WriteFile(tokenFile, []byte(cliAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	adminAddr := composetest.FreeAddr(t)
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	yaml := fmt.Sprintf(`data_dir: data
listen: {https: %q, admin: %q}
geoip: {allow_missing: true}
password: {memory_kib: 8192, iterations: 1}
phone: {default_region: US}
policies: {decision_log: decisions.jsonl}
admin:
  tokens:
    - {name: alice, file: alice.token}
routes:
  - {name: a, host: a.example, upstream: 'http://127.0.0.1:1'}
`, composetest.FreeAddr(t), adminAddr)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runAdmin(t, cfgPath, "a-long-enough-password\n", "add", "--username", "frank", "--phone", "+12015550100"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs = &composetest.LogBuffer{}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	started := make(chan *app, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil)), func(a *app) error { started <- a; return nil })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a = <-started:
	case err := <-done:
		t.Fatalf("serve stopped: %v\n%s", err, logs.String())
	}
	return "http://" + adminAddr, tokenFile, a, logs
}

// adminCLI runs `portcullis admin --server S --token-file F ARGS`.
func adminCLI(t *testing.T, server, tokenFile string, args ...string) (string, error) {
	t.Helper()
	var out, errs bytes.Buffer
	err := run(t.Context(), append([]string{"admin", "--server", server, "--token-file", tokenFile}, args...), strings.NewReader(""), &out, &errs)
	return out.String(), err
}

func TestAdminCLIOverTheAPI(t *testing.T) {
	server, tokenFile, a, logs := startAdminServe(t)
	ctx := t.Context()
	frank, err := a.store.UserByName(ctx, "frank")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("unlock", func(t *testing.T) {
		if _, err := a.store.LockUser(ctx, frank.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if out, err := adminCLI(t, server, tokenFile, "user", "unlock", "--username", "frank"); err != nil || out != "unlocked frank\n" {
			t.Fatalf("unlock: %q %v", out, err)
		}
		if u, _ := a.store.UserByID(ctx, frank.ID); u.Locked {
			t.Error("still locked")
		}
		if out, err := adminCLI(t, server, tokenFile, "user", "unlock", "--username", "frank"); err != nil || out != "frank was not locked; its failure count is reset\n" {
			t.Fatalf("second unlock: %q %v", out, err)
		}
		if _, err := adminCLI(t, server, tokenFile, "user", "unlock", "--username", "nobody"); err == nil || !strings.Contains(err.Error(), "404 not_found: No such user.") {
			t.Errorf("unknown user: %v", err)
		}
	})

	t.Run("security phone", func(t *testing.T) {
		out, err := adminCLI(t, server, tokenFile, "user", "phone", "--username", "frank", "--phone", "+1 201-555-0123")
		if err != nil || out != "security phone of frank is now +1 ••• ••• ••23 (fixed_line_or_mobile)\n" {
			t.Fatalf("phone: %q %v", out, err)
		}
		if u, _ := a.store.UserByID(ctx, frank.ID); u.SecurityPhone != "+12015550123" {
			t.Errorf("stored %q", u.SecurityPhone)
		}
		if _, err := adminCLI(t, server, tokenFile, "user", "phone", "--username", "frank", "--phone", "+44 56 1234 5678"); err == nil ||
			!strings.Contains(err.Error(), "400 bad_request") || !strings.Contains(err.Error(), "VoIP") {
			t.Errorf("a VoIP number: %v", err)
		}
		if _, err := adminCLI(t, server, tokenFile, "user", "phone", "--username", "frank"); err == nil || !strings.Contains(err.Error(), "--phone is required") {
			t.Errorf("without --phone: %v", err)
		}
	})

	t.Run("sessions", func(t *testing.T) {
		m := a.server.Sessions()
		start := func() string {
			r := httptest.NewRequest(http.MethodPost, "https://a.example/.portcullis/login", nil)
			sess, err := m.Start(httptest.NewRecorder(), r, frank, []string{"pwd"}, "", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := m.ByID(ctx, sess.ID, "a.example"); !ok || err != nil {
				t.Fatalf("new session: %v %v", ok, err)
			}
			return sess.ID
		}
		live := func(sid string) bool {
			_, ok, err := m.ByID(ctx, sid, "a.example")
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		// listed returns the handles the CLI lists, one a row.
		listed := func() []string {
			t.Helper()
			out, err := adminCLI(t, server, tokenFile, "user", "sessions", "--username", "frank")
			rows := strings.Split(strings.TrimSpace(out), "\n")
			if err != nil || !strings.HasPrefix(rows[0], "ID ") {
				t.Fatalf("list: %q %v", out, err)
			}
			var ids []string
			for _, row := range rows[1:] {
				if !strings.Contains(row, "a.example") {
					t.Errorf("row %q", row)
				}
				ids = append(ids, strings.Fields(row)[0])
			}
			return ids
		}
		one := start()
		handles := listed()
		if len(handles) != 1 || strings.Contains(one, handles[0]) {
			t.Fatalf("handles %v of session %s", handles, one)
		}
		two, three := start(), start()
		if n := len(listed()); n != 3 {
			t.Fatalf("%d sessions listed", n)
		}
		out, err := adminCLI(t, server, tokenFile, "user", "sessions", "--username", "frank", "--revoke", handles[0])
		if err != nil || out != "ended session "+handles[0]+" of frank\n" {
			t.Fatalf("revoke one: %q %v", out, err)
		}
		if live(one) || !live(two) {
			t.Error("the running gateway still lets the revoked session in, or refuses another")
		}
		if out, err = adminCLI(t, server, tokenFile, "user", "sessions", "--revoke", "--username", "frank"); err != nil || out != "ended 2 sessions of frank\n" {
			t.Fatalf("revoke all: %q %v", out, err)
		}
		if live(two) || live(three) {
			t.Error("a revoked session is still let in")
		}
	})

	t.Run("devices", func(t *testing.T) {
		now := time.Now()
		if err := a.store.AddDevice(ctx, store.Device{ID: "d0123", UserID: frank.ID, Name: "Firefox on Linux", CreatedAt: now,
			LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		out, err := adminCLI(t, server, tokenFile, "user", "devices", "--username", "frank")
		if err != nil || !strings.Contains(out, "d0123") || !strings.Contains(out, "Firefox on Linux") {
			t.Fatalf("list: %q %v", out, err)
		}
		if out, err = adminCLI(t, server, tokenFile, "user", "devices", "--username", "frank", "--remove", "d0123"); err != nil || !strings.HasPrefix(out, "removed device d0123 of frank") {
			t.Fatalf("remove: %q %v", out, err)
		}
		if ds, _ := a.store.ListDevices(ctx, frank.ID, now); len(ds) != 0 {
			t.Errorf("devices left: %+v", ds)
		}
	})

	t.Run("decision why", func(t *testing.T) {
		d := a.policy.Decide(ctx, policies.Input{Point: policies.PointLogin, Now: time.Now().Unix(),
			Client:  policies.Client{IP: "198.51.100.7", Facts: policies.IPFacts{Checked: true, AnonymousVPN: true, Anonymous: true}},
			Account: policies.Account{Exists: true, UserID: frank.ID}, Request: policies.Request{Host: "a.example", Path: "/.portcullis/login", Method: http.MethodPost}})
		// The decision log is written off the request path: wait for the
		// line, then ask.
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(filepath.Join(filepath.Dir(tokenFile), "decisions.jsonl"))
			if bytes.Contains(b, []byte(d.DecisionID)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the decision never reached the log")
			}
			<-time.After(20 * time.Millisecond)
		}
		out, err := adminCLI(t, server, tokenFile, "decision", "why", d.DecisionID)
		if err != nil || !strings.HasPrefix(out, "decision "+d.DecisionID) || !strings.Contains(out, "the same result: deny "+d.Reason) {
			t.Fatalf("why: %q %v", out, err)
		}
		// The same decision is the newest of frank's.
		out, err = adminCLI(t, server, tokenFile, "user", "decisions", "--username", "frank", "--limit", "1")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME") ||
			!strings.Contains(lines[1], "login") || !strings.Contains(lines[1], "deny") || !strings.HasSuffix(lines[1], d.DecisionID) {
			t.Fatalf("decisions: %q %v", out, err)
		}
	})

	t.Run("keys rotate", func(t *testing.T) {
		old := a.signer.KeyID()
		out, err := adminCLI(t, server, tokenFile, "keys", "rotate")
		if err != nil || out != fmt.Sprintf("rotated: %s signs now, %s is retired (running gateways pick this up within a minute)\n", a.signer.KeyID(), old) ||
			a.signer.KeyID() == old {
			t.Fatalf("rotate: %q %v", out, err)
		}
	})

	t.Run("a wrong token", func(t *testing.T) {
		wrong := filepath.Join(t.TempDir(), "wrong.token")
		if err := os.WriteFile(wrong, []byte("f"+cliAdminToken[1:]), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := adminCLI(t, server, wrong, "user", "unlock", "--username", "frank"); err == nil || !strings.Contains(err.Error(), "401 unauthenticated") {
			t.Errorf("a wrong token: %v", err)
		}
	})

	// Every action is in the gateway's log as an audit line naming alice,
	// and neither the token nor a full phone number is.
	got := logs.String()
	for _, want := range []string{`"action":"user.unlock"`, `"action":"user.security_phone"`, `"action":"user.sessions.end"`,
		`"action":"user.sessions.end_all"`, `"action":"user.devices.remove"`, `"action":"decision.why"`, `"action":"keys.rotate"`,
		`"who":"alice"`, `"outcome":"unauthenticated"`} {
		if !strings.Contains(got, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	for _, secret := range []string{cliAdminToken[:16], cliAdminToken[1:], "5550123", "12345678"} {
		if strings.Contains(got, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

func TestAdminCLIRefusesAnUnsafeServerOrTokenFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.token")
	open := filepath.Join(dir, "open.token")
	empty := filepath.Join(dir, "empty.token")
	os.WriteFile(good, []byte(cliAdminToken), 0o600)
	os.WriteFile(open, []byte(cliAdminToken), 0o600)
	os.Chmod(open, 0o644)
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct{ name, server, token, want string }{
		{"plain http to another host", "http://192.0.2.10:9090", good, "in clear"},
		{"plain http to a name", "http://admin.bank.example:9090", good, "in clear"},
		{"another scheme", "ftp://127.0.0.1:9090", good, "scheme"},
		{"a user in the URL", "https://alice:pw@admin.bank.example", good, "URL alone"},
		{"a path", "http://127.0.0.1:9090/admin/v1", good, "URL alone"},
		{"no token file", "http://127.0.0.1:9090", "", "--token-file is required"},
		{"a token file others can read", "http://127.0.0.1:9090", open, "chmod 600"},
		{"an empty token file", "http://127.0.0.1:9090", empty, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newAdminClient(tc.server, tc.token); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	for _, ok := range []string{"http://127.0.0.1:9090", "http://[::1]:9090", "http://localhost:9090/", "https://admin.bank.example"} {
		if _, err := newAdminClient(ok, good); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	var out, errs bytes.Buffer
	if err := run(t.Context(), []string{"admin", "--token-file", good, "user", "list"}, strings.NewReader(""), &out, &errs); err == nil ||
		!strings.Contains(err.Error(), "--token-file needs --server") {
		t.Errorf("--token-file without --server: %v", err)
	}
}
