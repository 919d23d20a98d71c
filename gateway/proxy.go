package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway/device"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// headerNamespace is the gateway's own header prefix, in the normalised form
// of normHeader. Nothing a client sends under it reaches an upstream.
const headerNamespace = "x-portcullis-"

// BufferPool is the pool of response copy buffers the gateway's proxy uses
// (32 KiB each, recycled instead of allocated per response).
func BufferPool() httputil.BufferPool { return copyBuffers{} }

type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyBufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(&b) }

// normHeader folds a header name so that every spelling an upstream might
// treat as the same header compares equal: case, and underscores, which
// many servers (CGI, PHP, some proxies) turn into hyphens.
func normHeader(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// stripIdentityHeaders deletes from h every header in the gateway's
// namespace and every configured identity header, in every spelling.
func (s *Server) stripIdentityHeaders(h http.Header) {
	for name := range h {
		if len(name) >= len(headerNamespace) && headerFold(name[:len(headerNamespace)], headerNamespace) {
			delete(h, name)
			continue
		}
		for _, strip := range s.stripHeaders {
			if len(name) == len(strip) && headerFold(name, strip) {
				delete(h, name)
			}
		}
	}
}

// headerFold reports whether header name a equals the normalised name b
// (see normHeader) without allocating.
func headerFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}

type routeKey struct{}

// gatewayCookies are the cookies the gateway sets, which never reach an
// upstream: a registered device's secret no more than a session's.
var gatewayCookies = []string{session.Cookie, session.PendingCookie, web.CSRFCookie, device.Cookie}

func (s *Server) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:       s.rewrite,
		Transport:     observedTransport{s.transport},
		BufferPool:    BufferPool(),
		ErrorHandler:  s.proxyError,
		ErrorLog:      nil,
		FlushInterval: 100 * time.Millisecond,
		ModifyResponse: func(resp *http.Response) error {
			setUpstreamSecurityHeaders(resp.Header)
			return nil
		},
	}
}

// rewrite builds the upstream request. Hop-by-hop headers, including any the
// client named in Connection, are already gone from pr.Out; the gateway's
// headers are set last so nothing can remove them.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	rt := pr.In.Context().Value(routeKey{}).(*proxyTarget)
	pr.SetURL(rt.route.Upstream)
	pr.Out.Host = pr.In.Host
	s.stripIdentityHeaders(pr.Out.Header)
	if rt.client.IsValid() {
		pr.Out.Header.Set("X-Forwarded-For", rt.client.String())
	} else {
		// Unknown (the policy let it through): pass on no address rather
		// than the unreadable header.
		pr.Out.Header.Del("X-Forwarded-For")
	}
	pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
	pr.Out.Header["X-Forwarded-Proto"] = httpsValue
	// The gateway's cookies are its own; the upstream never sees them.
	removeCookie(pr.Out, gatewayCookies...)
	s.setIdentityHeaders(pr.Out.Header, rt.id, rt.token)
}

// setIdentityHeaders sets the identity hand-off on h: the gateway's own
// headers, the signed assertion token and the configured identity headers.
func (s *Server) setIdentityHeaders(h http.Header, id session.Identity, token string) {
	h.Set(assertion.HeaderUser, id.User.Username)
	h.Set(assertion.HeaderUserID, id.User.ID)
	h.Set(assertion.HeaderAuthMethods, strings.Join(id.Session.Methods, ","))
	h.Set(assertion.HeaderAssertion, token)
	for name, field := range s.cfg.IdentityHeaders {
		switch field {
		case "username":
			h.Set(name, id.User.Username)
		case "user_id":
			h.Set(name, id.User.ID)
		}
	}
}

// observedTransport reports each upstream response to its route's
// observer (Deps.UpstreamObserver), when it has one.
type observedTransport struct{ next http.RoundTripper }

