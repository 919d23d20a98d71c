// Package gateway is Portcullis's HTTP surface: it routes each request by
// host and path either to the gateway's own flows under /.portcullis/ (each
// flow a room of its own: gateway/login today) or through the reverse proxy
// to an upstream app, with the identity hand-off and an access decision per
// request. The shared HTTP conventions are in gateway/web, sessions in
// gateway/session, credentials in gateway/credential, the store contract in
// gateway/store.
package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/device"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/login"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/passkey"
	"github.com/portcullis/portcullis/gateway/selfservice"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/settings"
	"github.com/portcullis/portcullis/gateway/stepup"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// reservedPrefix is the gateway's own path on every routed host.
const reservedPrefix = web.Prefix

// Deps are the collaborators a Server needs. Each store part may come from a
// different store.
type Deps struct {
	Users    store.Users
	Hits     store.Hits
	Sessions store.Sessions
	Records  store.Records
	Devices  store.Devices
	Factors  store.Factors
	// Sender delivers security codes and notices; nil sends nothing,
	// and a step-up that needs a code cannot pass.
	Sender notify.Sender
	// CodeKey is the server key security codes are sealed under (at
	// least 32 bytes; replicas share it).
	CodeKey []byte
	Signer  *assertion.Signer
	// Policy decides every login step and every proxied request.
	Policy Decider
	// Signals are the risk signals about client addresses; nil means none
	// are checked and the policies see unchecked addresses.
	Signals facts.IPSignals
	// Phones reads and types phone numbers for the security-code flows;
	// nil means no number can be checked, and the policies refuse to send.
	Phones facts.Phones
	// Directory is where customer records come from, for creating a
	// profile and adding an account to one (plugins/directory); nil means
	// neither is offered online, and their pages say so. A Directory
	// needs Passwords too.
	Directory selfservice.Directory
	// Passwords measures a new password for the policies; nil means the
	// gateway's own credential.PasswordChecker, with Config's blocklist
	// and the hashing bounds (Server.PasswordChecker).
	Passwords settings.PasswordChecker
	// UpstreamObserver, when set, is asked once per route, at start, for
	// the function that records each of the route's upstream responses:
	// its status (0 when the upstream could not be reached) and the time
	// to its headers. It runs on the request's path and must be quick.
	UpstreamObserver func(route string) func(status int, took time.Duration)
	// Invalidator tells the other replicas which cached sessions to drop
	// (plugins/store/redis); nil for a single instance. With one, run
	// Server.Sessions().Watch.
	Invalidator session.Invalidator
	Logger      *slog.Logger
	// Now and Rand default to the real clock and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
}

// Decider answers a decision point from the policies. It never allows on a
// failure: an evaluation error, an undefined decision or a panic is a deny
// with reason policy_error. *policies.Engine implements it.
type Decider interface {
	Decide(ctx context.Context, in policies.Input) policies.Decision
	// IPFailureWindow is the window in which the policy counts failed
	// logins per client address (the credential-stuffing throttle).
	IPFailureWindow() time.Duration
	// MaxConsecutiveFailures is the number of wrong passwords in a row
	// that locks a profile.
	MaxConsecutiveFailures() int
	// SendLimitWindows are the windows security-code sends are counted
	// in, per user, number, address and calling code.
	SendLimitWindows() policies.SendLimitWindows
	// StepUpFailureWindow is the window in which wrong step-up answers
	// are counted per account.
	StepUpFailureWindow() time.Duration
	// MaxConsecutiveStepUpFailures is the number of step-up answers in a
	// row that do not pass that locks a profile.
	MaxConsecutiveStepUpFailures() int
	// EnrolmentRules are the enrolment settings applied in Go: the window
	// identity proofs are counted in and the eligible account statuses.
	EnrolmentRules() policies.EnrolmentRules
	// RecoveryRules are the recovery settings applied in Go: the window
	// identity proofs are counted in, whether a password recovery asks the
	// identity questions, the methods offered and the code lifetime.
	RecoveryRules() policies.RecoveryRules
	// PasswordRules are the length rules for a new password.
	PasswordRules() policies.PasswordRules
}

