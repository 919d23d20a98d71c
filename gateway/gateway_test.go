package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/policies"
)

func sessionCookieValue(t *testing.T, resp *http.Response) string {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-portcullis" {
			return c.Value
		}
	}
	t.Fatalf("no session cookie in %v", resp.Header.Values("Set-Cookie"))
	return ""
}

func TestNoSessionRedirectsToLoginAndReachesNothing(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	resp := b.get(bankHost, "/whoami?x=1")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != loginHost+":"+h.port || loc.Path != "/.portcullis/authorize" {
		t.Fatalf("redirect to %s, want the login host's authorize step", loc)
	}
	if rd := loc.Query().Get("rd"); rd != h.url(bankHost, "/whoami?x=1") {
		t.Fatalf("return target %q", rd)
	}
	req := mustReq(t, http.MethodPost, h.url(bankHost, "/transfer"), strings.NewReader("amount=100"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp := b.do(req); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST without session: %d, want 401", resp.StatusCode)
	}
	if n := len(h.bank.requests()); n != 0 {
		t.Fatalf("upstream received %d requests without a session", n)
	}
}

func TestLoginHandsIdentityToUpstream(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin(bankHost)
	resp := b.get(bankHost, "/whoami")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := h.bank.last(t)
	if u := got.Header.Get("X-Portcullis-User"); u != "alice" {
		t.Errorf("X-Portcullis-User = %q", u)
	}
	if id := got.Header.Get("X-Portcullis-User-Id"); id != "id-alice" {
		t.Errorf("X-Portcullis-User-Id = %q", id)
	}
	if m := got.Header.Get("X-Portcullis-Auth-Methods"); m != "pwd" {
		t.Errorf("X-Portcullis-Auth-Methods = %q", m)
	}
	claims, err := h.verifier["savings"].Verify(t.Context(), got.Header.Get("X-Portcullis-Assertion"))
	if err != nil {
		t.Fatalf("assertion does not verify against the JWKS: %v", err)
	}
	if claims.Subject != "id-alice" || claims.Username != "alice" || claims.Audience != "savings" {
		t.Errorf("claims %+v", claims)
	}
	if exp := claims.Expiry.Sub(claims.IssuedAt); exp <= 0 || exp > time.Minute {
		t.Errorf("assertion lifetime %s", exp)
	}
	if _, err := h.verifier["carloans"].Verify(t.Context(), got.Header.Get("X-Portcullis-Assertion")); err == nil {
		t.Error("the savings assertion verified for the carloans audience")
	}
	if c := got.Header.Get("Cookie"); strings.Contains(c, "__Host-portcullis") {
		t.Errorf("upstream received the gateway's cookies: %q", c)
	}
	if xff := got.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", xff)
	}
}

func TestForgedIdentityHeadersNeverReachUpstream(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin(bankHost)
	u, _ := url.Parse(h.url(bankHost, "/"))
	var cookie string
	for _, c := range b.Jar.Cookies(u) {
		cookie += c.Name + "=" + c.Value + "; "
	}
	forged := []string{
		"X-Portcullis-User", "x-portcullis-user", "X-PORTCULLIS-USER", "X_Portcullis_User", "x_portcullis_user",
		"X-Portcullis_User", "X-Portcullis-User-Id", "X-Portcullis-Assertion", "X-Portcullis-Auth-Methods",
		"X-Portcullis-Admin", "X-Portcullis-Anything-New", "X-Remote-User", "x_remote_user", "X-REMOTE-USER",
	}
	for _, name := range forged {
		for _, viaConnection := range []bool{false, true} {
			t.Run(name+map[bool]string{true: "/connection"}[viaConnection], func(t *testing.T) {
				conn := "keep-alive"
				if viaConnection {
					conn = "keep-alive, " + name + ", X-Portcullis-Assertion, X-Portcullis-User"
				}
				raw := "GET /whoami HTTP/1.1\r\nHost: " + bankHost + ":" + h.port + "\r\nCookie: " + cookie + "\r\n" +
					name + ": mallory\r\nConnection: " + conn + "\r\n\r\n"
				resp := h.rawRequest(raw)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				got := h.bank.last(t)
				for k, vs := range got.Header {
					for _, v := range vs {
						if strings.Contains(v, "mallory") {
							t.Fatalf("upstream received forged %s: %s", k, v)
						}
					}
				}
				if got.Header.Get("X-Portcullis-User") != "alice" {
					t.Fatalf("upstream lost the gateway's identity: %q", got.Header.Get("X-Portcullis-User"))
				}
				if _, err := h.verifier["savings"].Verify(t.Context(), got.Header.Get("X-Portcullis-Assertion")); err != nil {
					t.Fatalf("assertion: %v", err)
				}
			})
		}
	}
}

