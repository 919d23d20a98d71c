package caddyportcullis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	// Caddy's file storage and local CA, for the test's certificates.
	_ "github.com/caddyserver/caddy/v2/modules/caddypki"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/compose"
	"github.com/portcullis/portcullis/plugins/compose/composetest"
	"github.com/portcullis/portcullis/plugins/delivery/outbox"
	"github.com/portcullis/portcullis/plugins/geoip/geoiptest"
)

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(composetest.FreeAddr(t))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// embedded is a Caddy running a gateway through the module, with one
// route to an app that echoes the identity the gateway sent it.
type embedded struct {
	t                    *testing.T
	dir, yaml, caddyfile string
	https, admin, plain  int // plain: a site declared http://
	outbox               string
	client               *http.Client
}

const gatewayYAML = `data_dir: data
login_host: login.localhost
geoip: { anonymous_ip: '%[2]s', country: '%[3]s' }
password: {memory_kib: 8192, iterations: 1}
delivery:
  sms: { outbox: { path: outbox.jsonl } }
admin:
  tokens:
    - { name: ops, file: admin.token }
routes:
  - { name: savings, host: bank.localhost, upstream: '%[1]s' }
`

func startEmbedded(t *testing.T) *embedded {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app answered %s for %s", r.Header.Get("X-Portcullis-User"), r.URL.Path)
	}))
	t.Cleanup(app.Close)
	e := &embedded{t: t, dir: t.TempDir(), https: freePort(t), admin: freePort(t), plain: freePort(t)}
	e.yaml = filepath.Join(e.dir, "portcullis.yaml")
	e.outbox = filepath.Join(e.dir, "data", "outbox.jsonl")
	if err := geoiptest.Generate(e.dir); err != nil {
		t.Fatal(err)
	}
	e.write(fmt.Sprintf(gatewayYAML, app.URL, filepath.Join(e.dir, geoiptest.AnonymousIPFile), filepath.Join(e.dir, geoiptest.CountryFile)))
	if err := os.WriteFile(filepath.Join(e.dir, "admin.token"), []byte("s3cret-admin-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The example's shape, on loopback ports, with Caddy's local CA for
	// the certificates and nothing of Caddy's outside the test directory.
	e.caddyfile = fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %[1]s/caddy
	local_certs
	skip_install_trust
	auto_https disable_redirects
	https_port %[2]d
	http_port %[4]d
}

bank.localhost, login.localhost {
	bind 127.0.0.1
	portcullis %[3]s
}

http://127.0.0.1:%[5]d {
	bind 127.0.0.1
	portcullis_admin %[3]s
}

