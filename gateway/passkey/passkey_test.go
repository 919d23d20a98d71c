package passkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/device"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/passkey"
	"github.com/portcullis/portcullis/gateway/passkey/passkeytest"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/plugins/geoip"
	"github.com/portcullis/portcullis/plugins/phone"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
	"github.com/portcullis/portcullis/policies"
)

const (
	loginHost = "login.test"
	hostPort  = loginHost + ":8443"
	origin    = "https://" + hostPort
	// geoipDB is the test Anonymous-IP database: 127.0.0.2 is an anonymous
	// VPN, 127.0.0.1 clean.
	geoipDB = "../../testdata/geoip/GeoIP2-Anonymous-IP-Test.mmdb"
	cleanIP = "127.0.0.1"
	vpnIP   = "127.0.0.2"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// logBuffer is the room's log output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

// outbox records the messages sent.
type outbox struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (o *outbox) Send(_ context.Context, m notify.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, m)
	return nil
}

func (o *outbox) texts() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, m := range o.msgs {
		out = append(out, m.Text)
	}
	return out
}

type fixture struct {
	t        *testing.T
	db       *sqlite.Store
	sessions *session.Manager
	policy   *policies.Engine
	mux      http.Handler
	clock    *clock
	outbox   *outbox
	logs     *logBuffer
	alice    store.User
}

type option func(*policies.Config)

// withPolicyData runs the fixture on the shipped policies with their data
// changed by edit.
func withPolicyData(t *testing.T, edit func(cfg map[string]any)) option {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../rego")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc["portcullis"].(map[string]any)["config"].(map[string]any))
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *policies.Config) { c.Dir = dir }
}

