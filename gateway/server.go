// Package gateway is Portcullis's HTTP surface: routing by host and path,
// the reverse proxy with its identity hand-off, the sign-in flows and their
// JSON API, sessions, cookies and CSRF defence, and the pages people see.
package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/policies"
)

const (
	// reservedPrefix is the gateway's own path on every routed host.
	reservedPrefix = "/.portcullis/"
	apiPrefix      = reservedPrefix + "api/v1/"
	hsts           = "max-age=63072000; includeSubDomains"
)

// Deps are the collaborators a Server needs.
type Deps struct {
	Store  Store
	Signer *assertion.Signer
	// Policy decides every login step and every proxied request.
	Policy Decider
	// Signals are the risk signals about client addresses; nil means none
	// are checked and the policies see unchecked addresses.
	Signals IPSignals
	// Phones reads and types phone numbers for the security-code flows;
	// nil means no number can be checked, and the policies refuse to send.
	Phones Phones
	Logger *slog.Logger
	// Now and Rand default to the real clock and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
}

// Server is the gateway. Create it with New; it is an http.Handler.
type Server struct {
	cfg          Config
	store        Store
	signer       *assertion.Signer
	policy       Decider
	signals      IPSignals
	phones       Phones
	log          *slog.Logger
	now          func() time.Time
	rand         io.Reader
	hasher       *Hasher
	routes       map[string][]*Route // by host, longest prefix first
	stripHeaders []string            // normalised names
	transport    *http.Transport
	proxy        *httputil.ReverseProxy
	crossOrigin  *http.CrossOriginProtection
	pageCSP      string
	mux          *http.ServeMux
	// idCache keeps recently used sessions with their users so that the
	// proxy does not read the store on every request. Entries live briefly
	// (revocation on this instance removes them at once).
	idCache *expirable.LRU[string, identity]
	// assertions keeps signed assertions per session and route for half
	// their lifetime.
	assertions *expirable.LRU[string, string]
}