func (t observedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pt, _ := req.Context().Value(routeKey{}).(*proxyTarget)
	if pt == nil || pt.route.observe == nil {
		return t.next.RoundTrip(req)
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	status := 0
	switch {
	case err == nil:
		status = resp.StatusCode
	case req.Context().Err() != nil:
		return resp, err // the client went away: not the upstream's failure
	}
	pt.route.observe(status, time.Since(start))
	return resp, err
}

// proxyTarget travels from the access check to rewrite in the request context.
type proxyTarget struct {
	route  *Route
	id     session.Identity
	token  string
	client netip.Addr // as the access check judged it
}

// assertionFor returns a signed assertion for the session and route, reused
// while it has at least half its lifetime left so that signing (ECDSA) is not
// on every request's path.
func (s *Server) assertionFor(id session.Identity, rt *Route) (string, error) {
	// A session's ID fixes its user, methods and auth time; the username
	// is the one claim that can change under it, so it is in the key and
	// a renamed profile never gets an assertion signed for the old name.
	key := id.Session.ID + "\x00" + rt.Name + "\x00" + id.User.Username
	if tok, ok := s.assertions.Get(key); ok {
		return tok, nil
	}
	tok, err := s.signer.Sign(assertion.Claims{
		Subject:     id.User.ID,
		Audience:    rt.Name,
		Username:    id.User.Username,
		AuthTime:    id.Session.AuthTime,
		AuthMethods: id.Session.Methods,
	})
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	s.assertions.Add(key, tok)
	return tok, nil
}

// removeCookie drops the named cookies from the request's Cookie headers,
// keeping every other pair as the client sent it. It works on the header
// text so the common case (nothing else to rewrite) costs no parse.
func removeCookie(r *http.Request, names ...string) {
	values := r.Header["Cookie"]
	found := false
	for _, v := range values {
		for _, n := range names {
			if strings.Contains(v, n) {
				found = true
			}
		}
	}
	if !found {
		return
	}
	var kept []string
	for _, v := range values {
		for pair := range strings.SplitSeq(v, ";") {
			// Trimmed as net/http's cookie parser trims, so that what it
			// would reject before it still rejects after.
			pair = textproto.TrimString(pair)
			name, _, _ := strings.Cut(pair, "=")
			if pair == "" || slices.Contains(names, textproto.TrimString(name)) {
				continue
			}
			kept = append(kept, pair)
		}
	}
	if len(kept) == 0 {
		delete(r.Header, "Cookie")
		return
	}
	r.Header["Cookie"] = []string{strings.Join(kept, "; ")}
}

func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	s.site.SetPageHeaders(w.Header())
	status := http.StatusBadGateway
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		status = http.StatusGatewayTimeout
	}
	s.site.RenderError(w, r, &web.Error{Status: status, Reason: policies.ReasonUpstreamUnavailable,
		Message: "This service is temporarily unavailable. Please try again shortly.",
		Err:     fmt.Errorf("proxy to upstream: %w", err)})
}

// NewUpstreamTransport returns a transport configured as the gateway's own
// for reaching upstream apps: no environment proxy, large idle pools,
// bounded dial, TLS and response-header times.
func NewUpstreamTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never the environment's proxy for upstreams
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
}

// setUpstreamSecurityHeaders adds the gateway's baseline protections to an
// upstream's response without overriding a policy the app set itself.
func setUpstreamSecurityHeaders(h http.Header) {
	h["Strict-Transport-Security"] = hstsValue
	h["X-Content-Type-Options"] = nosniffValue
	if len(h["Content-Security-Policy"]) == 0 {
		h["Content-Security-Policy"] = upstreamCSPValue
	}
	if len(h["Referrer-Policy"]) == 0 {
		h["Referrer-Policy"] = referrerValue
	}
}

// Constant header values, shared by every response and proxied request
// instead of allocated each time. Each has len == cap, so an append by
// anyone makes a copy rather than writing into the shared array.
var (
	hstsValue        = []string{web.HSTS}
	nosniffValue     = []string{"nosniff"}
	upstreamCSPValue = []string{"frame-ancestors 'self'; object-src 'none'; base-uri 'self'"}
	referrerValue    = []string{"strict-origin-when-cross-origin"}
	httpsValue       = []string{"https"}
)
