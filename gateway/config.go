package gateway

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/web"
)

// Config is the gateway's behaviour, already parsed; the config package turns
// the YAML file into one.
type Config struct {
	// LoginHost serves the sign-in pages for browsers: a route host without
	// a session sends the browser there, and it sends them back through a
	// single-use exchange. Empty means every host signs in on its own.
	LoginHost string
	Routes    []Route
	// TrustedProxies are networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// ForwardAuth configures /.portcullis/auth, the access check another
	// proxy (nginx auth_request, Traefik forwardAuth, Caddy forward_auth)
	// asks before it passes a request to an app.
	ForwardAuth ForwardAuthConfig
	Session     SessionConfig
	// StripHeaders are identity headers other than the gateway's own
	// X-Portcullis-* namespace that upstreams trust and clients must never
	// be able to send (for example X-Remote-User).
	StripHeaders []string
	// IdentityHeaders are extra headers the gateway sets on proxied
	// requests, by name, to a field of the user: "username" or "user_id".
	// They are stripped from client requests like StripHeaders.
	IdentityHeaders map[string]string
	Password        credential.Params
	// PasswordBlocklist is a file of breached passwords, one a line, that
	// the password checker refuses beside zxcvbn's common passwords; empty
	// means none. New reads it once and fails when it cannot.
	PasswordBlocklist string
	// AssertionTTL is the lifetime of the signed assertions the signer
	// makes; the gateway reuses one for half of it.
	AssertionTTL time.Duration
	// Organisation is the name messages to customers sign with ("Example
	// Bank"); empty means "Portcullis".
	Organisation string
	// SupportPhone is the number people are told to call when they cannot
	// go on online; empty leaves it out of messages.
	SupportPhone string
	// Theme is the pages' look: the bank's name, logo and colours, and an
	// operator's directory of templates and static files; the zero Theme
	// is the built-in pages without a brand.
	Theme web.Theme
	// PublicPort is the port browsers reach the gateway on when something
	// in front of it listens on another port than the gateway sees in the
	// Host header; 0 means the port of each request's Host. Return targets
	// and sign-in codes are bound to it.
	PublicPort int
}

// Route sends requests for a host and path prefix to an upstream app.
type Route struct {
	// Name identifies the route (the product); it is the assertion's
	// audience.
	Name       string
	Host       string
	PathPrefix string
	Upstream   *url.URL

	observe func(status int, took time.Duration) // Deps.UpstreamObserver's, or nil
}

// ForwardAuthConfig says who may ask the forward-auth endpoint.
type ForwardAuthConfig struct {
	// TrustedNetworks are the networks of the proxies that may describe
	// the original request in forwarded headers (X-Forwarded-Method,
	// -Proto, -Host, -Uri, X-Original-URI, X-Original-Method) and name its
	// client in X-Forwarded-For. The endpoint refuses every other peer; none
	// means it is off.
	TrustedNetworks []netip.Prefix
}

// SessionConfig bounds how long a sign-in lasts.
type SessionConfig struct {
	// IdleTimeout ends a session not used for this long.
	IdleTimeout time.Duration
	// MaxLifetime ends a session this long after sign-in, however active.
	MaxLifetime time.Duration
}

// A FieldError is one problem with a Config. Path names the field the way the
// configuration file spells it ("routes[1].host", "identity.headers.X-User"),
// so that whoever read the file can point at the line.
type FieldError struct {
	Path    string
	Message string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Message }

// FieldErrors is every problem Validate found, always in the same order
// (map entries by key).
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap lets errors.As find each *FieldError.
func (es FieldErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// Validate reports every problem with the configuration at once: nil, or
// FieldErrors. It holds the gateway's rules; the config package only parses
// the file into a Config and points each FieldError back at its line.
func (c Config) Validate() error {
	var errs FieldErrors
	add := func(path, format string, a ...any) {
		errs = append(errs, &FieldError{Path: path, Message: fmt.Sprintf(format, a...)})
	}
	if c.PublicPort < 0 || c.PublicPort > 65535 {
		add("listen.public_port", "%d is not a port (1 to 65535, or 0 for the port each request names)", c.PublicPort)
	}
	if c.Password.Nice < 0 || c.Password.Nice > 19 {
		add("password.nice", "%d is outside 0 (the process's priority) to 19 (the lowest)", c.Password.Nice)
	}
	if c.Password.QueueTimeout < 0 {
		add("password.queue_timeout", "%v must not be negative", c.Password.QueueTimeout)
	}
	if c.LoginHost != "" && !validHost(c.LoginHost) {
		add("login_host", "%q must be a lowercase host name without port", c.LoginHost)
	}
	if len(c.Routes) == 0 {
		add("routes", "at least one route is required")
	}
	names := map[string]bool{}
	for i, rt := range c.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		if rt.Name == "" {
			add(where+".name", "is required")
		} else if names[rt.Name] {
			add(where+".name", "%q is the name of an earlier route too", rt.Name)
		}
		names[rt.Name] = true
		if !validHost(rt.Host) {
			add(where+".host", "%q must be a lowercase host name without port", rt.Host)
		}
		if !strings.HasPrefix(rt.PathPrefix, "/") || strings.HasPrefix(rt.PathPrefix, reservedPrefix) {
			add(where+".path_prefix", "%q must start with / and not be under %s", rt.PathPrefix, reservedPrefix)
		}
		switch u := rt.Upstream; {
		case u == nil:
			add(where+".upstream", "must be an http or https URL")
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			add(where+".upstream", "%q must be an http or https URL", u.Redacted())
		}
	}
	switch idle, maxLife := c.Session.IdleTimeout, c.Session.MaxLifetime; {
	case idle <= 0 || maxLife <= 0:
		if idle <= 0 {
			add("session.idle_timeout", "%s must be positive", idle)
		}
		if maxLife <= 0 {
			add("session.max_lifetime", "%s must be positive", maxLife)
		}
	case idle > maxLife:
		add("session.idle_timeout", "%s must not exceed session.max_lifetime (%s)", idle, maxLife)
	}
	if c.AssertionTTL <= 0 || c.AssertionTTL > time.Minute {
		add("identity.assertion_ttl", "%s must be more than 0 and at most 60s", c.AssertionTTL)
	}
	for i, h := range c.StripHeaders {
		if !validHeaderName(h) {
			add(fmt.Sprintf("identity.strip_headers[%d]", i), "%q is not a header name", h)
		}
	}
	// Sorted, so that the problems come out in the same order every time.
	for _, h := range slices.Sorted(maps.Keys(c.IdentityHeaders)) {
		if !validHeaderName(h) {
			add("identity.headers."+h, "%q is not a header name", h)
		}
		if field := c.IdentityHeaders[h]; field != "username" && field != "user_id" {
			add("identity.headers."+h, "field %q must be username or user_id", field)
		}
	}
	for i, p := range c.ForwardAuth.TrustedNetworks {
		where := fmt.Sprintf("forward_auth.trusted_networks[%d]", i)
		if !p.IsValid() {
			add(where, "is not an IP address or CIDR network")
		} else if p.Bits() == 0 {
			add(where, "%s would trust every address to describe requests; name the proxies' networks", p)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// validHost reports whether h is a lowercase host name without port.
func validHost(h string) bool {
	return h != "" && !strings.ContainsAny(h, ":/ ") && h == strings.ToLower(h)
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for _, c := range h {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
