// Package web holds the HTTP conventions every gateway flow shares: the
// error type and its rendering (a page, or JSON for a client that wants
// JSON), the pages and their templates, CSRF defence, return-target checks,
// the client's address, host helpers, random tokens, strict JSON bodies and
// the messages people read.
package web

import (
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
)

const (
	// Prefix is the gateway's own path on every routed host.
	Prefix = "/.portcullis/"
	// APIPrefix is where the JSON API lives.
	APIPrefix = Prefix + "api/v1/"
	// HSTS is the Strict-Transport-Security of every response.
	HSTS = "max-age=63072000; includeSubDomains"
)

// SiteConfig is what the shared conventions need to know about the
// gateway's hosts and its operator.
type SiteConfig struct {
	// Hosts are every host name the gateway serves, the login host
	// included.
	Hosts []string
	// LoginHost signs browsers in for every host; empty means each host
	// signs in on its own.
	LoginHost string
	// PublicPort is the port browsers reach the gateway on; 0 means the
	// port of each request's Host.
	PublicPort int
	// TrustedProxies are networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// SupportPhone is the number people are told to call; empty leaves it
	// out of messages.
	SupportPhone string
}

// Site is one gateway's instance of the shared conventions. It is safe for
// concurrent use.
type Site struct {
	cfg   SiteConfig
	log   *slog.Logger
	rand  io.Reader
	hosts map[string]bool
	csp   string

	themeMu   sync.Mutex // guards the theme's fields; see UseTheme
	brand     Brand
	brandCSS  []byte
	themeDir  fs.FS
	pages     *template.Template // basePages bound to this site
	roomPages sync.Map           // a room's *template.Template → its bound copy
}

// NewSite returns the conventions for the gateway configured by cfg. log and
// rand must not be nil.
func NewSite(cfg SiteConfig, log *slog.Logger, rand io.Reader) *Site {
	s := &Site{cfg: cfg, log: log, rand: rand, hosts: map[string]bool{}}
	for _, h := range cfg.Hosts {
		s.hosts[h] = true
	}
	if cfg.LoginHost != "" {
		s.hosts[cfg.LoginHost] = true
	}
	names := make([]string, 0, len(s.hosts))
	for h := range s.hosts {
		names = append(names, h)
	}
	slices.Sort(names)
	s.csp = pageCSP(names)
	if err := s.UseTheme(Theme{}); err != nil {
		panic(err) // the built-in pages always bind
	}
	return s
}

// LoginHost is the host that signs browsers in for every host, or "".
func (s *Site) LoginHost() string { return s.cfg.LoginHost }

// OnLoginHost reports whether r came to the login host.
func (s *Site) OnLoginHost(r *http.Request) bool {
	return s.cfg.LoginHost != "" && HostName(r.Host) == s.cfg.LoginHost
}

// KnownHost reports whether the gateway serves host (a bare host name).
func (s *Site) KnownHost(host string) bool { return host != "" && s.hosts[host] }

// ServedPort is the port browsers reach the gateway's hosts on: the
// configured public port, else the port of the request's Host (443 when it
// names none). 0 when the Host's port is not a port, so nothing matches.
func (s *Site) ServedPort(r *http.Request) int {
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

// Here is the authority (host, and port unless 443) the request reached,
// with the port browsers use.
func (s *Site) Here(r *http.Request) string { return Authority(HostName(r.Host), s.ServedPort(r)) }

// ClientIP is the address of the client that made r (see ClientIP); the
// zero Addr when it cannot be known.
func (s *Site) ClientIP(r *http.Request) netip.Addr { return ClientIP(r, s.cfg.TrustedProxies) }

// ReturnURL checks an absolute return target against the hosts and port
// the gateway serves (see ReturnURL).
func (s *Site) ReturnURL(r *http.Request, target string) (authority, path string, ok bool) {
	return ReturnURL(target, s.KnownHost, s.ServedPort(r))
}

// ContinueURL is where a browser goes after signing in: for an absolute
// target on another of the gateway's hosts, the authorize step that signs it
// in there; for a path, that path on this host; for anything else, "/".
func (s *Site) ContinueURL(r *http.Request, rd string) string {
	if p, ok := SafeReturnPath(rd); ok {
		return p
	}
	if _, _, ok := s.ReturnURL(r, rd); ok {
		return Prefix + "authorize?rd=" + url.QueryEscape(rd)
	}
	return "/"
}

// SignInURL is where a request without a session is sent: the login host's
// authorize step when there is a login host (which signs in once for every
// host), otherwise this host's login page.
func (s *Site) SignInURL(r *http.Request) string {
	host := HostName(r.Host)
	if s.cfg.LoginHost == "" || s.cfg.LoginHost == host {
		return Prefix + "login?rd=" + url.QueryEscape(r.URL.RequestURI())
	}
	back := "https://" + r.Host + r.URL.RequestURI()
	return "https://" + s.cfg.LoginHost + HostPort(r.Host) + Prefix + "authorize?rd=" + url.QueryEscape(back)
}

// SetPageHeaders sets the headers of every response the gateway writes
// itself.
func (s *Site) SetPageHeaders(h http.Header) {
	h.Set("Strict-Transport-Security", HSTS)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", s.csp)
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
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
	return "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action " + formAction +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// HostName returns the host of a Host header without port, lowercased.
func HostName(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// HostPort returns the ":port" part of a Host header, or "".
func HostPort(hostport string) string {
	if _, p, err := net.SplitHostPort(hostport); err == nil && p != "" && p != "443" {
		return ":" + p
	}
	return ""
}
