package gateway_test

import (
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/store"
)

// proxyPeer is the address the proxy in front of the apps calls the
// forward-auth endpoint from; the default client address, 127.0.0.1, is
// anyone else.
const proxyPeer = "127.0.0.10"

// withForwardAuth trusts proxyPeer to describe requests.
func withForwardAuth() option {
	return func(s *setup) {
		s.cfg.ForwardAuth.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix(proxyPeer + "/32")}
	}
}

// original is the request a browser made to the proxy in front of an app.
type original struct {
	method string
	host   string // with port, as the browser named it
	uri    string
	client string // the browser's address, as the proxy names it
	cookie string // the browser's session cookie value, "" for none
}

// proxyShape is how one proxy makes the forward-auth call for a request.
type proxyShape struct {
	name string
	// callHost is the Host of the call: the auth server's own name, or ""
	// for the original request's host (Caddy keeps it).
	callHost string
	query    string
	// methodHeader and uriHeader name the original method and target.
	methodHeader, uriHeader string
	// signIn is the answer to a request without a session.
	signIn int
}

var proxyShapes = []proxyShape{
	// nginx auth_request: a subrequest to the auth server's own host, with
	// the headers the documented configuration sets.
	{"nginx", "portcullis.internal", "?unauthenticated=401", "X-Original-Method", "X-Original-URI", http.StatusUnauthorized},
	// Traefik forwardAuth: its own Host, every X-Forwarded-* header.
	{"traefik", "portcullis.internal", "", "X-Forwarded-Method", "X-Forwarded-Uri", http.StatusFound},
	// Caddy forward_auth: the original Host kept, the method and target in
	// X-Forwarded-Method and -Uri.
	{"caddy", "", "", "X-Forwarded-Method", "X-Forwarded-Uri", http.StatusFound},
}

// call builds the shape's forward-auth call for o.
func (p proxyShape) call(h *harness, o original) *http.Request {
	host := p.callHost
	if host == "" {
		host, _, _ = strings.Cut(o.host, ":")
	}
	req := mustReq(h.t, http.MethodGet, h.url(host, "/.portcullis/auth"+p.query), nil)
	req.Header.Set(p.methodHeader, o.method)
	req.Header.Set(p.uriHeader, o.uri)
	req.Header.Set("X-Forwarded-Host", o.host)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-For", o.client)
	if p.name == "traefik" {
		req.Header.Set("X-Forwarded-Port", h.port)
		req.Header.Set("X-Real-Ip", o.client)
	}
	return req
}

// ask sends the shape's forward-auth call for o from the peer address.
func (h *harness) ask(shape proxyShape, peer string, o original, edit func(*http.Request)) *http.Response {
	h.t.Helper()
	req := shape.call(h, o)
	// Every proxy passes the browser's headers on: its cookie, and any
	// identity header it tried to forge.
	req.Header.Set("Accept", "text/html")
	req.Header.Set("X-Portcullis-User", "mallory")
	req.Header.Set("X-Remote-User", "mallory")
	if o.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "__Host-portcullis", Value: o.cookie})
	}
	if edit != nil {
		edit(req)
	}
	return h.clientFrom(peer, false).do(req)
}

// aliceSession signs alice in on host and returns her session cookie there.
func (h *harness) aliceSession(host string) string {
	h.t.Helper()
	b := h.client(true)
	b.mustLogin(host)
	return b.session(host)
}

// session is the browser's session cookie on host.
func (b *browser) session(host string) string {
	b.h.t.Helper()
	for _, c := range b.Jar.Cookies(mustURL(b.h.t, b.h.url(host, "/"))) {
		if c.Name == "__Host-portcullis" {
			return c.Value
		}
	}
	b.h.t.Fatal("no session cookie after sign-in")
	return ""
}

// signInURL is where a browser without a session on bank.test is sent to
// come back to uri.
func (h *harness) signInURL(uri string) string {
	return h.url(loginHost, "/.portcullis/authorize?rd="+url.QueryEscape(h.url(bankHost, uri)))
}