// newFixture builds the room as the gateway would, on the real session
// manager, the SQLite store, the shipped policies and the test GeoIP
// database, with the cross-origin check the gateway puts in front of it.
func newFixture(t *testing.T, opts ...option) *fixture {
	t.Helper()
	ctx := t.Context()
	c := &clock{now: time.Date(2031, 3, 4, 5, 0, 0, 0, time.UTC)}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pcfg := policies.Config{Now: c.Now}
	for _, o := range opts {
		o(&pcfg)
	}
	engine, err := policies.New(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	signals, err := geoip.Open(geoip.Config{AnonymousIPPath: geoipDB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { signals.Close() })
	phones, err := phone.New(phone.Config{DefaultRegion: "US"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	site := web.NewSite(web.SiteConfig{Hosts: []string{loginHost}, LoginHost: loginHost}, log, rand.Reader)
	sessions := session.New(session.Deps{Sessions: db, Records: db, Users: db, IdleTimeout: 15 * time.Minute,
		Log: log, Now: c.Now, Rand: rand.Reader})
	keys, err := credential.NewPasskeys(credential.PasskeyConfig{RPID: loginHost, DisplayName: "Example Bank"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out := &outbox{}
	mux := http.NewServeMux()
	passkey.New(passkey.Deps{Site: site, Sessions: sessions, Passkeys: keys, Users: db, Factors: db, Records: db, Hits: db,
		Devices: device.New(db, c.Now, rand.Reader), Notices: &notify.Notices{Sender: out, Org: "Example Bank", Log: log},
		Facts: &facts.Source{Signals: signals, Phones: phones, Log: log}, Policy: engine,
		MaxLifetime: 2 * time.Hour, Log: log, Now: c.Now,
	}).Register(mux)
	cop := http.NewCrossOriginProtection()
	alice := store.User{ID: "id-alice", Username: "alice", DisplayName: "Alice Liddell", SecurityPhone: "+12015550123",
		Email: "alice@example.com", Products: []string{"savings"}, CreatedAt: c.now, UpdatedAt: c.now}
	if err := db.CreateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db, sessions: sessions, policy: engine, clock: c, outbox: out, logs: logs, alice: alice,
		mux: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			site.SetPageHeaders(w.Header())
			if err := cop.Check(r); err != nil {
				site.RenderError(w, r, web.Forbidden(policies.ReasonCrossOrigin, err))
				return
			}
			mux.ServeHTTP(w, r)
		})}
}

// browser keeps one browser's cookies and address.
type browser struct {
	f       *fixture
	ip      string
	host    string
	cookies map[string]*http.Cookie
}

func (f *fixture) browser(ip string) *browser {
	return &browser{f: f, ip: ip, host: hostPort, cookies: map[string]*http.Cookie{}}
}

// answer is a JSON answer of the room.
type answer struct {
	Code     int
	Status   string          `json:"status"`
	Reason   string          `json:"reason"`
	Message  string          `json:"message"`
	StepUp   []string        `json:"step_up"`
	Redirect string          `json:"redirect"`
	User     string          `json:"user"`
	Options  json.RawMessage `json:"options"`
}

// post sends a same-origin JSON request, as the page's script does.
func (b *browser) post(path string, body any) answer {
	b.f.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		b.f.t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "https://"+b.host+path, bytes.NewReader(raw))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.send(r)
}

func (b *browser) send(r *http.Request) answer {
	b.f.t.Helper()
	r.RemoteAddr = b.ip + ":50000"
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.f.mux.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	var a answer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		b.f.t.Fatalf("%s %s: %d %q is not JSON", r.Method, r.URL.Path, w.Code, w.Body.String())
	}
	a.Code = w.Code
	return a
}

// signedIn returns a browser with a session of u opened with methods.
func (f *fixture) signedIn(u store.User, methods []string) *browser {
	f.t.Helper()
	b := f.browser(cleanIP)
	w := httptest.NewRecorder()
	if _, err := f.sessions.Start(w, httptest.NewRequest(http.MethodPost, "https://"+hostPort+"/", nil), u, methods, "", time.Hour); err != nil {
		f.t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		b.cookies[c.Name] = c
	}
	return b
}

// session is the session b's cookie names, if valid.
func (b *browser) session() (session.Identity, bool) {
	b.f.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://"+b.host+"/", nil)
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	id, ok, err := b.f.sessions.Current(r)
	if err != nil {
		b.f.t.Fatal(err)
	}
	return id, ok
}

const (
	apiRegisterBegin  = "/.portcullis/api/v1/passkeys/register/begin"
	apiRegisterFinish = "/.portcullis/api/v1/passkeys/register/finish"
	apiLoginBegin     = "/.portcullis/api/v1/passkeys/login/begin"
	apiLoginFinish    = "/.portcullis/api/v1/passkeys/login/finish"
)

// addPasskey registers a passkey of a to u from a stepped-up session.
func (f *fixture) addPasskey(u store.User, a *passkeytest.Authenticator) {
	f.t.Helper()
	b := f.signedIn(u, []string{"pwd", "sms"})
	begin := b.post(apiRegisterBegin, struct{}{})
	if begin.Code != http.StatusOK || begin.Status != "create_passkey" {
		f.t.Fatalf("register begin: %+v", begin)
	}
	cred, err := a.Create(begin.Options)
	if err != nil {
		f.t.Fatal(err)
	}
	fin := b.post(apiRegisterFinish, map[string]any{"credential": json.RawMessage(cred), "name": "Laptop"})
	if fin.Code != http.StatusOK || fin.Status != "added" {
		f.t.Fatalf("register finish: %+v", fin)
	}
}

// signIn runs the sign-in ceremony in b with a and returns the finish's
// answer.
func (b *browser) signIn(a *passkeytest.Authenticator, rd string) answer {
	b.f.t.Helper()
	begin := b.post(apiLoginBegin, struct{}{})
	if begin.Code != http.StatusOK {
		return begin
	}
	cred, err := a.Get(begin.Options)
	if err != nil {
		b.f.t.Fatal(err)
	}
	return b.post(apiLoginFinish, map[string]any{"credential": json.RawMessage(cred), "rd": rd})
}

func (f *fixture) passkeyFactor(userID string) store.Factor {
	f.t.Helper()
	fs, err := f.db.FactorsOf(f.t.Context(), userID)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, fa := range fs {
		if fa.Kind == credential.KindPasskey {
			return fa
		}
	}
	f.t.Fatalf("%s has no passkey", userID)
	return store.Factor{}
}

func (f *fixture) ipFailures(ip string) int {
	f.t.Helper()
	n, err := f.db.Hits(f.t.Context(), "login-fail-ip:"+ip, f.policy.IPFailureWindow(), f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func TestRegisterThenSignIn(t *testing.T) {
	f := newFixture(t)
	a := passkeytest.New(origin)
	f.addPasskey(f.alice, a)

	pk := f.passkeyFactor(f.alice.ID)
	if pk.Name != "Laptop" || pk.ID != credential.PasskeyFactorID(a.Passkeys()[0].ID) {
		t.Errorf("stored passkey: %+v", pk)
	}
	if texts := f.outbox.texts(); len(texts) != 1 || !strings.Contains(texts[0], "A passkey was added") {
		t.Errorf("notices sent: %q, want the passkey_added notice", texts)
	}

	b := f.browser(cleanIP)
	got := b.signIn(a, "/accounts")
	if got.Code != http.StatusOK || got.Status != "authenticated" || got.User != "alice" || got.Redirect != "/accounts" {
		t.Fatalf("sign in: %+v", got)
	}
	if _, ok := b.cookies[passkey.Cookie]; ok {
		t.Error("the ceremony cookie outlived the ceremony")
	}
	id, ok := b.session()
	if !ok || id.User.ID != f.alice.ID || !slices.Equal(id.Session.Methods, passkey.Methods()) {
		t.Fatalf("session after the passkey: %+v %v", id.Session, ok)
	}
	if facts := session.Facts(id.Session); facts.StepUpAt != facts.AuthTime {
		t.Errorf("a passkey session is not stepped up at its sign-in: %+v", facts)
	}
	if pk := f.passkeyFactor(f.alice.ID); pk.Counter != 1 {
		t.Errorf("signature count after the sign-in: %d, want 1", pk.Counter)
	}
}

// A settings change needs a fresh step-up: without one, registration
// begins the step-up and answers which methods pass it.
func TestRegisterNeedsAFreshStepUp(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn(f.alice, []string{"pwd"})
	got := b.post(apiRegisterBegin, struct{}{})
	if got.Code != http.StatusForbidden || got.Status != "step_up_required" || len(got.StepUp) == 0 {
		t.Fatalf("register begin without a step-up: %+v", got)
	}
	if _, ok := b.cookies[session.PendingCookie]; !ok {
		t.Error("no step-up was begun")
	}
	if got := f.browser(cleanIP).post(apiRegisterBegin, struct{}{}); got.Code != http.StatusUnauthorized || got.Reason != "no_session" {
		t.Errorf("register begin without a session: %+v", got)
	}
}

func TestRegisterRefusals(t *testing.T) {
	f := newFixture(t)
	a := passkeytest.New(origin)
	b := f.signedIn(f.alice, []string{"pwd", "sms"})
	t.Run("finish without begin", func(t *testing.T) {
		cred, _ := json.Marshal(map[string]string{"id": "AQ"})
		got := b.post(apiRegisterFinish, map[string]any{"credential": json.RawMessage(cred)})
		if got.Code != http.StatusForbidden || got.Reason != "bad_request" {
			t.Fatalf("finish without a ceremony: %+v", got)
		}
	})
	t.Run("another session's ceremony", func(t *testing.T) {
		begin := b.post(apiRegisterBegin, struct{}{})
		cred, err := a.Create(begin.Options)
		if err != nil {
			t.Fatal(err)
		}
		other := f.signedIn(f.alice, []string{"pwd", "sms"})
		if got := other.post(apiRegisterFinish, map[string]any{"credential": json.RawMessage(cred)}); got.Code != http.StatusForbidden {
			t.Fatalf("finish in another session: %+v", got)
		}
	})
	t.Run("wrong origin", func(t *testing.T) {
		begin := b.post(apiRegisterBegin, struct{}{})
		phish := passkeytest.New("https://login.test.evil")
		cred, err := phish.Create(begin.Options)
		if err != nil {
			t.Fatal(err)
		}
		got := b.post(apiRegisterFinish, map[string]any{"credential": json.RawMessage(cred)})
		if got.Code != http.StatusForbidden || got.Reason != "bad_request" {
			t.Fatalf("finish from another origin: %+v", got)
		}
	})
	t.Run("used ceremony", func(t *testing.T) {
		begin := b.post(apiRegisterBegin, struct{}{})
		cred, err := a.Create(begin.Options)
		if err != nil {
			t.Fatal(err)
		}
		body := map[string]any{"credential": json.RawMessage(cred)}
		if got := b.post(apiRegisterFinish, body); got.Code != http.StatusOK {
			t.Fatalf("first finish: %+v", got)
		}
		if got := b.post(apiRegisterFinish, body); got.Code != http.StatusForbidden || got.Message != "Start again: that passkey request has ended." {
			t.Fatalf("second finish of one ceremony: %+v", got)
		}
	})
	t.Run("a body that is not JSON", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "https://"+hostPort+apiRegisterBegin, strings.NewReader("{}"))
		r.Header.Set("Content-Type", "text/plain")
		if got := b.send(r); got.Code != http.StatusUnsupportedMediaType {
			t.Fatalf("text/plain body: %+v", got)
		}
	})
	t.Run("another site", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "https://"+hostPort+apiRegisterBegin, strings.NewReader("{}"))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		if got := b.send(r); got.Code != http.StatusForbidden || got.Reason != "cross_origin" {
			t.Fatalf("cross-site request: %+v", got)
		}
	})
}