func TestCrossHostSignInAndLogoutEverywhere(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	// auto.test without a session: sent to the login host, which shows the form.
	resp, visited := b.follow(h.url(autoHost, "/loans?id=7"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/.portcullis/login") {
		t.Fatalf("ended at %s (%d) after %v", resp.Request.URL, resp.StatusCode, visited)
	}
	if resp.Request.URL.Host != loginHost+":"+h.port {
		t.Fatalf("login page on %s, want the login host", resp.Request.URL.Host)
	}
	post := b.formLogin(resp.Request.URL.String(), "alice", alicePassword)
	if post.StatusCode != http.StatusSeeOther {
		t.Fatalf("form login: %d", post.StatusCode)
	}
	next, _ := post.Request.URL.Parse(post.Header.Get("Location"))
	final, visited := b.follow(next.String())
	if final.StatusCode != http.StatusOK || final.Request.URL.Host != autoHost+":"+h.port || final.Request.URL.RequestURI() != "/loans?id=7" {
		t.Fatalf("ended at %s (%d) after %v", final.Request.URL, final.StatusCode, visited)
	}
	if got := h.auto.last(t).Header.Get("X-Portcullis-User"); got != "alice" {
		t.Fatalf("auto upstream user %q", got)
	}
	var callback string
	for _, v := range visited {
		if strings.Contains(v, "/.portcullis/callback") {
			callback = v
		}
	}
	if callback == "" {
		t.Fatalf("no callback in %v", visited)
	}
	// A grant is single use: replaying the callback from another browser fails.
	other := h.client(true)
	if resp := other.get(autoHost, strings.TrimPrefix(callback, "https://"+autoHost+":"+h.port)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replayed grant: %d, want 403", resp.StatusCode)
	}
	// bank.test now signs in without the form.
	final, visited = b.follow(h.url(bankHost, "/whoami"))
	if final.StatusCode != http.StatusOK || final.Request.URL.Host != bankHost+":"+h.port {
		t.Fatalf("bank: ended at %s (%d) after %v", final.Request.URL, final.StatusCode, visited)
	}
	for _, v := range visited {
		if strings.Contains(v, "/.portcullis/login") {
			t.Fatalf("bank asked to log in again: %v", visited)
		}
	}
	// Logout on auto ends bank and the login host too.
	req := mustReq(t, http.MethodPost, h.url(autoHost, "/.portcullis/api/v1/logout"), strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if resp := b.do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	before := len(h.bank.requests())
	for _, host := range []string{bankHost, autoHost} {
		if resp := b.get(host, "/whoami"); resp.StatusCode != http.StatusFound {
			t.Fatalf("%s after logout: %d, want redirect to login", host, resp.StatusCode)
		}
	}
	if resp := b.get(loginHost, "/.portcullis/api/v1/session"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login host session after logout: %d", resp.StatusCode)
	}
	if len(h.bank.requests()) != before {
		t.Fatal("upstream reached after logout")
	}
}

func TestCallbackRefusesGrantForAnotherHost(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin(loginHost)
	resp := b.get(loginHost, "/.portcullis/authorize?rd="+url.QueryEscape(h.url(autoHost, "/")))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != autoHost+":"+h.port || loc.Path != "/.portcullis/callback" {
		t.Fatalf("authorize redirected to %s", loc)
	}
	// Redeem the auto.test code on bank.test.
	if resp := b.get(bankHost, loc.RequestURI()); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("grant for auto redeemed on bank: %d", resp.StatusCode)
	}
	for _, bad := range []string{"https://evil.test/", "http://" + autoHost + "/", "//evil.test", "https://" + autoHost + "\\@evil.test/"} {
		if resp := b.get(loginHost, "/.portcullis/authorize?rd="+url.QueryEscape(bad)); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("authorize to %q: %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestSignInCodeIsBoundToThePort(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin(loginHost)
	for _, port := range []string{"1", "0", "99999", "443", "08443x", ""} {
		target := "https://" + autoHost + ":" + port + "/whoami"
		resp := b.get(loginHost, "/.portcullis/authorize?rd="+url.QueryEscape(target))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("authorize to %s: %d to %q, want 400 and no redirect", target, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// The login form's return target falls back to / for another port.
	page := b.get(loginHost, "/.portcullis/login?rd="+url.QueryEscape("https://"+autoHost+":1/whoami"))
	if body, _ := io.ReadAll(page.Body); strings.Contains(string(body), ":1/whoami") {
		t.Error("the login page keeps a return target on another port")
	}
	// A code issued for the served port is refused on any other.
	resp := b.get(loginHost, "/.portcullis/authorize?rd="+url.QueryEscape(h.url(autoHost, "/whoami")))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != autoHost+":"+h.port {
		t.Fatalf("authorize redirected to %s", loc)
	}
	other := h.client(true)
	if resp := other.do(mustReq(t, http.MethodGet, "https://"+autoHost+":1"+loc.RequestURI(), nil)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("code for port %s redeemed with Host port 1: %d", h.port, resp.StatusCode)
	}
}

func TestSessionIDRotatesAtLogin(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	// A token planted before login (session fixation) must not survive it.
	u, _ := url.Parse(h.url(bankHost, "/"))
	planted := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	b.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-portcullis", Value: planted, Path: "/", Secure: true}})
	resp, _ := b.apiLogin(bankHost, "alice", alicePassword)
	first := sessionCookieValue(t, resp)
	if first == planted {
		t.Fatal("planted session ID kept at login")
	}
	resp, _ = b.apiLogin(bankHost, "alice", alicePassword)
	second := sessionCookieValue(t, resp)
	if second == first {
		t.Fatal("session ID not rotated at the second login")
	}
	// The first session is gone.
	stale := h.client(false)
	req := mustReq(t, http.MethodGet, h.url(bankHost, "/whoami"), nil)
	req.AddCookie(&http.Cookie{Name: "__Host-portcullis", Value: first})
	if resp := stale.do(req); resp.StatusCode != http.StatusFound {
		t.Fatalf("old session still works after rotation: %d", resp.StatusCode)
	}
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin(bankHost)
	// Active use keeps the session alive past the idle limit...
	for range 8 {
		h.clock.Add(14 * time.Minute)
		if resp := b.get(bankHost, "/whoami"); resp.StatusCode != http.StatusOK {
			t.Fatalf("active session ended at %s: %d", h.clock.Now(), resp.StatusCode)
		}
	}
	// ...but not past the absolute limit (2h in this harness).
	h.clock.Add(14 * time.Minute)
	if resp := b.get(bankHost, "/whoami"); resp.StatusCode != http.StatusFound {
		t.Fatalf("session outlived its absolute limit: %d", resp.StatusCode)
	}

	b2 := h.client(true)
	b2.mustLogin(bankHost)
	h.clock.Add(15*time.Minute + time.Second)
	if resp := b2.get(bankHost, "/whoami"); resp.StatusCode != http.StatusFound {
		t.Fatalf("idle session still valid: %d", resp.StatusCode)
	}
}

func TestCookieAttributes(t *testing.T) {
	h := newHarness(t)
	resp, _ := h.client(true).apiLogin(bankHost, "alice", alicePassword)
	var raw string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, "__Host-portcullis=") {
			raw = v
		}
	}
	if raw == "" {
		t.Fatal("no session cookie set")
	}
	for _, want := range []string{"Path=/", "Secure", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(raw, want) {
			t.Errorf("cookie %q lacks %s", raw, want)
		}
	}
	if strings.Contains(strings.ToLower(raw), "domain=") {
		t.Errorf("cookie %q has a Domain: __Host- cookies must be host-only", raw)
	}
	if v := sessionCookieValue(t, resp); len(v) < 22 {
		t.Errorf("session token %q has under 128 bits", v)
	}
}

func TestCSRFRejected(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	page := b.get(bankHost, "/.portcullis/login")
	body, _ := io.ReadAll(page.Body)
	token := hiddenValue(string(body), "csrf")
	if token == "" {
		t.Fatal("login form has no CSRF token")
	}
	form := func(csrf string) *http.Request {
		v := url.Values{"username": {"alice"}, "password": {alicePassword}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		req := mustReq(t, http.MethodPost, h.url(bankHost, "/.portcullis/login"), strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	api := func(contentType string) *http.Request {
		req := mustReq(t, http.MethodPost, h.url(bankHost, "/.portcullis/api/v1/login"),
			strings.NewReader(`{"username":"alice","password":"`+alicePassword+`"}`))
		req.Header.Set("Content-Type", contentType)
		return req
	}
	type csrfCase struct {
		name string
		req  *http.Request
		via  *browser
		want int
	}
	tests := []csrfCase{
		{"form without token", form(""), b, http.StatusForbidden},
		{"form with wrong token", form(strings.Repeat("A", len(token))), b, http.StatusForbidden},
		{"form token without its cookie", form(token), h.client(false), http.StatusForbidden},
		{"api as a form post", api("application/x-www-form-urlencoded"), b, http.StatusUnsupportedMediaType},
		{"api as text/plain", api("text/plain"), b, http.StatusUnsupportedMediaType},
	}
	crossSite := api("application/json")
	crossSite.Header.Set("Sec-Fetch-Site", "cross-site")
	tests = append(tests, csrfCase{"api from another site (fetch metadata)", crossSite, b, http.StatusForbidden})
	evilOrigin := form(token)
	evilOrigin.Header.Set("Origin", "https://evil.example")
	tests = append(tests, csrfCase{"form from another origin", evilOrigin, b, http.StatusForbidden})
	upstreamPost := mustReq(t, http.MethodPost, h.url(bankHost, "/transfer"), strings.NewReader("to=mallory"))
	upstreamPost.Header.Set("Sec-Fetch-Site", "cross-site")
	tests = append(tests, csrfCase{"cross-site post to an upstream", upstreamPost, b, http.StatusForbidden})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if resp := tc.via.do(tc.req); resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if resp := b.do(form(token)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("form with the right token: %d, want 303", resp.StatusCode)
	}
	if len(h.bank.requests()) != 0 {
		t.Fatal("a refused request reached the upstream")
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	cases := map[string]*http.Response{
		"login page":       b.get(bankHost, "/.portcullis/login"),
		"unknown gateway":  b.get(bankHost, "/.portcullis/nope"),
		"unknown host":     b.get("nowhere.test", "/"),
		"redirect":         b.get(bankHost, "/whoami"),
		"jwks":             b.get(bankHost, "/.portcullis/jwks.json"),
		"api error":        func() *http.Response { r, _ := b.apiLogin(bankHost, "alice", "wrong-password-x"); return r }(),
		"method not found": b.do(mustReq(t, http.MethodDelete, h.url(bankHost, "/.portcullis/login"), nil)),
	}
	for name, resp := range cases {
		t.Run(name, func(t *testing.T) {
			for _, hdr := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "Strict-Transport-Security", "Cache-Control"} {
				if resp.Header.Get(hdr) == "" {
					t.Errorf("%s missing (status %d)", hdr, resp.StatusCode)
				}
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("nosniff missing")
			}
			if name != "jwks" && resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
	b.mustLogin(bankHost)
	proxied := b.get(bankHost, "/whoami")
	for _, hdr := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Strict-Transport-Security"} {
		if proxied.Header.Get(hdr) == "" {
			t.Errorf("proxied response lacks %s", hdr)
		}
	}
}

func TestUnknownUserAndWrongPasswordLookAlike(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	r1, a1 := b.apiLogin(bankHost, "alice", "not-her-password")
	r2, a2 := b.apiLogin(bankHost, "nobody-here", "not-her-password")
	if r1.StatusCode != r2.StatusCode || a1 != a2 {
		t.Fatalf("answers differ: %d %+v vs %d %+v", r1.StatusCode, a1, r2.StatusCode, a2)
	}
	if a1.Reason != "bad_credentials" || r1.StatusCode != http.StatusUnauthorized {
		t.Fatalf("answer %d %+v", r1.StatusCode, a1)
	}
}

func TestFiveWrongPasswordsLock(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	for i := range 4 {
		if _, a := b.apiLogin(bankHost, "alice", "wrong-password-"+string(rune('a'+i))); a.Reason != "bad_credentials" {
			t.Fatalf("attempt %d: %+v", i+1, a)
		}
	}
	b.mustLogin(bankHost) // a success after 4 failures resets the count
	for i := range 5 {
		if _, a := b.apiLogin(bankHost, "alice", "wrong-again-"+string(rune('a'+i))); a.Reason != "bad_credentials" {
			t.Fatalf("attempt %d: %+v", i+1, a)
		}
	}
	resp, a := b.apiLogin(bankHost, "alice", alicePassword)
	if resp.StatusCode != http.StatusForbidden || a.Reason != "account_locked" {
		t.Fatalf("6th attempt with the right password: %d %+v", resp.StatusCode, a)
	}
	if !strings.Contains(a.Message, "locked") || !strings.Contains(a.Message, "1-800-555-0100") {
		t.Fatalf("locked message does not say what to do: %q", a.Message)
	}
	// A wrong password on a locked profile gets the generic answer.
	if _, a := b.apiLogin(bankHost, "alice", "still-wrong-1"); a.Reason != "bad_credentials" {
		t.Fatalf("wrong password on a locked profile: %+v", a)
	}
}

func TestConcurrentFailuresAllCount(t *testing.T) {
	dirOpt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["lockout"].(map[string]any)["max_consecutive_failures"] = 1000
			cfg["throttle"].(map[string]any)["max_ip_failures"] = 1000
		})
	})
	h := newHarness(t, dirOpt)
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			body := `{"username":"alice","password":"wrong-password-x"}`
			req, _ := http.NewRequest(http.MethodPost, h.url(bankHost, "/.portcullis/api/v1/login"), strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := h.client(false).Do(req)
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	u, err := h.store.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.FailedLogins != 30 {
		t.Fatalf("failures counted %d, want 30", u.FailedLogins)
	}
}

func TestStreamingAndWebSocketPassThrough(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin(bankHost)
	resp := b.get(bankHost, "/stream")
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event %q, %v: streaming response was buffered", line, err)
	}

	u, _ := url.Parse(h.url(bankHost, "/"))
	var cookie string
	for _, c := range b.Jar.Cookies(u) {
		cookie += c.Name + "=" + c.Value + "; "
	}
	ws, conn, br := h.rawExchange("GET /ws HTTP/1.1\r\nHost: " + bankHost + "\r\nCookie: " + cookie +
		"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if ws.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d", ws.StatusCode)
	}
	if got := h.bank.last(t).Header.Get("X-Portcullis-User"); got != "alice" {
		t.Fatalf("websocket upstream user %q", got)
	}
	io.WriteString(conn, "hello\n")
	echo, _ := br.ReadString('\n')
	if echo != "echo: hello\n" {
		t.Fatalf("echo %q", echo)
	}
}

type failingStore struct {
	allStore
	fail bool
	mu   sync.Mutex
}

var errDown = errors.New("store down")

func (f *failingStore) failing() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.fail }

func (f *failingStore) GetSession(ctx context.Context, id string) (store.Session, error) {
	if f.failing() {
		return store.Session{}, errDown
	}
	return f.allStore.GetSession(ctx, id)
}

func (f *failingStore) UserByName(ctx context.Context, name string) (store.User, error) {
	if f.failing() {
		return store.User{}, errDown
	}
	return f.allStore.UserByName(ctx, name)
}

func TestUnreachableStoreDenies(t *testing.T) {
	h := newHarness(t)
	fs := &failingStore{allStore: h.store}
	gw, err := gateway.New(gateway.Config{
		Routes:       []gateway.Route{{Name: "savings", Host: bankHost, PathPrefix: "/", Upstream: mustURL(t, h.bank.URL)}},
		Session:      gateway.SessionConfig{IdleTimeout: time.Hour, MaxLifetime: 2 * time.Hour},
		Password:     credential.Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, MaxConcurrent: 2},
		AssertionTTL: time.Minute,
	}, withParts(fs, gateway.Deps{Signer: h.signer, Policy: h.policy, Signals: h.signals, Now: h.clock.Now}))
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Config.Handler = gw
	b := h.client(true)
	b.mustLogin(bankHost)
	fs.mu.Lock()
	fs.fail = true
	fs.mu.Unlock()
	b2 := h.client(true)
	if resp, a := b2.apiLogin(bankHost, "alice", alicePassword); resp.StatusCode != http.StatusServiceUnavailable || a.Status != "denied" {
		t.Fatalf("login with the store down: %d %+v", resp.StatusCode, a)
	}
	req := mustReq(t, http.MethodGet, h.url(bankHost, "/whoami"), nil)
	req.AddCookie(&http.Cookie{Name: "__Host-portcullis", Value: "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"})
	if resp := b2.do(req); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("proxy with the store down: %d, want 503", resp.StatusCode)
	}
	if len(h.bank.requests()) != 0 {
		t.Fatal("upstream reached while the store was down")
	}
}