// New validates the configuration and builds a Server.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	if deps.Store == nil || deps.Signer == nil || deps.Policy == nil {
		return nil, errors.New("gateway: a store, a signer and a policy are required")
	}
	s := &Server{
		cfg:         cfg,
		store:       deps.Store,
		signer:      deps.Signer,
		policy:      deps.Policy,
		signals:     deps.Signals,
		phones:      deps.Phones,
		log:         deps.Logger,
		now:         deps.Now,
		rand:        deps.Rand,
		routes:      map[string][]*Route{},
		transport:   NewUpstreamTransport(),
		crossOrigin: http.NewCrossOriginProtection(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if cfg.Password.MemoryKiB == 0 {
		cfg.Password = DefaultPasswordParams()
		s.cfg.Password = cfg.Password
	}
	h, err := NewHasher(cfg.Password, s.rand)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.hasher = h
	for i := range cfg.Routes {
		rt := &cfg.Routes[i]
		s.routes[rt.Host] = append(s.routes[rt.Host], rt)
	}
	for _, rts := range s.routes {
		sort.SliceStable(rts, func(i, j int) bool { return len(rts[i].PathPrefix) > len(rts[j].PathPrefix) })
	}
	for _, name := range cfg.StripHeaders {
		s.stripHeaders = append(s.stripHeaders, normHeader(name))
	}
	for name := range cfg.IdentityHeaders {
		s.stripHeaders = append(s.stripHeaders, normHeader(name))
	}
	s.pageCSP = pageCSP(s.hosts())
	s.idCache = expirable.NewLRU[string, identity](10000, nil, 5*time.Second)
	s.assertions = expirable.NewLRU[string, string](10000, nil, cfg.AssertionTTL/2)
	s.proxy = s.newProxy()
	s.mux = s.routesMux()
	return s, nil
}

// Hasher returns the server's password hasher, for tools that create users.
func (s *Server) Hasher() *Hasher { return s.hasher }

// hosts returns every host name the gateway serves, sorted.
func (s *Server) hosts() []string {
	set := map[string]bool{}
	for h := range s.routes {
		set[h] = true
	}
	if s.cfg.LoginHost != "" {
		set[s.cfg.LoginHost] = true
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

func (s *Server) knownHost(host string) bool {
	_, ok := s.routes[host]
	return ok || (host != "" && host == s.cfg.LoginHost)
}

// servedPort is the port browsers reach the gateway's hosts on: the
// configured public port, else the port of the request's Host (443 when it
// names none). 0 when the Host's port is not a port, so nothing matches.
func (s *Server) servedPort(r *http.Request) int {
	if s.cfg.PublicPort != 0 {
		return s.cfg.PublicPort
	}
	_, p, err := net.SplitHostPort(r.Host)
	if err != nil {
		return 443
	}
	n, ok := parsePort(p)
	if !ok {
		return 0
	}
	return n
}

func (s *Server) clientIP(r *http.Request) netip.Addr {
	return ClientIP(r, s.cfg.TrustedProxies)
}

// hostName returns the host of a Host header without port, lowercased.
func hostName(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// hostPort returns the ":port" part of a Host header, or "".
func hostPort(hostport string) string {
	if _, p, err := net.SplitHostPort(hostport); err == nil && p != "" && p != "443" {
		return ":" + p
	}
	return ""
}

// pageCSP is the Content-Security-Policy of the gateway's own pages. Forms
// may go to the gateway's other hosts because sign-in ends with a redirect
// to the host the person came from, and browsers hold redirects after a form
// submission to form-action.
func pageCSP(hosts []string) string {
	formAction := "'self'"
	for _, h := range hosts {
		formAction += " https://" + h + ":*"
	}
	return "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action " + formAction +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// ServeHTTP routes a request: the reserved prefix to the gateway itself,
// everything else to the matching route's upstream.
//
// Responses the gateway writes itself get the page headers (CSP, HSTS,
// nosniff, no-store, ...); proxied responses get the upstream's headers plus
// the baseline in setUpstreamSecurityHeaders, set once.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if strings.HasPrefix(r.URL.Path, reservedPrefix) || r.URL.Path == strings.TrimSuffix(reservedPrefix, "/") {
		s.setPageHeaders(h)
		if err := s.crossOrigin.Check(r); err != nil {
			s.renderError(w, r, errForbidden("cross_origin", err))
			return
		}
		s.mux.ServeHTTP(w, r)
		return
	}
	host := hostName(r.Host)
	rt := s.route(host, r.URL.Path)
	if rt == nil {
		s.setPageHeaders(h)
		if host != "" && host == s.cfg.LoginHost {
			http.Redirect(w, r, reservedPrefix+"login", http.StatusFound)
			return
		}
		s.renderError(w, r, &Error{Status: http.StatusNotFound, Reason: "not_found", Message: msgNotFound})
		return
	}
	if err := s.serveProxy(w, r, rt); err != nil {
		s.setPageHeaders(h)
		s.renderError(w, r, err)
	}
}

func (s *Server) setPageHeaders(h http.Header) {
	h.Set("Strict-Transport-Security", hsts)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", s.pageCSP)
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
}

func (s *Server) route(host, path string) *Route {
	for _, rt := range s.routes[host] {
		if pathHasPrefix(path, rt.PathPrefix) {
			return rt
		}
	}
	return nil
}

// pathHasPrefix matches whole path segments: "/app" matches "/app" and
// "/app/x" but not "/apple".
func pathHasPrefix(path, prefix string) bool {
	if prefix == "/" || path == prefix {
		return true
	}
	p := strings.TrimSuffix(prefix, "/")
	return strings.HasPrefix(path, p) && (len(path) == len(p) || path[len(p)] == '/')
}

// serveProxy forwards a request for a route when the person is signed in,
// and otherwise sends them to sign in.
func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request, rt *Route) error {
	if err := s.crossOrigin.Check(r); err != nil {
		return errForbidden("cross_origin", err)
	}
	id, ok, err := s.currentIdentity(r)
	if err != nil {
		return errUnavailable(err)
	}
	if !ok {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return &Error{Status: http.StatusUnauthorized, Reason: "unauthenticated", Message: msgSessionEnded}
		}
		s.setPageHeaders(w.Header())
		http.Redirect(w, r, s.signInURL(r), http.StatusFound)
		return nil
	}
	client := s.clientIP(r)
	if err := s.checkAccess(w, r, rt, id, client); errors.Is(err, errHandled) {
		return nil
	} else if err != nil {
		return err
	}
	token, err := s.assertionFor(id, rt)
	if err != nil {
		return errUnavailable(err)
	}
	ctx := context.WithValue(r.Context(), routeKey{}, &proxyTarget{route: rt, id: id, token: token, client: client})
	s.proxy.ServeHTTP(w, r.WithContext(ctx))
	return nil
}

// checkAccess asks the access point whether this session may make this
// request. A session the policy calls ended is ended here too, and the person
// is sent to sign in again. The client address's risk signals are judged on
// every request, not only at login: a refusal for the network (ip_*) is a
// 403 asking the person to move to a private network, and the session is
// kept, so it works again once they do.
func (s *Server) checkAccess(w http.ResponseWriter, r *http.Request, rt *Route, id identity, client netip.Addr) error {
	sess := id.Session
	d := s.policy.Decide(r.Context(), policies.Input{
		Point:   policies.PointAccess,
		Now:     s.now().Unix(),
		Client:  s.clientFacts(r.Context(), client),
		Account: accountFacts(id.User, true),
		Request: policies.Request{Route: rt.Name, Host: rt.Host, Path: r.URL.Path, Method: r.Method},
		Session: &policies.Session{Methods: sess.Methods, AuthTime: sess.AuthTime.Unix(),
			LastSeen: sess.LastSeen.Unix(), Created: sess.AuthTime.Unix()},
	})
	if d.Allow {
		return nil
	}
	switch d.Reason {
	case "session_idle", "session_expired", "no_session":
		if err := s.endLogin(r.Context(), sess.LoginID); err != nil {
			return errUnavailable(err)
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.setPageHeaders(w.Header())
			http.Redirect(w, r, s.signInURL(r), http.StatusFound)
			return errHandled
		}
	}
	return s.denial(d)
}

// signInURL is where a request without a session is sent: the login host's
// authorize step when there is a login host (which signs in once for every
// host), otherwise this host's login page.
func (s *Server) signInURL(r *http.Request) string {
	host := hostName(r.Host)
	if s.cfg.LoginHost == "" || s.cfg.LoginHost == host {
		return reservedPrefix + "login?rd=" + url.QueryEscape(r.URL.RequestURI())
	}
	back := "https://" + r.Host + r.URL.RequestURI()
	return "https://" + s.cfg.LoginHost + hostPort(r.Host) + reservedPrefix + "authorize?rd=" + url.QueryEscape(back)
}

// Close releases the server's idle upstream connections.
func (s *Server) Close() {
	s.transport.CloseIdleConnections()
}
