package gateway_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/device"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/selfservice"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/plugins/geoip"
	"github.com/portcullis/portcullis/plugins/phone"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
	"github.com/portcullis/portcullis/policies"
)

const (
	alicePassword = "wonderland-test-42"
	loginHost     = "login.test"
	bankHost      = "bank.test"
	autoHost      = "auto.test"
)

// clock is the injected time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// upstream is a legacy app that records what it receives.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.seen...)
}

func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	rs := u.requests()
	if len(rs) == 0 {
		t.Fatal("upstream received nothing")
	}
	return rs[len(rs)-1]
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		io.WriteString(w, "data: first\n\n")
		f.Flush()
		// Hold the response open until the client has seen the first event.
		<-r.Context().Done()
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		// Never answers: the client gives up first.
		<-r.Context().Done()
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(context.Background()))
		u.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

type harness struct {
	t        *testing.T
	policy   *policies.Engine
	signals  *geoip.Reader
	gw       *gateway.Server
	store    *sqlite.Store
	signer   *assertion.Signer
	srv      *httptest.Server
	bank     *upstream
	auto     *upstream
	clock    *clock
	port     string
	verifier map[string]*assertion.Verifier
	// outbox is every message the gateway sent.
	outbox *outbox
	// logs is the gateway's log output.
	logs *lockedBuffer
}

// setup is what options may change before the gateway is built.
type setup struct {
	cfg *gateway.Config
	// policyDir, when set, loads the policies from a directory instead of
	// the embedded ones.
	policyDir string
	// storePath, when set, is the SQLite file to use (several harnesses
	// may share one, as replicas do); alice is added only if missing.
	storePath string
	// decisionLog, when set, receives the policy engine's decision log.
	decisionLog io.Writer
	// wrapStore, when set, wraps the store the gateway is given.
	wrapStore func(allStore) allStore
	// sender, when set, is given the gateway's messages after the outbox
	// has recorded them (it may fail them).
	sender notify.Sender
	// carrier, when set, is the phone classifier's carrier lookup.
	carrier phone.CarrierLookup
	// directory, when set, is the customer records enrolment checks.
	directory selfservice.Directory
	// upstreamObserver, when set, is the gateway's Deps.UpstreamObserver.
	upstreamObserver func(route string) func(status int, took time.Duration)
}

// withSharedStore makes the harness use the SQLite file at path.
func withSharedStore(path string) option { return func(s *setup) { s.storePath = path } }

// withDecisionLog sends the policy engine's decision log to w.
func withDecisionLog(w io.Writer) option { return func(s *setup) { s.decisionLog = w } }

type option func(*setup)

// withPolicyDir copies the shipped policies to a temporary directory,
// lets edit change them, and loads them from there.
func withPolicyDir(t *testing.T, edit func(dir string)) (option, string) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../rego")); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(dir)
	}
	return func(s *setup) { s.policyDir = dir }, dir
}