func TestForwardAuthByProxy(t *testing.T) {
	h := newHarness(t, withForwardAuth())
	cookie := h.aliceSession(bankHost)
	signedIn := original{method: http.MethodGet, host: bankHost + ":" + h.port, uri: "/accounts?tab=history", client: "127.0.0.1", cookie: cookie}
	for _, shape := range proxyShapes {
		t.Run(shape.name, func(t *testing.T) {
			h.t = t
			defer func() { h.t = t }()

			t.Run("signed in", func(t *testing.T) {
				h.t = t
				resp := h.ask(shape, proxyPeer, signedIn, nil)
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || len(body) != 0 {
					t.Fatalf("signed in: %d %q, want 200 and an empty body", resp.StatusCode, body)
				}
				if got := resp.Header.Get("X-Portcullis-User"); got != "alice" {
					t.Errorf("X-Portcullis-User = %q, want alice (the call's own header is never read)", got)
				}
				if got := resp.Header.Get("X-Portcullis-User-Id"); got != "id-alice" {
					t.Errorf("X-Portcullis-User-Id = %q", got)
				}
				if got := resp.Header.Get("X-Portcullis-Auth-Methods"); got != "pwd" {
					t.Errorf("X-Portcullis-Auth-Methods = %q, want pwd", got)
				}
				claims, err := h.verifier["savings"].Verify(t.Context(), resp.Header.Get("X-Portcullis-Assertion"))
				if err != nil || claims.Username != "alice" {
					t.Fatalf("assertion: %+v %v", claims, err)
				}
				if _, err := h.verifier["carloans"].Verify(t.Context(), resp.Header.Get("X-Portcullis-Assertion")); err == nil {
					t.Error("the assertion for savings verifies for carloans")
				}
				if got := resp.Header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", got)
				}
				if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
					t.Errorf("the call set cookies: %q", got)
				}
			})

			t.Run("HEAD", func(t *testing.T) {
				h.t = t
				resp := h.ask(shape, proxyPeer, signedIn, func(r *http.Request) { r.Method = http.MethodHead })
				if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Portcullis-User") != "alice" {
					t.Fatalf("HEAD: %d %q", resp.StatusCode, resp.Header.Get("X-Portcullis-User"))
				}
			})

			t.Run("no session", func(t *testing.T) {
				h.t = t
				o := signedIn
				o.cookie = ""
				resp := h.ask(shape, proxyPeer, o, nil)
				want := h.signInURL("/accounts?tab=history")
				if resp.StatusCode != shape.signIn || resp.Header.Get("Location") != want {
					t.Fatalf("no session: %d %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), shape.signIn, want)
				}
				if resp.Header.Get("X-Portcullis-User") != "" || resp.Header.Get("X-Portcullis-Assertion") != "" {
					t.Error("identity headers without a session")
				}
				if shape.signIn == http.StatusUnauthorized {
					body, _ := io.ReadAll(resp.Body)
					if !strings.Contains(string(body), `"redirect":"`+want+`"`) {
						t.Errorf("401 body %s does not name the sign-in URL", body)
					}
				}
			})

			t.Run("unknown session", func(t *testing.T) {
				h.t = t
				o := signedIn
				o.cookie = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
				if resp := h.ask(shape, proxyPeer, o, nil); resp.StatusCode != shape.signIn {
					t.Fatalf("unknown session: %d, want %d", resp.StatusCode, shape.signIn)
				}
			})

			t.Run("untrusted peer", func(t *testing.T) {
				h.t = t
				resp := h.ask(shape, "127.0.0.1", signedIn, nil)
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Portcullis-User") != "" {
					t.Fatalf("untrusted peer: %d %q, want 403 without identity", resp.StatusCode, resp.Header.Get("X-Portcullis-User"))
				}
				if logs := h.logs.String(); !strings.Contains(logs, "reason=forward_auth_refused") || !strings.Contains(logs, "peer 127.0.0.1 is not in forward_auth.trusted_networks") {
					t.Errorf("no log line for the refused peer:\n%s", logs)
				}
			})

			t.Run("host is no route", func(t *testing.T) {
				h.t = t
				o := signedIn
				o.host = "evil.test:" + h.port
				if resp := h.ask(shape, proxyPeer, o, nil); resp.StatusCode != http.StatusForbidden {
					t.Fatalf("other host: %d, want 403", resp.StatusCode)
				}
				o.host = loginHost + ":" + h.port
				if resp := h.ask(shape, proxyPeer, o, nil); resp.StatusCode != http.StatusForbidden {
					t.Fatalf("login host: %d, want 403", resp.StatusCode)
				}
			})

			t.Run("policy refuses", func(t *testing.T) {
				h.t = t
				o := signedIn
				o.client = "127.0.0.2" // an anonymous VPN
				resp := h.ask(shape, proxyPeer, o, nil)
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Portcullis-User") != "" {
					t.Fatalf("VPN client: %d %q, want 403 without identity", resp.StatusCode, resp.Header.Get("X-Portcullis-User"))
				}
				if !strings.Contains(h.logs.String(), "reason=ip_anonymous_vpn") {
					t.Error("the refusal is not the policy's ip_anonymous_vpn")
				}
			})
		})
	}
}