func TestChallengeIsUsedOnce(t *testing.T) {
	f := newFixture(t)
	a := passkeytest.New(origin)
	f.addPasskey(f.alice, a)

	b := f.browser(cleanIP)
	begin := b.post(apiLoginBegin, struct{}{})
	ceremony := b.cookies[passkey.Cookie]
	cred, err := a.Get(begin.Options)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"credential": json.RawMessage(cred)}
	if got := b.post(apiLoginFinish, body); got.Code != http.StatusOK {
		t.Fatalf("first finish: %+v", got)
	}
	// The same answer again, with the same ceremony cookie.
	replay := f.browser(cleanIP)
	replay.cookies[passkey.Cookie] = ceremony
	if got := replay.post(apiLoginFinish, body); got.Code != http.StatusForbidden || got.Reason != "bad_request" {
		t.Fatalf("the answer again under the used ceremony: %+v", got)
	}
	if _, ok := replay.session(); ok {
		t.Fatal("a replayed answer signed in")
	}
	// The same answer under a new ceremony: its challenge is not that one.
	replay.post(apiLoginBegin, struct{}{})
	if got := replay.post(apiLoginFinish, body); got.Code != http.StatusUnauthorized || got.Reason != "bad_credentials" {
		t.Fatalf("the answer again under a new ceremony: %+v", got)
	}
	if !strings.Contains(f.logs.String(), "Error validating challenge") {
		t.Errorf("refused for another reason than the challenge:\n%s", f.logs.String())
	}
	if _, ok := replay.session(); ok {
		t.Fatal("a replayed answer signed in")
	}
}

