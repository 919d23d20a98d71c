package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
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
	Session        SessionConfig
	// StripHeaders are identity headers other than the gateway's own
	// X-Portcullis-* namespace that upstreams trust and clients must never
	// be able to send (for example X-Remote-User).
	StripHeaders []string
	// IdentityHeaders are extra headers the gateway sets on proxied
	// requests, by name, to a field of the user: "username" or "user_id".
	// They are stripped from client requests like StripHeaders.
	IdentityHeaders map[string]string
	Password        PasswordParams
	// AssertionTTL is the lifetime of the signed assertions the signer
	// makes; the gateway reuses one for half of it.
	AssertionTTL time.Duration
	// SupportPhone is the number people are told to call when they cannot
	// go on online; empty leaves it out of messages.
	SupportPhone string
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
}

// SessionConfig bounds how long a sign-in lasts.
type SessionConfig struct {
	// IdleTimeout ends a session not used for this long.
	IdleTimeout time.Duration
	// MaxLifetime ends a session this long after sign-in, however active.
	MaxLifetime time.Duration
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.PublicPort < 0 || c.PublicPort > 65535 {
		errs = append(errs, fmt.Errorf("public port %d is not a port", c.PublicPort))
	}
	names := map[string]bool{}
	for i, rt := range c.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		if rt.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is required", where))
		} else if names[rt.Name] {
			errs = append(errs, fmt.Errorf("%s: name %q is used twice", where, rt.Name))
		}
		names[rt.Name] = true
		if rt.Host == "" || strings.ContainsAny(rt.Host, ":/ ") || rt.Host != strings.ToLower(rt.Host) {
			errs = append(errs, fmt.Errorf("%s: host %q must be a lowercase host name without port", where, rt.Host))
		}
		if !strings.HasPrefix(rt.PathPrefix, "/") || strings.HasPrefix(rt.PathPrefix, reservedPrefix) {
			errs = append(errs, fmt.Errorf("%s: path_prefix %q must start with / and not be under %s", where, rt.PathPrefix, reservedPrefix))
		}
		if rt.Upstream == nil || (rt.Upstream.Scheme != "http" && rt.Upstream.Scheme != "https") || rt.Upstream.Host == "" {
			errs = append(errs, fmt.Errorf("%s: upstream must be an http or https URL", where))
		}
	}
	if len(c.Routes) == 0 {
		errs = append(errs, errors.New("routes: at least one route is required"))
	}
	if strings.ContainsAny(c.LoginHost, ":/ ") || c.LoginHost != strings.ToLower(c.LoginHost) {
		errs = append(errs, fmt.Errorf("login_host %q must be a lowercase host name without port", c.LoginHost))
	}
	if c.Session.IdleTimeout <= 0 || c.Session.MaxLifetime <= 0 {
		errs = append(errs, errors.New("session: idle_timeout and max_lifetime must be positive"))
	} else if c.Session.IdleTimeout > c.Session.MaxLifetime {
		errs = append(errs, errors.New("session: idle_timeout must not exceed max_lifetime"))
	}
	if c.AssertionTTL <= 0 || c.AssertionTTL > time.Minute {
		errs = append(errs, errors.New("identity.assertion_ttl must be more than 0 and at most 60s"))
	}
	for _, h := range c.StripHeaders {
		if !validHeaderName(h) {
			errs = append(errs, fmt.Errorf("identity.strip_headers: %q is not a header name", h))
		}
	}
	for h, field := range c.IdentityHeaders {
		if !validHeaderName(h) {
			errs = append(errs, fmt.Errorf("identity.headers: %q is not a header name", h))
		}
		if field != "username" && field != "user_id" {
			errs = append(errs, fmt.Errorf("identity.headers: %s: field %q must be username or user_id", h, field))
		}
	}
	return errors.Join(errs...)
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
