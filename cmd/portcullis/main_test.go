package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/compose"
	"github.com/portcullis/portcullis/plugins/compose/composetest"
	"github.com/portcullis/portcullis/plugins/delivery/outbox"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// startDemo runs the demo, as the README does, on a free port until the
// test ends, and returns its address and data directory.
func startDemo(t *testing.T, ctx context.Context) (addr, dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "portcullis-demo")
	addr = composetest.FreeAddr(t)
	ctx, cancel := context.WithCancel(ctx)
	var out, errs composetest.LogBuffer
	done := make(chan struct{})
	var demoErr error
	go func() {
		defer close(done)
		demoErr = run(ctx, []string{"demo", "--data", dir, "--addr", addr, "--admin", composetest.FreeAddr(t)}, nil, &out, &errs)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if demoErr != nil {
			t.Errorf("demo: %v", demoErr)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", errs.String())
		}
	})
	for !strings.Contains(out.String(), "demo is running") {
		select {
		case <-done:
			t.Fatalf("demo stopped: %v", demoErr)
		case <-ctx.Done():
			t.Fatal("demo did not start")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return addr, dir
}

// TestDemo runs the demo as the README does and follows the README's curl
// session: no session redirects to sign-in; the API login as alice, from a
// device the gateway does not know, asks for a step-up; the code sent by
// text lands in the outbox and verifies, registering the device; /whoami on
// the savings app then reports alice with a verified assertion, and her next
// login skips the code. Bob, whose only phone is VoIP, has no step-up to
// offer and signs in with his password.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	addr, dir := startDemo(t, ctx)
	for _, f := range []string{"ca.pem", "portcullis.db", "outbox.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("demo data: %v", err)
		}
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool}, // verifies the chain to ca.pem, like curl --cacert
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr) // like curl --resolve
			},
		}}
	_, port, _ := net.SplitHostPort(addr)
	whoami := "https://bank.localhost:" + port + "/whoami"

	resp, err := client.Get(whoami)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/.portcullis/") {
		t.Fatalf("whoami without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	api := func(c *http.Client, path, body string) (int, demoAnswer) {
		t.Helper()
		return postAPI(t, c, "https://bank.localhost:"+port, path, body)
	}
	const aliceLogin = `{"username":"alice","password":"wonderland-demo-42"}`
	if code, a := api(client, "login", aliceLogin); code != http.StatusForbidden || a.Status != "step_up_required" ||
		!slices.Equal(a.StepUp, []string{"sms", "voice"}) {
		t.Fatalf("alice's first login: %d %+v, want 403 step_up_required offering sms and voice", code, a)
	}
	if code, a := api(client, "step-up/send", `{"method":"sms"}`); code != http.StatusOK || a.Status != "code_sent" || a.Channel != "sms" {
		t.Fatalf("send a code by text: %d %+v", code, a)
	}
	outboxPath := filepath.Join(dir, "outbox.jsonl")
	msg, err := outbox.Last(outboxPath, outbox.Filter{Purpose: notify.PurposeLogin, Channel: notify.SMS})
	if err != nil {
		t.Fatal(err)
	}
	code, _, _ := strings.Cut(msg.Text, " ")
	if msg.To != "+12015550123" || len(code) != 6 {
		t.Fatalf("outbox message %+v, want a 6-digit code to alice's security phone", msg)
	}
	if c, a := api(client, "step-up/verify", `{"method":"code","code":"`+code+`","remember_device":true}`); c != http.StatusOK ||
		a.Status != "authenticated" || !a.DeviceRegistered {
		t.Fatalf("verify the code from the outbox: %d %+v", c, a)
	}

	resp, err = client.Get(whoami)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var who struct {
		App       string
		User      string
		Assertion struct {
			Verified bool
			Error    string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil {
		t.Fatal(err)
	}
	if who.App != "savings" || who.User != "alice" || !who.Assertion.Verified {
		t.Fatalf("whoami after login: %+v", who)
	}
	// The registered device skips the code next time.
	if c, a := api(client, "login", aliceLogin); c != http.StatusOK || a.Status != "authenticated" {
		t.Fatalf("alice's login from the registered device: %d %+v", c, a)
	}
	// Bob's VoIP number gets no codes, so he has no step-up to be offered,
	// and the shipped step_up.allow_without_second_factor decides: the
	// password alone, or step_up_unavailable.
	bobJar, _ := cookiejar.New(nil)
	bob := *client
	bob.Jar = bobJar
	c, a := api(&bob, "login", `{"username":"bob","password":"counting-house-42"}`)
	if shippedAllowWithoutSecondFactor(t) {
		if c != http.StatusOK || a.Status != "authenticated" {
			t.Fatalf("bob's login: %d %+v, want authenticated by password alone", c, a)
		}
	} else if c != http.StatusForbidden || a.Reason != "step_up_unavailable" {
		t.Fatalf("bob's login: %d %+v, want 403 step_up_unavailable", c, a)
	}
	if _, err := outbox.Last(outboxPath, outbox.Filter{Purpose: notify.PurposeLogin, To: "+445612345678"}); !errors.Is(err, outbox.ErrNoMessage) {
		t.Fatalf("a code went to bob's VoIP number: %v", err)
	}

	// The README's profile creation for Dorothy Gale, from the demo's
	// customer file, through the API.
	dorothyJar, _ := cookiejar.New(nil)
	dorothy := *client
	dorothy.Jar = dorothyJar
	for _, step := range []struct{ path, body, status string }{
		{"enroll/identify", `{"last_name":"Gale","tax_id_last4":"0004","date_of_birth":"08/25/1939","account_number":"1000000004"}`, "enrol_credentials"},
		{"enroll/credentials", `{"username":"dorothy","password":"yellow brick road to emerald city","consent":true,"consent_version":"edelivery-2026-01"}`, "enrol_phone"},
		{"enroll/phone", `{"phone":"+1 201-555-0199","method":"sms"}`, "code_sent"},
	} {
		if c, a := api(&dorothy, step.path, step.body); c != http.StatusOK || a.Status != step.status {
			t.Fatalf("%s: %d %+v, want %s", step.path, c, a, step.status)
		}
	}
	msg, err = outbox.Last(outboxPath, outbox.Filter{Purpose: "enrol", To: "+12015550199"})
	if err != nil {
		t.Fatal(err)
	}
	code, _, _ = strings.Cut(msg.Text, " ")
	if c, a := api(&dorothy, "enroll/verify", `{"code":"`+code+`"}`); c != http.StatusCreated || a.Status != "enrolled" {
		t.Fatalf("enroll/verify: %d %+v, want 201 enrolled", c, a)
	}
	if c, a := api(&dorothy, "login", `{"username":"dorothy","password":"yellow brick road to emerald city"}`); c != http.StatusForbidden ||
		a.Status != "step_up_required" {
		t.Fatalf("dorothy's first login: %d %+v, want step_up_required", c, a)
	}
	// The bank's brand on the pages, and its logo.
	resp, err = client.Get("https://login.localhost:" + port + "/.portcullis/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Example Bank") || !strings.Contains(string(page), "/.portcullis/static/brand/logo") {
		t.Errorf("the sign-in page does not show the demo's brand:\n%s", page)
	}
	resp, err = client.Get("https://login.localhost:" + port + "/.portcullis/static/brand/logo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("the demo's logo: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// The demo's GeoIP database flags 127.0.0.2 as an anonymous VPN.
	vpn := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}} // like curl --interface
			return d.DialContext(ctx, network, addr)
		},
	}}
	resp, err = vpn.Post("https://bank.localhost:"+port+"/.portcullis/api/v1/login", "application/json",
		strings.NewReader(`{"username":"alice","password":"wonderland-demo-42"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var denied struct{ Status, Reason string }
	json.NewDecoder(resp.Body).Decode(&denied)
	if resp.StatusCode != http.StatusForbidden || denied.Reason != "ip_anonymous_vpn" {
		t.Fatalf("login over the demo VPN address: %d %+v", resp.StatusCode, denied)
	}
	// The log is flushed within compose.DecisionLogFlush.
	deadline := time.Now().Add(5 * compose.DecisionLogFlush)
	b, err := os.ReadFile(filepath.Join(dir, "decisions.jsonl"))
	for (err != nil || !strings.Contains(string(b), "ip_anonymous_vpn")) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		b, err = os.ReadFile(filepath.Join(dir, "decisions.jsonl"))
	}
	if err != nil || !strings.Contains(string(b), "ip_anonymous_vpn") {
		t.Fatalf("decision log lacks the refusal: %v", err)
	}
}

// shippedAllowWithoutSecondFactor is step_up.allow_without_second_factor in
// the policy data built into the binary.
func shippedAllowWithoutSecondFactor(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("../../rego/data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Portcullis struct {
			Config struct {
				StepUp struct {
					AllowWithoutSecondFactor bool `json:"allow_without_second_factor"`
				} `json:"step_up"`
			}
		}
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	return data.Portcullis.Config.StepUp.AllowWithoutSecondFactor
}

// demoAnswer is what the demo test reads of the JSON API's answers.
type demoAnswer struct {
	Status           string
	Reason           string
	StepUp           []string `json:"step_up"`
	Channel          string
	DeviceRegistered bool `json:"device_registered"`
}

func TestPolicyCommands(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(t.Context(), []string{"policy", "test"}, nil, &out, &errs); err != nil {
		t.Fatalf("policy test: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), " passed, 0 failed") {
		t.Fatalf("policy test output: %s", out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"policy", "eval", "--point", "login", "--input", "../../testdata/policies/vpn_login.json"}, nil, &out, &errs); err != nil {
		t.Fatalf("policy eval: %v", err)
	}
	// For a person: the rule text as the module has it, quotes and all.
	if text := out.String(); !strings.Contains(text, "decision: deny ip_anonymous_vpn") ||
		!strings.Contains(text, `flagged := {concat("", ["ip_", flag]) |`) {
		t.Fatalf("policy eval text:\n%s", text)
	}
	out.Reset()
	if err := run(t.Context(), []string{"policy", "eval", "--json", "--point", "login", "--input", "../../testdata/policies/throttled_login.json"}, nil, &out, &errs); err != nil {
		t.Fatalf("policy eval --json: %v", err)
	}
	if !strings.Contains(out.String(), ">=") {
		t.Fatalf("policy eval --json escapes comparison operators in rule text:\n%s", out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"policy", "eval", "--json", "--point", "login", "--input", "../../testdata/policies/vpn_login.json"}, nil, &out, &errs); err != nil {
		t.Fatalf("policy eval --json: %v", err)
	}
	var got struct {
		Decision struct {
			Allow  bool
			Reason string
		}
		Rules []string
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("eval output is not JSON: %v\n%s", err, out.String())
	}
	if got.Decision.Allow || got.Decision.Reason != "ip_anonymous_vpn" || len(got.Rules) == 0 {
		t.Fatalf("eval: %+v", got)
	}
	if strings.Contains(out.String(), `\u00`) {
		t.Fatalf("eval escapes rule text; want it as written:\n%s", out.String())
	}
	// A failing policy test fails the command.
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../rego")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "extra_test.rego"), []byte("package portcullis.extra_test\n\ntest_fails if false\n"), 0o600)
	if err := run(t.Context(), []string{"policy", "test", dir}, nil, &out, &errs); err == nil {
		t.Fatal("a failing policy test passed the command")
	}
}

func TestCheckReportsEveryProblem(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(t.Context(), []string{"check", "--config", "../../testdata/portcullis.yaml"}, nil, &out, &errs); err != nil {
		t.Fatalf("example config: %v", err)
	}
	if !strings.Contains(out.String(), "ok") {
		t.Fatalf("output %q", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("tls: {mode: nope}\nlog: {level: loud}\nroutes: []\n"), 0o600)
	err := run(t.Context(), []string{"check", "--config", bad}, nil, &out, &errs)
	if err == nil {
		t.Fatal("bad config passed check")
	}
	for _, want := range []string{"tls.mode", "log.level", "at least one route"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("check error lacks %q: %v", want, err)
		}
	}
}

func TestAdminUserLifecycle(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portcullis.yaml")
	os.WriteFile(cfg, []byte("data_dir: data\ngeoip: {allow_missing: true}\npassword: {memory_kib: 8192, iterations: 1}\nroutes:\n  - {name: a, host: a.example, upstream: 'http://127.0.0.1:1'}\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	admin := func(stdin string, args ...string) (string, error) {
		var out, errs bytes.Buffer
		err := run(t.Context(), append([]string{"admin", "user"}, append(args, "--config", cfg)...), strings.NewReader(stdin), &out, &errs)
		return out.String(), err
	}
	if _, err := admin("short\n", "add", "--username", "dave"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("short password accepted: %v", err)
	}
	if _, err := admin("a-long-enough-password\n", "add", "--username", "da ve"); err == nil {
		t.Fatal("bad username accepted")
	}
	if _, err := admin("a-long-enough-password\n", "add", "--username", "dave", "--products", "a,nosuch"); err == nil || !strings.Contains(err.Error(), "no route is named nosuch") {
		t.Fatalf("a product that is no route accepted: %v", err)
	}
	if out, err := admin("a-long-enough-password\n", "add", "--username", "Dave", "--name", "Dave B", "--products", "a"); err != nil || !strings.Contains(out, "added dave") {
		t.Fatalf("add: %q %v", out, err)
	}
	if _, err := admin("another-long-password\n", "add", "--username", "dave"); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("duplicate accepted: %v", err)
	}
	out, err := admin("", "list")
	if err != nil || !strings.Contains(out, "dave") || !strings.Contains(out, "Dave B") {
		t.Fatalf("list: %q %v", out, err)
	}
	if out, err := admin("", "unlock", "--username", "dave"); err != nil || !strings.Contains(out, "dave was not locked") {
		t.Fatalf("unlock of an unlocked profile: %q %v", out, err)
	}
	lockProfile(t, filepath.Join(dir, "data", "portcullis.db"), "dave")
	if out, err := admin("", "unlock", "--username", "dave"); err != nil || !strings.Contains(out, "unlocked dave") {
		t.Fatalf("unlock: %q %v", out, err)
	}
	if out, _ := admin("", "list"); !strings.Contains(out, "false") || strings.Contains(out, "true") {
		t.Fatalf("list after unlock shows a lock:\n%s", out)
	}
	if _, err := admin("", "unlock", "--username", "nobody"); err == nil {
		t.Fatal("unlock of an unknown user succeeded")
	}
}

// lockProfile locks a profile with five failures, as five wrong passwords
// would, in the store file at path.
func lockProfile(t *testing.T, path, username string) {
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
	for range 5 {
		if _, err := db.AddLoginFailure(t.Context(), u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if locked, err := db.LockUser(t.Context(), u.ID, time.Now()); err != nil || !locked {
		t.Fatalf("lock %s: %v %v", username, locked, err)
	}
}

func TestAdminKeysRotate(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portcullis.yaml")
	os.WriteFile(cfg, []byte("data_dir: data\ngeoip: {allow_missing: true}\nroutes:\n  - {name: a, host: a.example, upstream: 'http://127.0.0.1:1'}\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	keys := func(verb string) string {
		var out, errs bytes.Buffer
		if err := run(t.Context(), []string{"admin", "keys", verb, "--config", cfg}, nil, &out, &errs); err != nil {
			t.Fatalf("admin keys %s: %v", verb, err)
		}
		return out.String()
	}
	keys("rotate") // the first run creates a key, then rotates it
	out := keys("list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("after one rotation want 2 keys:\n%s", out)
	}
	if strings.HasSuffix(lines[1], "-") || !strings.HasSuffix(lines[2], "-") {
		t.Fatalf("want the old key retired and the new one active:\n%s", out)
	}
}

func TestHTTPRedirectsOnlyKnownHosts(t *testing.T) {
	h := redirectToHTTPS("8443", []string{"bank.example"})
	for _, tc := range []struct{ host, want string }{
		{"bank.example", "https://bank.example:8443/x?y=1"},
		{"BANK.example:80", "https://bank.example:8443/x?y=1"},
		{"evil.example", ""},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "http://"+tc.host+"/x?y=1", nil)
		h.ServeHTTP(rec, req)
		if got := rec.Header().Get("Location"); got != tc.want {
			t.Errorf("Host %s: Location %q, want %q (status %d)", tc.host, got, tc.want, rec.Code)
		}
	}
}

// postAPI posts body to the JSON API's path on site and decodes the answer.
func postAPI(t *testing.T, c *http.Client, site, path, body string) (int, demoAnswer) {
	t.Helper()
	resp, err := c.Post(site+"/.portcullis/api/v1/"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a demoAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, a
}