func TestWrongOriginIsRefused(t *testing.T) {
	f := newFixture(t)
	a := passkeytest.New(origin)
	f.addPasskey(f.alice, a)
	a.Origin = "https://login.test.evil"
	b := f.browser(cleanIP)
	got := b.signIn(a, "")
	if got.Code != http.StatusUnauthorized || got.Reason != "bad_credentials" ||
		got.Message != "We couldn't sign you in with that passkey. Try again, or sign in with your username and password." {
		t.Fatalf("sign in from another origin: %+v", got)
	}
	if _, ok := b.session(); ok {
		t.Fatal("signed in from another origin")
	}
	if n := f.ipFailures(cleanIP); n != 1 {
		t.Errorf("failures counted against the address: %d, want 1", n)
	}
	if u, _ := f.db.UserByID(t.Context(), f.alice.ID); u.FailedLogins != 0 {
		t.Errorf("a refused passkey counted toward the profile's lockout: %d", u.FailedLogins)
	}
}

func TestSignCountGoingBackwardsIsRefused(t *testing.T) {
	f := newFixture(t)
	a := passkeytest.New(origin)
	f.addPasskey(f.alice, a)
	a.Passkeys()[0].Counter = 41
	if got := f.browser(cleanIP).signIn(a, ""); got.Code != http.StatusOK {
		t.Fatalf("sign in at count 42: %+v", got)
	}
	// A clone that has signed less often.
	a.Passkeys()[0].Counter = 10
	b := f.browser(cleanIP)
	if got := b.signIn(a, ""); got.Code != http.StatusUnauthorized || got.Reason != "bad_credentials" {
		t.Fatalf("sign in at count 11 after 42: %+v", got)
	}
	if _, ok := b.session(); ok {
		t.Fatal("a passkey whose count went back signed in")
	}
	if !strings.Contains(f.logs.String(), "signature count did not advance") {
		t.Errorf("refused for another reason than the count:\n%s", f.logs.String())
	}
	// The same count again.
	a.Passkeys()[0].Counter = 41
	if got := f.browser(cleanIP).signIn(a, ""); got.Code != http.StatusUnauthorized {
		t.Fatalf("sign in at count 42 twice: %+v", got)
	}
	if pk := f.passkeyFactor(f.alice.ID); pk.Counter != 42 {
		t.Errorf("stored count: %d, want 42", pk.Counter)
	}
}

// An authenticator that keeps no count sends 0 every time, and is
// accepted every time.
func TestPasskeyWithoutCounterSignsIn(t *testing.T) {
	f := newFixture(t)
	a := passkeytest.New(origin)
	a.NoCounter = true
	f.addPasskey(f.alice, a)
	for i := range 2 {
		if got := f.browser(cleanIP).signIn(a, ""); got.Code != http.StatusOK {
			t.Fatalf("sign in %d with a count of 0: %+v", i, got)
		}
	}
}