// editData changes the policy data file at dir.
func editData(t *testing.T, dir string, change func(cfg map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	change(doc["portcullis"].(map[string]any)["config"].(map[string]any))
	b, _ = json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// geoipDB is the test Anonymous-IP database: 127.0.0.2 anonymous VPN,
// 127.0.0.3 Tor exit, 127.0.0.4 hosting provider, 127.0.0.1 clean.
const geoipDB = "../testdata/geoip/GeoIP2-Anonymous-IP-Test.mmdb"

func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	ctx := t.Context()
	h := &harness{t: t, clock: &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}, bank: newUpstream(t), auto: newUpstream(t)}
	cfg := gateway.Config{
		LoginHost: loginHost,
		Routes: []gateway.Route{
			{Name: "savings", Host: bankHost, PathPrefix: "/", Upstream: mustURL(t, h.bank.URL)},
			{Name: "carloans", Host: autoHost, PathPrefix: "/", Upstream: mustURL(t, h.auto.URL)},
		},
		Session:      gateway.SessionConfig{IdleTimeout: 15 * time.Minute, MaxLifetime: 2 * time.Hour},
		StripHeaders: []string{"X-Remote-User"},
		Password:     credential.Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, MaxConcurrent: 4},
		AssertionTTL: time.Minute,
		SupportPhone: "1-800-555-0100",
	}
	st := setup{cfg: &cfg}
	for _, o := range opts {
		o(&st)
	}
	if st.storePath == "" {
		st.storePath = t.TempDir() + "/portcullis.db"
	}
	db, err := sqlite.Open(ctx, st.storePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.store = db
	signer, err := assertion.NewSigner(ctx, db, assertion.SignerConfig{Issuer: "https://login.test", TTL: time.Minute, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.signer = signer
	engine, err := policies.New(ctx, policies.Config{Dir: st.policyDir, Now: h.clock.Now, DecisionLog: st.decisionLog})
	if err != nil {
		t.Fatal(err)
	}
	h.policy = engine
	signals, err := geoip.Open(geoip.Config{AnonymousIPPath: geoipDB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { signals.Close() })
	h.signals = signals
	var gwStore allStore = db
	if st.wrapStore != nil {
		gwStore = st.wrapStore(db)
	}
	phones, err := phone.New(phone.Config{DefaultRegion: "US", Carrier: st.carrier})
	if err != nil {
		t.Fatal(err)
	}
	h.outbox = &outbox{next: st.sender}
	h.logs = &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw, err := gateway.New(cfg, withParts(gwStore, gateway.Deps{Signer: signer, Policy: engine, Signals: signals,
		Phones: phones, Passwords: testPasswords{}, Directory: st.directory, Sender: h.outbox, CodeKey: testCodeKey, Logger: logger, Now: h.clock.Now,
		UpstreamObserver: st.upstreamObserver}))
	if err != nil {
		t.Fatal(err)
	}
	h.gw = gw
	h.srv = httptest.NewTLSServer(gw)
	t.Cleanup(h.srv.Close)
	_, h.port, _ = net.SplitHostPort(h.srv.Listener.Addr().String())
	h.verifier = map[string]*assertion.Verifier{}
	for _, aud := range []string{"savings", "carloans"} {
		v, err := assertion.NewVerifier(assertion.VerifierConfig{Issuer: "https://login.test", Audience: aud,
			Keys: assertion.RemoteJWKS(h.url(loginHost, "/.portcullis/jwks.json"), h.client(false).Client), Now: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		h.verifier[aud] = v
	}
	if _, err := h.store.UserByName(ctx, "alice"); err != nil {
		alice := h.addUser("alice", alicePassword)
		// Alice signs in from her usual browser, registered long ago: the
		// tests of the password step see no step-up, as she does.
		err := h.store.AddDevice(ctx, store.Device{ID: web.TokenID(aliceDevice), UserID: alice.ID, Name: "Alice's laptop",
			CreatedAt: h.clock.Now(), LastUsedAt: h.clock.Now(), ExpiresAt: h.clock.Now().Add(90 * 24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// aliceDevice is the device cookie of alice's usual browser, which every
// test client sends unless it carries a device cookie of its own.
const aliceDevice = "YWxpY2UtdXN1YWwtYnJvd3Nlci1yZWdpc3RlcmVkISE"

// registerDevice registers b as a device of userID, as a passed step-up
// with the box ticked would, on every host.
func (h *harness) registerDevice(b *browser, userID string) {
	h.t.Helper()
	token, id, err := web.NewToken(rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	now := h.clock.Now()
	if err := h.store.AddDevice(h.t.Context(), store.Device{ID: id, UserID: userID, Name: "test browser",
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(90 * 24 * time.Hour)}); err != nil {
		h.t.Fatal(err)
	}
	for _, host := range []string{loginHost, bankHost, autoHost} {
		b.Jar.SetCookies(mustURL(h.t, h.url(host, "/")), []*http.Cookie{{Name: device.Cookie, Value: token, Path: "/"}})
	}
}

// usualBrowser adds alice's device cookie to requests without one.
type usualBrowser struct{ next http.RoundTripper }

func (u usualBrowser) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, err := r.Cookie(device.Cookie); err != nil {
		r = r.Clone(r.Context())
		r.AddCookie(&http.Cookie{Name: device.Cookie, Value: aliceDevice})
	}
	return u.next.RoundTrip(r)
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (h *harness) addUser(name, password string) store.User {
	h.t.Helper()
	hash, err := h.gw.Hasher().Hash(h.t.Context(), password)
	if err != nil {
		h.t.Fatal(err)
	}
	u := store.User{ID: "id-" + name, Username: name, DisplayName: name, PasswordHash: hash,
		Products: []string{"savings", "carloans"}, CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now()}
	if err := h.store.CreateUser(h.t.Context(), u); err != nil {
		h.t.Fatal(err)
	}
	return u
}

func (h *harness) url(host, path string) string {
	return "https://" + host + ":" + h.port + path
}

// browser is an HTTPS client with a cookie jar that reaches every host at
// the test gateway and does not follow redirects by itself.
type browser struct {
	*http.Client
	h *harness
}

func (h *harness) client(withJar bool) *browser {
	return h.clientFrom("", withJar)
}

// clientFrom is client with the connections made from a given loopback
// source address (as curl --interface does), "" for the default.
func (h *harness) clientFrom(source string, withJar bool) *browser {
	d := &net.Dialer{}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, h.srv.Listener.Addr().String())
		},
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: usualBrowser{tr}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if withJar {
		jar, _ := cookiejar.New(nil)
		c.Jar = jar
	}
	return &browser{Client: c, h: h}
}

func (b *browser) do(req *http.Request) *http.Response {
	b.h.t.Helper()
	resp, err := b.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	b.h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (b *browser) get(host, path string) *http.Response {
	b.h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.h.url(host, path), nil)
	return b.do(req)
}

// follow GETs a URL and follows redirects across hosts, returning the final
// response and every URL visited.
func (b *browser) follow(rawURL string) (*http.Response, []string) {
	b.h.t.Helper()
	var visited []string
	for range 10 {
		visited = append(visited, rawURL)
		req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
		resp := b.do(req)
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			return resp, visited
		}
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.h.t.Fatal(err)
		}
		rawURL = next.String()
	}
	b.h.t.Fatalf("redirect loop: %v", visited)
	return nil, nil
}

type apiAnswer struct {
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	User    string `json:"user"`
}

func (b *browser) apiLogin(host, username, password string) (*http.Response, apiAnswer) {
	b.h.t.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	req, _ := http.NewRequest(http.MethodPost, b.h.url(host, "/.portcullis/api/v1/login"), strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp := b.do(req)
	var a apiAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		b.h.t.Fatalf("login answer is not JSON: %v", err)
	}
	return resp, a
}

func (b *browser) mustLogin(host string) {
	b.h.t.Helper()
	resp, a := b.apiLogin(host, "alice", alicePassword)
	if resp.StatusCode != http.StatusOK || a.Status != "authenticated" {
		b.h.t.Fatalf("login: %d %+v", resp.StatusCode, a)
	}
}

// formLogin reads the login page at pageURL and submits it.
func (b *browser) formLogin(pageURL, username, password string) *http.Response {
	b.h.t.Helper()
	page := b.do(mustReq(b.h.t, http.MethodGet, pageURL, nil))
	if page.StatusCode != http.StatusOK {
		b.h.t.Fatalf("login page: %d", page.StatusCode)
	}
	body, _ := io.ReadAll(page.Body)
	form := url.Values{"csrf": {hiddenValue(string(body), "csrf")}, "rd": {hiddenValue(string(body), "rd")},
		"username": {username}, "password": {password}}
	req := mustReq(b.h.t, http.MethodPost, page.Request.URL.Scheme+"://"+page.Request.URL.Host+"/.portcullis/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func mustReq(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// hiddenValue extracts a hidden input's value from a page.
func hiddenValue(page, name string) string {
	marker := `name="` + name + `" value="`
	i := strings.Index(page, marker)
	if i < 0 {
		return ""
	}
	rest := page[i+len(marker):]
	v := rest[:strings.IndexByte(rest, '"')]
	return htmlUnescape(v)
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">", "&#61;", "=")
	return r.Replace(s)
}

// rawRequest sends bytes on a fresh TLS connection and returns the response,
// for header spellings net/http would normalise.
func (h *harness) rawRequest(raw string) *http.Response {
	h.t.Helper()
	resp, _, _ := h.rawExchange(raw)
	return resp
}

// rawExchange is rawRequest that also returns the connection and its reader,
// for protocols that continue after the response (WebSocket).
func (h *harness) rawExchange(raw string) (*http.Response, net.Conn, *bufio.Reader) {
	h.t.Helper()
	conn, err := tls.Dial("tcp", h.srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: bankHost, NextProtos: []string{"http/1.1"}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, raw); err != nil {
		h.t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, conn, br
}

// tokenHash is how the gateway stores a session token: hex SHA-256.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// allStore is a store that keeps every part, as the SQLite store does.
type allStore interface {
	store.Users
	store.Hits
	store.Sessions
	store.Records
	store.Devices
	store.Factors
}

// withParts returns d with every store part taken from st.
func withParts(st allStore, d gateway.Deps) gateway.Deps {
	d.Users, d.Hits, d.Sessions, d.Records, d.Devices, d.Factors = st, st, st, st, st, st
	if d.CodeKey == nil {
		d.CodeKey = testCodeKey
	}
	return d
}

// testCodeKey is the key the harness seals security codes under.
var testCodeKey = []byte("0123456789abcdef0123456789abcdef")

// outbox records every message the gateway sends, then passes it to next
// (when set), whose answer is the send's.
type outbox struct {
	mu   sync.Mutex
	msgs []notify.Message
	next notify.Sender
}

func (o *outbox) Send(ctx context.Context, m notify.Message) error {
	o.mu.Lock()
	o.msgs = append(o.msgs, m)
	o.mu.Unlock()
	if o.next != nil {
		return o.next.Send(ctx, m)
	}
	return nil
}

// messages returns a copy of what was sent.
func (o *outbox) messages() []notify.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]notify.Message(nil), o.msgs...)
}