http://127.0.0.1:%[6]d {
	bind 127.0.0.1
	portcullis %[3]s
}
`, e.dir, e.https, e.yaml, freePort(t), e.admin, e.plain)
	if err := e.load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Error(err)
		}
		if n := runningCount(); n != 0 {
			t.Errorf("%d gateways still running after Caddy stopped", n)
		}
	})
	root, err := os.ReadFile(filepath.Join(e.dir, "caddy", "pki", "authorities", "local", "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(root)
	jar, _ := cookiejar.New(nil)
	addr := fmt.Sprintf("127.0.0.1:%d", e.https)
	e.client = &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, to string) (net.Conn, error) {
				if host, _, _ := net.SplitHostPort(to); strings.HasSuffix(host, ".localhost") {
					to = addr
				}
				return (&net.Dialer{}).DialContext(ctx, network, to)
			}}}
	// Caddy obtains the certificates from its local CA in the background.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := e.client.Get(e.site("bank.localhost") + "/.portcullis/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Caddy did not serve TLS: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e
}

func (e *embedded) write(yaml string) {
	e.t.Helper()
	if err := os.WriteFile(e.yaml, []byte(yaml), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// load (re)loads Caddy with the Caddyfile, as caddy reload does.
func (e *embedded) load() error {
	e.t.Helper()
	out, err := adapt(e.t, e.caddyfile)
	if err != nil {
		return err
	}
	return caddy.Load(out, true)
}

func (e *embedded) site(host string) string { return fmt.Sprintf("https://%s:%d", host, e.https) }

// get fetches url and returns the status and body.
func (e *embedded) get(url string, header ...string) (int, http.Header, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

type answer struct{ Status, Reason string }

func (e *embedded) api(path, body string) (int, answer) {
	e.t.Helper()
	resp, err := e.client.Post(e.site("bank.localhost")+"/.portcullis/api/v1/"+path, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		e.t.Fatalf("%s: %d: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, a
}

// gateway is the one gateway running.
func gateway(t *testing.T) *compose.Gateway { return theRunning(t).gw }

func theRunning(t *testing.T) *running {
	t.Helper()
	var rs []*running
	gateways.Range(func(_, v any) bool {
		rs = append(rs, v.(*running))
		return true
	})
	if len(rs) != 1 {
		t.Fatalf("%d gateways running, want 1", len(rs))
	}
	return rs[0]
}

func runningCount() int {
	n := 0
	gateways.Range(func(any, any) bool { n++; return true })
	return n
}

// addCustomer creates alice through the gateway's store and hasher, as
// portcullis admin user add does.
func addCustomer(t *testing.T, gw *compose.Gateway) {
	t.Helper()
	hash, err := gw.Server.Hasher().Hash(t.Context(), "wonderland-test-42")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := gw.Store.CreateUser(t.Context(), store.User{ID: "u_alice", Username: "alice", DisplayName: "Alice",
		PasswordHash: hash, Products: []string{"savings"}, SecurityPhone: "+12015550123", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// Caddy with the module serves the whole gateway: the app is reached only
// after the sign-in, with the gateway's identity header and security
// headers; the admin handler answers health, metrics and the admin API;
// a reload keeps the gateway, a changed file replaces it, and a broken one
// is refused while the running gateway goes on.
func TestCaddyServesTheGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Caddy")
	}
	e := startEmbedded(t)
	gw := gateway(t)
	addCustomer(t, gw)
	bank := e.site("bank.localhost")

	code, h, _ := e.get(bank + "/accounts")
	if code != http.StatusFound && code != http.StatusSeeOther {
		t.Fatalf("GET /accounts before signing in: %d, want a redirect to the sign-in", code)
	}
	if loc := h.Get("Location"); !strings.HasPrefix(loc, e.site("login.localhost")+"/.portcullis/") {
		t.Fatalf("redirect to %q, want the login host", loc)
	}
	for _, name := range []string{"Strict-Transport-Security", "Content-Security-Policy", "X-Content-Type-Options"} {
		if h.Get(name) == "" {
			t.Errorf("the gateway's %s is missing through Caddy", name)
		}
	}
	if c, a := e.api("login", `{"username":"alice","password":"wrong-password-42"}`); c != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d %+v", c, a)
	}
	if c, a := e.api("login", `{"username":"alice","password":"wonderland-test-42"}`); c != http.StatusForbidden || a.Status != "step_up_required" {
		t.Fatalf("login: %d %+v, want step_up_required (an unknown device)", c, a)
	}
	if c, a := e.api("step-up/send", `{"method":"sms"}`); c != http.StatusOK || a.Status != "code_sent" {
		t.Fatalf("step-up/send: %d %+v", c, a)
	}
	msg, err := outbox.Last(e.outbox, outbox.Filter{Purpose: notify.PurposeLogin, Channel: notify.SMS})
	if err != nil {
		t.Fatal(err)
	}
	sms, _, _ := strings.Cut(msg.Text, " ")
	if c, a := e.api("step-up/verify", `{"method":"code","code":"`+sms+`"}`); c != http.StatusOK || a.Status != "authenticated" {
		t.Fatalf("step-up/verify: %d %+v", c, a)
	}
	// The same gateway on a site declared http:// refuses to serve: no
	// password or session cookie crosses plain HTTP.
	plain := fmt.Sprintf("http://127.0.0.1:%d", e.plain)
	if code, _, body := e.get(plain + "/accounts"); code != http.StatusForbidden || strings.Contains(body, "app answered") {
		t.Errorf("GET over plain HTTP: %d %q, want 403", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, plain+"/.portcullis/api/v1/login", strings.NewReader(`{"username":"alice","password":"wonderland-test-42"}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := e.client.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) > 0 {
		t.Errorf("login over plain HTTP: %d with cookies %v, want 403 and none", resp.StatusCode, resp.Cookies())
	}
	// A client's own identity header does not reach the app.
	if code, _, body := e.get(bank+"/accounts", "X-Portcullis-User", "mallory"); code != http.StatusOK || body != "app answered alice for /accounts" {
		t.Fatalf("GET /accounts signed in: %d %q", code, body)
	}

	admin := fmt.Sprintf("http://127.0.0.1:%d", e.admin)
	if code, _, body := e.get(admin + "/readyz"); code != http.StatusOK || !strings.Contains(body, "ready") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if _, _, body := e.get(admin + "/metrics"); !strings.Contains(body, `portcullis_http_request_duration_seconds_count{code="200"}`) {
		t.Errorf("/metrics lacks the gateway's request counts:\n%.2000s", body)
	}
	if code, _, _ := e.get(admin + "/admin/v1/users/alice/sessions"); code != http.StatusUnauthorized {
		t.Errorf("admin API without a token: %d, want 401", code)
	}
	code, _, body := e.get(admin+"/admin/v1/users/alice/sessions", "Authorization", "Bearer s3cret-admin-token-0123456789abcdef")
	if code != http.StatusOK || !strings.Contains(body, `"sessions"`) {
		t.Errorf("admin API with the token: %d %q", code, body)
	}
	// Off loopback the admin handler refuses, unless the file sets
	// listen.admin_exposed, as the standalone admin listener does.
	for _, tc := range []struct {
		local   string // the address the request reached; empty: none known
		exposed bool
		want    int
	}{
		{"127.0.0.1:9090", false, http.StatusOK},
		{"[::1]:9090", false, http.StatusOK},
		{"10.0.0.5:9090", false, http.StatusForbidden},
		{"[::ffff:10.0.0.5]:9090", false, http.StatusForbidden},
		{"203.0.113.9:443", false, http.StatusForbidden},
		{"", false, http.StatusForbidden},
		{"10.0.0.5:9090", true, http.StatusOK},
	} {
		a := &Admin{shared: shared{run: &running{gw: gw, adminExposed: tc.exposed}}}
		req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
		if tc.local != "" {
			local := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tc.local))
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, local))
		}
		rec := httptest.NewRecorder()
		got := http.StatusOK
		var he caddyhttp.HandlerError
		if err := a.ServeHTTP(rec, req, nil); errors.As(err, &he) {
			got = he.StatusCode
		} else if err != nil {
			t.Fatal(err)
		} else {
			got = rec.Code
		}
		if got != tc.want {
			t.Errorf("admin handler reached on %q (admin_exposed %v): %d, want %d", tc.local, tc.exposed, got, tc.want)
		}
	}
	// The public site does not serve the admin handler: /metrics there is
	// the app's.
	if code, _, body := e.get(bank + "/metrics"); body != "app answered alice for /metrics" {
		t.Errorf("/metrics on the public site: %d %.200q, want the app's answer", code, body)
	}

	// caddy reload with the file unchanged keeps the gateway.
	if err := e.load(); err != nil {
		t.Fatal(err)
	}
	if gateway(t) != gw {
		t.Error("a reload with the file unchanged started another gateway")
	}
	if code, _, _ := e.get(bank + "/accounts"); code != http.StatusOK {
		t.Errorf("after the reload: %d", code)
	}

	// A file that does not load fails the reload; the running gateway
	// goes on.
	good, _ := os.ReadFile(e.yaml)
	e.write(string(good) + "no_such_setting: 1\n")
	if err := e.load(); err == nil || !strings.Contains(err.Error(), "no_such_setting") {
		t.Fatalf("reload with a broken file: %v, want an error naming the setting", err)
	}
	if gateway(t) != gw {
		t.Error("the broken file replaced the gateway")
	}
	if code, _, _ := e.get(bank + "/accounts"); code != http.StatusOK {
		t.Errorf("after the refused reload: %d", code)
	}

	// A changed file starts a new gateway from it; the old one stops, and
	// the session, kept in the store, goes on.
	e.write(string(good) + "# changed\n")
	if err := e.load(); err != nil {
		t.Fatal(err)
	}
	if gateway(t) == gw {
		t.Error("a changed file kept the old gateway")
	}
	if code, _, body := e.get(bank + "/accounts"); code != http.StatusOK || !strings.Contains(body, "alice") {
		t.Errorf("after the reload with a changed file: %d %q", code, body)
	}
}