func TestLockedProfileIsRefused(t *testing.T) {
	f := newFixture(t)
	a := passkeytest.New(origin)
	f.addPasskey(f.alice, a)
	if _, err := f.db.LockUser(t.Context(), f.alice.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b := f.browser(cleanIP)
	if got := b.signIn(a, ""); got.Code != http.StatusForbidden || got.Reason != "account_locked" {
		t.Fatalf("sign in to a locked profile: %+v", got)
	}
	if _, ok := b.session(); ok {
		t.Fatal("a locked profile signed in")
	}
}

func TestAnonymizerIsRefused(t *testing.T) {
	f := newFixture(t)
	a := passkeytest.New(origin)
	f.addPasskey(f.alice, a)
	t.Run("at begin", func(t *testing.T) {
		got := f.browser(vpnIP).post(apiLoginBegin, struct{}{})
		if got.Code != http.StatusForbidden || got.Reason != "ip_anonymous_vpn" || len(got.Options) != 0 {
			t.Fatalf("begin over a VPN: %+v", got)
		}
	})
	t.Run("at finish", func(t *testing.T) {
		b := f.browser(cleanIP)
		begin := b.post(apiLoginBegin, struct{}{})
		cred, err := a.Get(begin.Options)
		if err != nil {
			t.Fatal(err)
		}
		b.ip = vpnIP
		got := b.post(apiLoginFinish, map[string]any{"credential": json.RawMessage(cred)})
		if got.Code != http.StatusForbidden || got.Reason != "ip_anonymous_vpn" {
			t.Fatalf("finish over a VPN: %+v", got)
		}
		if _, ok := b.session(); ok {
			t.Fatal("signed in over a VPN")
		}
	})
}

// A ceremony begun with a username signs in that profile only.
func TestUsernameBindsTheCeremony(t *testing.T) {
	f := newFixture(t)
	a := passkeytest.New(origin)
	f.addPasskey(f.alice, a)
	for _, tc := range []struct {
		username string
		want     int
	}{{"ALICE", http.StatusOK}, {"bob", http.StatusUnauthorized}} {
		b := f.browser(cleanIP)
		begin := b.post(apiLoginBegin, map[string]string{"username": tc.username})
		if strings.Contains(string(begin.Options), "allowCredentials") {
			t.Errorf("the options name %s's passkeys: %s", tc.username, begin.Options)
		}
		cred, err := a.Get(begin.Options)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.post(apiLoginFinish, map[string]any{"credential": json.RawMessage(cred)}); got.Code != tc.want {
			t.Errorf("alice's passkey in a ceremony for %s: %+v, want %d", tc.username, got, tc.want)
		}
	}
}

// When the policy takes no passkey as the step-up of an unknown device, the
// passkey stands for the password and the policy's step-up follows.
func TestPolicyWithoutPasskeyStepUpAsksForOne(t *testing.T) {
	f := newFixture(t, withPolicyData(t, func(cfg map[string]any) {
		cfg["step_up"].(map[string]any)["methods"] = []string{"sms", "voice"}
	}))
	a := passkeytest.New(origin)
	f.addPasskey(f.alice, a)
	b := f.browser(cleanIP)
	got := b.signIn(a, "")
	if got.Code != http.StatusForbidden || got.Status != "step_up_required" || !slices.Equal(got.StepUp, []string{"sms", "voice"}) {
		t.Fatalf("sign in with a passkey the policy does not take as step-up: %+v", got)
	}
	if _, ok := b.cookies[session.PendingCookie]; !ok {
		t.Error("no pending login for the step-up")
	}
	if _, ok := b.session(); ok {
		t.Error("signed in before the step-up")
	}
}

func TestOnlyTheRelyingPartyHost(t *testing.T) {
	f := newFixture(t)
	b := f.browser(cleanIP)
	b.host = "bank.test:8443"
	if got := b.post(apiLoginBegin, struct{}{}); got.Code != http.StatusNotFound {
		t.Fatalf("begin on another host: %+v", got)
	}
}

func TestScriptIsServed(t *testing.T) {
	f := newFixture(t)
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://"+hostPort+"/.portcullis/passkeys/passkey.js", nil))
	body, _ := io.ReadAll(w.Body)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" ||
		!bytes.Contains(body, []byte("navigator.credentials.get")) {
		t.Fatalf("passkey.js: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}
