package main

import (
	"bytes"
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/plugins/compose/composetest"
	"github.com/portcullis/portcullis/plugins/store/postgres"
	"github.com/portcullis/portcullis/plugins/store/postgres/postgrestest"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// adminEnv is a configuration file and its data directory for the admin
// commands.
func adminEnv(t *testing.T) (cfg, db string) {
	t.Helper()
	dir := t.TempDir()
	cfg = filepath.Join(dir, "portcullis.yaml")
	os.WriteFile(cfg, []byte("data_dir: data\ngeoip: {allow_missing: true}\npassword: {memory_kib: 8192, iterations: 1}\n"+
		"phone: {default_region: GB}\nroutes:\n  - {name: a, host: a.example, upstream: 'http://127.0.0.1:1'}\n"), 0o600)
	return cfg, filepath.Join(dir, "data", "portcullis.db")
}

// runAdmin runs `portcullis admin user ARGS --config cfg` and returns its
// standard output and error.
func runAdmin(t *testing.T, cfg, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errs bytes.Buffer
	err = run(t.Context(), append([]string{"admin", "user"}, append(args, "--config", cfg)...), strings.NewReader(stdin), &out, &errs)
	return out.String(), errs.String(), err
}

// profile reads a profile's security phone and email from the store file.
func profile(t *testing.T, path, username string) (phone, email string) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.UserByName(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u.SecurityPhone, u.Email
}

func TestAdminUserAddTakesPhoneAndEmail(t *testing.T) {
	cfg, db := adminEnv(t)
	const pw = "a-long-enough-password\n"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a number the classifier cannot read", []string{"--phone", "12"}, "phone: not a valid phone number for region GB"},
		{"a number with an extension", []string{"--phone", "+1 201-555-0123 ext. 4"}, "extensions are not supported"},
		{"an address with a display name", []string{"--email", "Erin <erin@example.com>"}, "without a display name"},
		{"an address in angle brackets", []string{"--email", "<erin@example.com>"}, "without a display name"},
		{"not an address", []string{"--email", "erin"}, `--email "erin"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runAdmin(t, cfg, pw, append([]string{"add", "--username", "erin"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("add %v = %v, want a refusal mentioning %q", tc.args, err, tc.want)
			}
		})
	}
	// Refused above, so the name is still free. A national number is read
	// in phone.default_region and kept in E.164.
	if out, _, err := runAdmin(t, cfg, pw, "add", "--username", "erin", "--phone", "07400 123456", "--email", "erin@example.com"); err != nil ||
		!strings.Contains(out, "added erin") {
		t.Fatalf("add: %q %v", out, err)
	}
	if phone, email := profile(t, db, "erin"); phone != "+447400123456" || email != "erin@example.com" {
		t.Fatalf("stored phone %q, email %q", phone, email)
	}
}

func TestAdminUserPhone(t *testing.T) {
	cfg, db := adminEnv(t)
	if _, _, err := runAdmin(t, cfg, "a-long-enough-password\n", "add", "--username", "frank"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runAdmin(t, cfg, "", "phone", "--username", "frank"); err == nil || !strings.Contains(err.Error(), "--phone is required") {
		t.Fatalf("phone without --phone: %v", err)
	}
	if _, _, err := runAdmin(t, cfg, "", "phone", "--username", "frank", "--phone", "not a number"); err == nil ||
		!strings.Contains(err.Error(), "not a valid phone number") {
		t.Fatalf("an unreadable number: %v", err)
	}
	if _, _, err := runAdmin(t, cfg, "", "phone", "--username", "nobody", "--phone", "+12015550123"); err == nil {
		t.Fatal("set the phone of an unknown user")
	}

	out, logs, err := runAdmin(t, cfg, "", "phone", "--username", "Frank", "--phone", "+1 (201) 555-0123")
	if err != nil {
		t.Fatal(err)
	}
	if phone, _ := profile(t, db, "frank"); phone != "+12015550123" {
		t.Fatalf("stored phone %q, want E.164", phone)
	}
	if !strings.Contains(out, "frank") || strings.Contains(out+logs, "5550123") {
		t.Errorf("output %q, log %q: want the user, and the number masked", out, logs)
	}
	// The audit line: what, about whom, by whom, when.
	who := "uid "
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	for _, want := range []string{"security phone set by an administrator", `"username":"frank"`, `"by":"` + who, `"at":"`, `"replaced":false`, `"line_type":"fixed_line_or_mobile"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %s:\n%s", want, logs)
		}
	}

	out, logs, err = runAdmin(t, cfg, "", "phone", "--username", "frank", "--phone", "")
	if err != nil || !strings.Contains(out, "removed the security phone of frank") {
		t.Fatalf("remove: %q %v", out, err)
	}
	if phone, _ := profile(t, db, "frank"); phone != "" {
		t.Fatalf("phone %q after removing it", phone)
	}
	if !strings.Contains(logs, "security phone removed by an administrator") || !strings.Contains(logs, `"replaced":true`) {
		t.Errorf("audit log of the removal:\n%s", logs)
	}
}