// Server is the gateway. Create it with New; it is an http.Handler.
type Server struct {
	cfg          Config
	site         *web.Site
	sessions     *session.Manager
	facts        *facts.Source
	signer       *assertion.Signer
	policy       Decider
	log          *slog.Logger
	now          func() time.Time
	hasher       *credential.Hasher
	passwords    *credential.PasswordChecker
	routes       map[string][]*Route // by host, longest prefix first
	stripHeaders []string            // normalised names
	// forwardTrust are the networks whose X-Forwarded-For a forward-auth
	// call is read with: the trusted proxies and the forward-auth peers.
	forwardTrust []netip.Prefix
	transport    *http.Transport
	proxy        *httputil.ReverseProxy
	crossOrigin  *http.CrossOriginProtection
	mux          *http.ServeMux
	selfservice  *selfservice.Room
	// assertions keeps signed assertions per session and route for half
	// their lifetime.
	assertions *expirable.LRU[string, string]
}

// New validates the configuration and builds a Server.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.Routes = slices.Clone(cfg.Routes) // the server's own: the caller's stay as they were
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	if deps.Users == nil || deps.Hits == nil || deps.Sessions == nil || deps.Records == nil ||
		deps.Devices == nil || deps.Factors == nil || deps.Signer == nil || deps.Policy == nil {
		return nil, errors.New("gateway: the user, hit, session, record, device and factor stores, a signer and a policy are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	if cfg.Password.MemoryKiB == 0 {
		cfg.Password = credential.DefaultParams()
	}
	h, err := credential.NewHasher(cfg.Password, deps.Rand)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	var breached credential.Blocklist
	if cfg.PasswordBlocklist != "" {
		if breached, err = credential.LoadBlocklist(cfg.PasswordBlocklist); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	// Scoring shares the hashing bounds: it is the other CPU-heavy step of
	// setting a password.
	checker, err := credential.NewPasswordChecker(credential.CheckerConfig{Breached: breached,
		MaxConcurrent: cfg.Password.MaxConcurrent, QueueTimeout: cfg.Password.QueueTimeout, Nice: cfg.Password.Nice})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if deps.Passwords == nil {
		deps.Passwords = checker
	}
	codes, err := credential.NewCodes(deps.CodeKey, deps.Rand)
	if err != nil {
		return nil, fmt.Errorf("gateway: security codes: %w", err)
	}
	sender := deps.Sender
	if sender == nil {
		sender = notify.Router{}
	}
	org := cfg.Organisation
	if org == "" {
		org = "Portcullis"
	}
	s := &Server{
		cfg:         cfg,
		signer:      deps.Signer,
		policy:      deps.Policy,
		log:         deps.Logger,
		now:         deps.Now,
		hasher:      h,
		passwords:   checker,
		routes:      map[string][]*Route{},
		transport:   NewUpstreamTransport(),
		crossOrigin: http.NewCrossOriginProtection(),
		facts:       &facts.Source{Signals: deps.Signals, Phones: deps.Phones, Log: deps.Logger},
	}
	for i := range cfg.Routes {
		rt := &cfg.Routes[i]
		if deps.UpstreamObserver != nil {
			rt.observe = deps.UpstreamObserver(rt.Name)
		}
		s.routes[rt.Host] = append(s.routes[rt.Host], rt)
	}
	hosts := make([]string, 0, len(s.routes))
	for host, rts := range s.routes {
		hosts = append(hosts, host)
		sort.SliceStable(rts, func(i, j int) bool { return len(rts[i].PathPrefix) > len(rts[j].PathPrefix) })
	}
	for _, name := range cfg.StripHeaders {
		s.stripHeaders = append(s.stripHeaders, normHeader(name))
	}
	for name := range cfg.IdentityHeaders {
		s.stripHeaders = append(s.stripHeaders, normHeader(name))
	}
	s.forwardTrust = append(slices.Clip(cfg.TrustedProxies), cfg.ForwardAuth.TrustedNetworks...)
	s.site = web.NewSite(web.SiteConfig{Hosts: hosts, LoginHost: cfg.LoginHost, PublicPort: cfg.PublicPort,
		TrustedProxies: cfg.TrustedProxies, SupportPhone: cfg.SupportPhone}, deps.Logger, deps.Rand)
	if err := s.site.UseTheme(cfg.Theme); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.sessions = session.New(session.Deps{Sessions: deps.Sessions, Records: deps.Records, Users: deps.Users,
		IdleTimeout: cfg.Session.IdleTimeout, Invalidator: deps.Invalidator, Log: deps.Logger, Now: deps.Now, Rand: deps.Rand})
	// The flows change profiles and devices through the manager, so that
	// every replica drops the sessions a change concerns.
	deps.Users, deps.Devices = s.sessions.RevokingUsers(deps.Users), s.sessions.RevokingDevices(deps.Devices)
	s.assertions = expirable.NewLRU[string, string](10000, nil, cfg.AssertionTTL/2)
	s.proxy = s.newProxy()
	s.mux = http.NewServeMux()
	s.mux.Handle("GET "+reservedPrefix+"jwks.json", s.signer.JWKSHandler())
	s.mux.Handle("GET "+reservedPrefix+"static/", s.site.Static())
	s.mux.Handle("GET "+forwardAuthPath, s.site.Handle(s.serveForwardAuth))
	s.mux.Handle(reservedPrefix, s.site.Handle(func(w http.ResponseWriter, r *http.Request) error {
		return web.NotFound()
	}))
	devices := device.New(deps.Devices, deps.Now, deps.Rand)
	notices := &notify.Notices{Sender: sender, Org: org, Log: deps.Logger}
	login.New(login.Deps{Site: s.site, Sessions: s.sessions, Users: deps.Users, Factors: deps.Factors, Hits: deps.Hits,
		Devices: devices, Notices: notices, Hasher: h, Policy: deps.Policy, Facts: s.facts,
		MaxLifetime: cfg.Session.MaxLifetime, Log: deps.Logger, Now: deps.Now,
		Routed: func(host, path string) bool {
			return strings.HasPrefix(path, reservedPrefix) || s.route(host, path) != nil
		},
	}).Register(s.mux)
	settings.New(settings.Deps{Site: s.site, Sessions: s.sessions, Users: deps.Users, Passwords: deps.Passwords,
		HandleKey: handleKey(deps.CodeKey), Devices: devices, Factors: deps.Factors,
		Notices: notices, Facts: s.facts, Policy: deps.Policy, TOTP: totpStore{deps.Factors, deps.Records}, Hasher: h,
		Org: org, Log: deps.Logger, Now: deps.Now, Rand: deps.Rand,
	}).Register(s.mux)
	if cfg.LoginHost != "" {
		keys, err := credential.NewPasskeys(credential.PasskeyConfig{RPID: cfg.LoginHost, Port: cfg.PublicPort, DisplayName: org}, deps.Rand)
		if err != nil {
			return nil, fmt.Errorf("gateway: passkeys: %w", err)
		}
		passkey.New(passkey.Deps{Site: s.site, Sessions: s.sessions, Passkeys: keys, Users: deps.Users, Factors: deps.Factors,
			Records: deps.Records, Hits: deps.Hits, Devices: devices, Notices: notices, Facts: s.facts, Policy: deps.Policy,
			MaxLifetime: cfg.Session.MaxLifetime, Log: deps.Logger, Now: deps.Now,
		}).Register(s.mux)
	}
	enrol, err := selfservice.New(selfservice.Deps{Site: s.site, Sessions: s.sessions, Directory: deps.Directory,
		Passwords: deps.Passwords, Users: deps.Users, Records: deps.Records, Hits: deps.Hits, Codes: codes, Hasher: h,
		Sender: sender, Notices: notices, Facts: s.facts, Policy: deps.Policy, IdentityKey: identityKey(deps.CodeKey), Org: org,
		Log: deps.Logger, Now: deps.Now, Rand: deps.Rand,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	enrol.Register(s.mux)
	s.selfservice = enrol
	stepup.New(stepup.Deps{Site: s.site, Sessions: s.sessions, Devices: devices,
		Users: stepupUsers{deps.Users, deps.Factors}, Records: deps.Records, Hits: deps.Hits, Codes: codes, Hasher: h,
		Sender: sender, Notices: notices, Facts: s.facts, Policy: deps.Policy, Org: org, Log: deps.Logger, Now: deps.Now,
	}).Register(s.mux)
	return s, nil
}

// handleKey derives the key that names listed sessions from the server key
// (replicas share it), apart from the key codes are sealed under.
func handleKey(serverKey []byte) []byte {
	mac := hmac.New(sha256.New, serverKey)
	mac.Write([]byte("portcullis session handles"))
	return mac.Sum(nil)
}

// identityKey is the key enrolment's identity counters are keyed under,
// derived from the code key so that replicas share it and it is used for
// one purpose only.
func identityKey(codeKey []byte) []byte {
	mac := hmac.New(sha256.New, codeKey)
	mac.Write([]byte("portcullis enrolment identity key v1"))
	return mac.Sum(nil)
}

// WaitNotices waits for the messages the gateway sends in the background
// (the username reminder of an enrolment for an identity that has a
// profile, recovery codes and notices) to go.
func (s *Server) WaitNotices() { s.selfservice.Wait() }

// stepupUsers joins the profile and factor stores for the step-up room.
type stepupUsers struct {
	store.Users
	store.Factors
}

// totpStore joins the factor and record stores for authenticator enrolment.
type totpStore struct {
	store.Factors
	store.Records
}

// Hasher returns the server's password hasher, for tools that create users.
func (s *Server) Hasher() *credential.Hasher { return s.hasher }

// PasswordChecker returns the server's password checker, which measures a
// new password (PasswordFacts) for the policy's password rules, with the
// configured blocklist.
func (s *Server) PasswordChecker() *credential.PasswordChecker { return s.passwords }

// Sessions returns the server's session manager, for the admin API: ending
// a session through it drops the cached copies at once, on this instance
// and, with an Invalidator, on every replica.
func (s *Server) Sessions() *session.Manager { return s.sessions }

// ServeHTTP routes a request: the reserved prefix to the gateway itself,
// everything else to the matching route's upstream.
//
// Responses the gateway writes itself get the page headers (CSP, HSTS,
// nosniff, no-store, ...); proxied responses get the upstream's headers plus
// the baseline in setUpstreamSecurityHeaders, set once.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if strings.HasPrefix(r.URL.Path, reservedPrefix) || r.URL.Path == strings.TrimSuffix(reservedPrefix, "/") {
		s.site.SetPageHeaders(h)
		if err := s.crossOrigin.Check(r); err != nil {
			s.site.RenderError(w, r, web.Forbidden(policies.ReasonCrossOrigin, err))
			return
		}
		s.mux.ServeHTTP(w, r)
		return
	}
	host := web.HostName(r.Host)
	rt := s.route(host, r.URL.Path)
	if rt == nil {
		s.site.SetPageHeaders(h)
		if host != "" && host == s.cfg.LoginHost {
			http.Redirect(w, r, reservedPrefix+"login", http.StatusFound)
			return
		}
		s.site.RenderError(w, r, web.NotFound())
		return
	}
	if err := s.serveProxy(w, r, rt); err != nil {
		s.site.SetPageHeaders(h)
		s.site.RenderError(w, r, err)
	}
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
		return web.Forbidden(policies.ReasonCrossOrigin, err)
	}
	id, ok, err := s.sessions.Current(r)
	if err != nil {
		return web.Unavailable(err)
	}
	if !ok {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonUnauthenticated, Message: web.MsgSessionEnded}
		}
		s.site.SetPageHeaders(w.Header())
		http.Redirect(w, r, s.site.SignInURL(r), http.StatusFound)
		return nil
	}
	client := s.site.ClientIP(r)
	if err := s.checkAccess(w, r, rt, id, client); errors.Is(err, web.ErrHandled) {
		return nil
	} else if err != nil {
		return err
	}
	token, err := s.assertionFor(id, rt)
	if err != nil {
		return web.Unavailable(err)
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
func (s *Server) checkAccess(w http.ResponseWriter, r *http.Request, rt *Route, id session.Identity, client netip.Addr) error {
	d, ended, err := s.decideAccess(r.Context(), rt, id, client, r.URL.Path, r.Method)
	switch {
	case err != nil:
		return err
	case d.Allow:
		return nil
	case ended:
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.site.SetPageHeaders(w.Header())
			http.Redirect(w, r, s.site.SignInURL(r), http.StatusFound)
			return web.ErrHandled
		}
	}
	return s.site.Denial(d)
}