// TestForwardAuthStoreDownDenies: a session the store cannot be asked about
// is refused, never let through, with every proxy's call.
func TestForwardAuthStoreDownDenies(t *testing.T) {
	var fs *failingStore
	h := newHarness(t, withForwardAuth(), func(s *setup) {
		s.wrapStore = func(st allStore) allStore { fs = &failingStore{allStore: st}; return fs }
	})
	fs.mu.Lock()
	fs.fail = true
	fs.mu.Unlock()
	o := original{method: http.MethodGet, host: bankHost + ":" + h.port, uri: "/", client: "127.0.0.1",
		cookie: "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}
	for _, shape := range proxyShapes {
		t.Run(shape.name, func(t *testing.T) {
			h.t = t
			resp := h.ask(shape, proxyPeer, o, nil)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Portcullis-User") != "" {
				t.Fatalf("store down: %d, want 503 without identity", resp.StatusCode)
			}
		})
	}
}

// TestForwardAuthPolicyDenyIsForbidden: a product the profile does not
// hold is refused with 403 for every proxy, and a session of another host
// is no session.
func TestForwardAuthPolicyDenyIsForbidden(t *testing.T) {
	h := newHarness(t, withForwardAuth())
	hash, err := h.gw.Hasher().Hash(t.Context(), alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.CreateUser(t.Context(), store.User{ID: "id-bob", Username: "bob", DisplayName: "bob", PasswordHash: hash,
		Products: []string{"carloans"}, CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	b := h.client(true)
	h.registerDevice(b, "id-bob")
	if resp, a := b.apiLogin(bankHost, "bob", alicePassword); resp.StatusCode != http.StatusOK || a.Status != "authenticated" {
		t.Fatalf("bob's login: %d %+v", resp.StatusCode, a)
	}
	o := original{method: http.MethodGet, host: bankHost + ":" + h.port, uri: "/", client: "127.0.0.1", cookie: b.session(bankHost)}
	for _, shape := range proxyShapes {
		h.t = t
		resp := h.ask(shape, proxyPeer, o, nil)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Portcullis-User") != "" {
			t.Fatalf("%s: savings for a carloans customer: %d, want 403 without identity", shape.name, resp.StatusCode)
		}
	}
	// Her bank.test session named for auto.test is no session there.
	o.host = autoHost + ":" + h.port
	if resp := h.ask(proxyShapes[1], proxyPeer, o, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("another host's session: %d, want 302 to sign in", resp.StatusCode)
	}
}

// TestForwardAuthReturnTarget: the sign-in URL returns to the original
// request only when the redirect validation accepts it; a hostile target
// comes back to the host's root.
func TestForwardAuthReturnTarget(t *testing.T) {
	h := newHarness(t, withForwardAuth())
	tests := []struct {
		uri    string
		status int    // of the traefik-shaped call
		back   string // the return path, "" when the call is refused
	}{
		{"/accounts/42?tab=history", http.StatusFound, "/accounts/42?tab=history"},
		{"//evil.test/x", http.StatusFound, "/"},
		{"/\\evil.test", http.StatusFound, "/"},
		{"/%5Cevil.test", http.StatusFound, "/"},
		{"/%2F%2Fevil.test", http.StatusFound, "/"},
		{"/%0d%0aSet-Cookie:%20x=y", http.StatusFound, "/"},
		{"/a%09b", http.StatusFound, "/"},
		{"https://evil.test/x", http.StatusBadRequest, ""},
		{"//user@evil.test/", http.StatusFound, "/"},
		{"@evil.test", http.StatusBadRequest, ""},
		{"/a b", http.StatusBadRequest, ""},
		{"/" + strings.Repeat("a", 9000), http.StatusBadRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.uri[:min(len(tc.uri), 40)], func(t *testing.T) {
			h.t = t
			o := original{method: http.MethodGet, host: bankHost + ":" + h.port, uri: tc.uri, client: "127.0.0.1"}
			resp := h.ask(proxyShapes[1], proxyPeer, o, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.back == "" {
				return
			}
			if got, want := resp.Header.Get("Location"), h.signInURL(tc.back); got != want {
				t.Fatalf("Location %q, want %q", got, want)
			}
		})
	}
}

// TestForwardAuthRefusesUnclearCalls: a call that does not say clearly
// what the original request was is refused, not guessed at.
func TestForwardAuthRefusesUnclearCalls(t *testing.T) {
	h := newHarness(t, withForwardAuth())
	cookie := h.aliceSession(bankHost)
	o := original{method: http.MethodGet, host: bankHost + ":" + h.port, uri: "/accounts", client: "127.0.0.1", cookie: cookie}
	tests := []struct {
		name  string
		shape int
		edit  func(r *http.Request)
		want  int
	}{
		{"both URIs, different", 1, func(r *http.Request) { r.Header.Set("X-Original-URI", "/public") }, http.StatusBadRequest},
		{"both URIs, the same", 1, func(r *http.Request) { r.Header.Set("X-Original-URI", "/accounts") }, http.StatusOK},
		{"both methods, different", 0, func(r *http.Request) { r.Header.Set("X-Forwarded-Method", "POST") }, http.StatusBadRequest},
		{"URI twice", 1, func(r *http.Request) { r.Header.Add("X-Forwarded-Uri", "/public") }, http.StatusBadRequest},
		{"host twice", 1, func(r *http.Request) { r.Header.Add("X-Forwarded-Host", autoHost) }, http.StatusBadRequest},
		{"hosts in a list", 1, func(r *http.Request) { r.Header.Set("X-Forwarded-Host", bankHost+", "+autoHost) }, http.StatusBadRequest},
		{"no URI", 1, func(r *http.Request) { r.Header.Del("X-Forwarded-Uri") }, http.StatusBadRequest},
		{"no method", 0, func(r *http.Request) { r.Header.Del("X-Original-Method") }, http.StatusBadRequest},
		{"lowercase method", 1, func(r *http.Request) { r.Header.Set("X-Forwarded-Method", "get") }, http.StatusBadRequest},
		{"plain http", 1, func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "http") }, http.StatusBadRequest},
		{"no client address", 1, func(r *http.Request) { r.Header.Del("X-Forwarded-For") }, http.StatusBadRequest},
		{"host with a path", 1, func(r *http.Request) { r.Header.Set("X-Forwarded-Host", bankHost+":443/x") }, http.StatusBadRequest},
		{"reserved path", 1, func(r *http.Request) { r.Header.Set("X-Forwarded-Uri", "/.portcullis/login") }, http.StatusForbidden},
		{"unknown answer mode", 1, func(r *http.Request) { r.URL.RawQuery = "unauthenticated=200" }, http.StatusBadRequest},
		{"POST without a session", 1, func(r *http.Request) {
			r.Header.Set("X-Forwarded-Method", http.MethodPost)
			r.Header.Del("Cookie")
		}, http.StatusUnauthorized},
		{"nginx host from the Host header", 0, func(r *http.Request) {
			r.Header.Del("X-Forwarded-Host")
			r.Host = bankHost + ":" + h.port
		}, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			resp := h.ask(proxyShapes[tc.shape], proxyPeer, o, tc.edit)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want != http.StatusOK && resp.Header.Get("X-Portcullis-User") != "" {
				t.Fatal("identity headers on a refusal")
			}
		})
	}
}

