package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/compose/composetest"
	"github.com/portcullis/portcullis/plugins/delivery/outbox"
	"github.com/portcullis/portcullis/plugins/geoip/geoiptest"
	"github.com/portcullis/portcullis/plugins/store/redis/redistest"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// TestServeKeepsSessionsInRedis serves the demo's configuration with
// store.redis set and signs alice in: the pending login, the code, the
// counters and the session live in Redis, none of them in SQLite, where her
// profile stays; the session reaches the upstream, and logging out deletes
// it from Redis.
func TestServeKeepsSessionsInRedis(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	rc := redistest.Client(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	dir := t.TempDir()
	if err := geoiptest.Generate(dir); err != nil {
		t.Fatal(err)
	}
	if err := writeDemoFiles(dir); err != nil {
		t.Fatal(err)
	}
	urlFile := filepath.Join(t.TempDir(), "redis.url")
	if err := os.WriteFile(urlFile, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var upstreams []net.Listener
	for range demoApps {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "upstream answered")
		}))
		defer up.Close()
		upstreams = append(upstreams, up.Listener)
	}
	addr := composetest.FreeAddr(t)
	cfg, err := config.Parse([]byte(demoConfig(dir, addr, composetest.FreeAddr(t), upstreams) +
		"store:\n  redis:\n    url_file: '" + urlFile + "'\n    prefix: '" + prefix + "'\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs composetest.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	started := make(chan *app, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, logger, func(a *app) error {
			if err := seedCustomers(ctx, a, logger); err != nil {
				return err
			}
			started <- a
			return nil
		})
	}()
	var a *app
	select {
	case a = <-started:
	case err := <-done:
		t.Fatalf("serve stopped: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	if strings.Contains(logs.String(), url) {
		t.Errorf("the log holds the Redis URL")
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.rootPEM)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}}
	_, port, _ := net.SplitHostPort(addr)
	site := "https://bank.localhost:" + port
	api := func(path, body string) (int, demoAnswer) {
		t.Helper()
		return postAPI(t, client, site, path, body)
	}
	keys := func(kind string) []string {
		t.Helper()
		return redistest.Keys(t, rc, prefix+kind+":*")
	}

	alice, err := a.store.UserByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if c, ans := api("login", `{"username":"alice","password":"wonderland-demo-42"}`); c != http.StatusForbidden || ans.Status != "step_up_required" {
		t.Fatalf("login: %d %+v, want step_up_required", c, ans)
	}
	if len(keys("hits")) == 0 {
		t.Error("the login counted no hits in Redis")
	}
	if c, ans := api("step-up/send", `{"method":"sms"}`); c != http.StatusOK || ans.Status != "code_sent" {
		t.Fatalf("step-up/send: %d %+v", c, ans)
	}
	if len(keys("record")) == 0 {
		t.Error("the pending login and its code are not in Redis")
	}
	msg, err := outbox.Last(filepath.Join(dir, "outbox.jsonl"), outbox.Filter{Purpose: notify.PurposeLogin, Channel: notify.SMS})
	if err != nil {
		t.Fatal(err)
	}
	code, _, _ := strings.Cut(msg.Text, " ")
	if c, ans := api("step-up/verify", `{"method":"code","code":"`+code+`"}`); c != http.StatusOK || ans.Status != "authenticated" {
		t.Fatalf("step-up/verify: %d %+v", c, ans)
	}

	sessions := keys("session")
	if len(sessions) == 0 {
		t.Fatal("no session in Redis after the login")
	}
	for _, k := range sessions {
		if user, err := rc.HGet(ctx, k, "user").Result(); err != nil || user != alice.ID {
			t.Errorf("session %s in Redis belongs to %q (%v), want alice's %q", k, user, err, alice.ID)
		}
	}
	db, err := sqlite.Open(ctx, cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if inSQLite, err := db.ListUserSessions(ctx, alice.ID); err != nil || len(inSQLite) != 0 {
		t.Errorf("SQLite holds %d sessions of alice (%v), want none", len(inSQLite), err)
	}
	if _, err := db.UserByID(ctx, alice.ID); err != nil {
		t.Errorf("alice's profile is not in SQLite: %v", err)
	}

	resp, err := client.Get(site + "/accounts")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "upstream answered" {
		t.Fatalf("GET /accounts with the session: %d %q, want the upstream's answer", resp.StatusCode, body)
	}

	if c, ans := api("logout", `{}`); c != http.StatusOK {
		t.Fatalf("logout: %d %+v", c, ans)
	}
	if left, err := a.store.ListUserSessions(ctx, alice.ID); err != nil || len(left) != 0 {
		t.Errorf("after logout alice has %d sessions in Redis (%v), want none", len(left), err)
	}
	if left := keys("session"); len(left) != 0 {
		t.Errorf("after logout Redis still holds sessions %v", left)
	}
	if err := a.store.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if _, err := a.store.GetSession(ctx, strings.TrimPrefix(sessions[0], prefix+"session:")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession after logout: error = %v, want not found", err)
	}
}