// decideAccess asks the access point whether the session may make a request
// for path with method on the route. ended reports a refusal because the
// session is over (idle, expired, unknown to the policy), whose login is
// then ended on every host; err is the store's failure to end it.
func (s *Server) decideAccess(ctx context.Context, rt *Route, id session.Identity, client netip.Addr, path, method string) (d policies.Decision, ended bool, err error) {
	sess := id.Session
	d = s.policy.Decide(ctx, policies.Input{
		Point:   policies.PointAccess,
		Now:     s.now().Unix(),
		Client:  s.facts.Client(ctx, client),
		Account: facts.Account(id.User, true),
		Request: policies.Request{Route: rt.Name, Host: rt.Host, Path: path, Method: method},
		Session: session.Facts(sess),
	})
	if d.Allow {
		return d, false, nil
	}
	switch d.Reason {
	case policies.ReasonSessionIdle, policies.ReasonSessionExpired, policies.ReasonNoSession:
		if err := s.sessions.EndLogin(ctx, sess.LoginID); err != nil {
			return d, true, web.Unavailable(err)
		}
		return d, true, nil
	}
	return d, false, nil
}

// Close releases the server's idle upstream connections.
func (s *Server) Close() {
	s.transport.CloseIdleConnections()
	// Sessions' LastSeen writes waiting for their batch reach the store
	// before the store closes.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.sessions.Flush(ctx); err != nil {
		s.log.Error("write session last seen at shutdown", "error", err)
	}
}