// TestForwardAuthOffByDefault: without forward_auth.trusted_networks the
// endpoint refuses every caller, loopback included.
func TestForwardAuthOffByDefault(t *testing.T) {
	h := newHarness(t)
	cookie := h.aliceSession(bankHost)
	o := original{method: http.MethodGet, host: bankHost + ":" + h.port, uri: "/", client: "127.0.0.1", cookie: cookie}
	for _, peer := range []string{"127.0.0.1", proxyPeer} {
		if resp := h.ask(proxyShapes[1], peer, o, nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("from %s: %d, want 403", peer, resp.StatusCode)
		}
	}
}

// TestForwardAuthOwnHostSignIn: without a login host the sign-in URL is
// the original host's own login page with the path to come back to.
func TestForwardAuthOwnHostSignIn(t *testing.T) {
	h := newHarness(t)
	gw, err := gateway.New(gateway.Config{
		Routes:       []gateway.Route{{Name: "savings", Host: bankHost, PathPrefix: "/", Upstream: mustURL(t, h.bank.URL)}},
		Session:      gateway.SessionConfig{IdleTimeout: time.Hour, MaxLifetime: 2 * time.Hour},
		Password:     credential.Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, MaxConcurrent: 2},
		AssertionTTL: time.Minute,
		ForwardAuth:  gateway.ForwardAuthConfig{TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.8/29")}},
	}, withParts(h.store, gateway.Deps{Signer: h.signer, Policy: h.policy, Signals: h.signals, Now: h.clock.Now}))
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Config.Handler = gw
	for _, tc := range []struct{ uri, want string }{
		{"/accounts?tab=1", "/.portcullis/login?rd=" + url.QueryEscape("/accounts?tab=1")},
		{"//evil.test/", "/.portcullis/login?rd=%2F"},
	} {
		o := original{method: http.MethodGet, host: bankHost + ":" + h.port, uri: tc.uri, client: "127.0.0.1"}
		resp := h.ask(proxyShapes[0], proxyPeer, o, nil)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != tc.want {
			t.Fatalf("%s: %d %q, want 401 %q", tc.uri, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
	}
}

func TestForwardAuthTrustedNetworksValidated(t *testing.T) {
	cfg := gateway.Config{
		Routes:       []gateway.Route{{Name: "savings", Host: bankHost, PathPrefix: "/", Upstream: mustURL(t, "http://127.0.0.1:1")}},
		Session:      gateway.SessionConfig{IdleTimeout: time.Hour, MaxLifetime: 2 * time.Hour},
		AssertionTTL: time.Minute,
		ForwardAuth:  gateway.ForwardAuthConfig{TrustedNetworks: []netip.Prefix{{}, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("10.0.0.0/8")}},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid and catch-all networks accepted")
	}
	for _, want := range []string{"forward_auth.trusted_networks[0]: is not", "forward_auth.trusted_networks[1]: 0.0.0.0/0 would trust every address"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "trusted_networks[2]") {
		t.Errorf("10.0.0.0/8 refused: %v", err)
	}
}

// TestForwardAuthConfiguredIdentityHeaders: the configured identity headers
// are in the answer too, with the session's values whatever the call said.
func TestForwardAuthConfiguredIdentityHeaders(t *testing.T) {
	h := newHarness(t, withForwardAuth(), func(s *setup) {
		s.cfg.IdentityHeaders = map[string]string{"X-Bank-User": "username", "X-Bank-Id": "user_id"}
	})
	o := original{method: http.MethodGet, host: bankHost + ":" + h.port, uri: "/", client: "127.0.0.1", cookie: h.aliceSession(bankHost)}
	resp := h.ask(proxyShapes[2], proxyPeer, o, func(r *http.Request) {
		r.Header.Set("X-Bank-User", "mallory")
		r.Header.Set("X-Bank-Id", "id-mallory")
	})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Bank-User") != "alice" || resp.Header.Get("X-Bank-Id") != "id-alice" {
		t.Fatalf("%d X-Bank-User %q X-Bank-Id %q, want 200 alice id-alice", resp.StatusCode, resp.Header.Get("X-Bank-User"), resp.Header.Get("X-Bank-Id"))
	}
	if got := resp.Header.Values("X-Bank-User"); len(got) != 1 {
		t.Fatalf("X-Bank-User %q, want one value", got)
	}
}