func TestSessionEndedElsewhereStopsWorking(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin(bankHost)
	if resp := b.get(bankHost, "/whoami"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Another replica or an administrator ends the login in the store; this
	// instance still has the session cached.
	u, _ := url.Parse(h.url(bankHost, "/"))
	var token string
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "__Host-portcullis" {
			token = c.Value
		}
	}
	sess, err := h.store.GetSession(t.Context(), tokenHash(token))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.DeleteLogin(t.Context(), sess.LoginID); err != nil {
		t.Fatal(err)
	}
	// Busy use must not keep the cached copy alive: by the next write of
	// LastSeen at the latest, the session is gone.
	h.clock.Add(31 * time.Second)
	if resp := b.get(bankHost, "/whoami"); resp.StatusCode != http.StatusFound {
		t.Fatalf("session ended in the store still proxies: %d", resp.StatusCode)
	}
}

func TestProxiedResponsesCarrySecurityHeadersOnce(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin(bankHost)
	resp := b.get(bankHost, "/whoami")
	for _, hdr := range []string{"Strict-Transport-Security", "X-Content-Type-Options", "Content-Security-Policy"} {
		if n := len(resp.Header.Values(hdr)); n != 1 {
			t.Errorf("%s appears %d times: %q", hdr, n, resp.Header.Values(hdr))
		}
	}
}

// A client that goes away before the upstream answers is not an upstream
// failure: one debug line, no error, nothing counted as unavailable.
func TestClientGoneIsNotAnError(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin("bank.test")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url("bank.test", "/slow"), nil)
	if resp, err := b.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the slow request was answered %d", resp.StatusCode)
	}
	// The gateway notices the disconnection on its side shortly after.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.logs.String(), "client went away") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "level=DEBUG msg=\"client went away\"") {
		t.Fatalf("no debug line for the departed client:\n%s", logs)
	}
	for _, bad := range []string{"level=ERROR", policies.ReasonUpstreamUnavailable, policies.ReasonPolicyError} {
		if strings.Contains(logs, bad) {
			t.Errorf("log mentions %q for a departed client:\n%s", bad, logs)
		}
	}
	if n := strings.Count(logs, "client went away"); n != 1 {
		t.Errorf("the departure is logged %d times, want once", n)
	}
}