// TestHelpListsPhoneCommands: the usage texts name the phone and email
// flags and the phone command.
func TestHelpListsPhoneCommands(t *testing.T) {
	var out, errs strings.Builder
	run(t.Context(), []string{"--help"}, strings.NewReader(""), &out, &errs)
	if !strings.Contains(out.String(), "admin  user add|list|unlock|phone") {
		t.Errorf("--help does not list admin user phone:\n%s", out.String())
	}
	out.Reset()
	run(t.Context(), []string{"admin"}, strings.NewReader(""), &out, &errs)
	for _, want := range []string{"[--phone NUMBER] [--email ADDRESS]", "portcullis admin user phone  --config FILE --username NAME --phone NUMBER", `--phone "" removes it`} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("admin usage lacks %q:\n%s", want, errs.String())
		}
	}
}

// The offline unlock and phone commands tell the running gateways on the
// store's invalidation channel, as the admin API does, so that no replica
// serves the old profile from its cache.
func TestOfflineAdminTellsReplicas(t *testing.T) {
	dsn := postgrestest.Schema(t)
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "postgres.dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath, _ := composetest.Config(t, dir, "store:\n  driver: postgres\n  postgres: {dsn_file: '"+dsnFile+"'}\n")
	var out, errs bytes.Buffer
	if err := run(t.Context(), []string{"admin", "user", "add", "--config", cfgPath, "--username", "frank", "--name", "Frank",
		"--products", "a", "--phone", "+1 201-555-0123"}, strings.NewReader("tall ships and far horizons\n"), &out, &errs); err != nil {
		t.Fatalf("add: %v\n%s", err, errs.String())
	}
	db, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	frank, err := db.UserByName(t.Context(), "frank")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.LockUser(t.Context(), frank.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A replica listening on the channel.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready, got := make(chan struct{}), make(chan session.Invalidation, 4)
	go db.Listen(ctx, func() { close(ready) }, func(inv session.Invalidation) { got <- inv }) //nolint:errcheck // ends with ctx
	<-ready
	for _, args := range [][]string{
		{"admin", "user", "unlock", "--config", cfgPath, "--username", "frank"},
		{"admin", "user", "phone", "--config", cfgPath, "--username", "frank", "--phone", "+1 201-555-0199"},
	} {
		if err := run(t.Context(), args, strings.NewReader(""), &out, &errs); err != nil {
			t.Fatalf("%s: %v\n%s", args[2], err, errs.String())
		}
		select {
		case inv := <-got:
			if inv != (session.Invalidation{UserID: frank.ID}) {
				t.Errorf("%s told %+v, want frank's sessions", args[2], inv)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s told no replica", args[2])
		}
	}
}
