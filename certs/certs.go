// Package certs provides the gateway's TLS: the certificates it serves and the
// tls.Config its listeners use.
//
// Three modes are supported:
//
//   - "internal": a local certificate authority, created on first run under the
//     data directory and reused afterwards, issues short-lived certificates for
//     every configured host. Its root is written to DataDir/ca.pem for clients
//     (curl --cacert, browsers) to trust. Meant for development and demos.
//   - "acme": certificates from an ACME CA (Let's Encrypt by default), obtained
//     and renewed by certmagic, optionally on demand during TLS handshakes for
//     names an operator endpoint approves.
//   - "files": a certificate and key read from PEM files and re-read when they
//     change on disk.
//
// In the first two modes certmagic keeps the certificates in memory, stores
// them under the data directory (or in Config.Storage) and renews them in the
// background.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/certmagic"
)

// Modes of certificate management.
const (
	ModeInternal = "internal"
	ModeACME     = "acme"
	ModeFiles    = "files"
)

// LetsEncrypt is the directory URL of Let's Encrypt's production CA, the
// default for ACME mode.
const LetsEncrypt = certmagic.LetsEncryptProductionCA

// Config selects how the gateway obtains its certificates.
type Config struct {
	// Mode is ModeInternal, ModeACME or ModeFiles.
	Mode string
	// DataDir holds the local CA, issued certificates and ACME account state.
	// Required in the internal and acme modes.
	DataDir string
	// Hosts lists every host name and IP address the gateway serves.
	// Names may be wildcards of one leftmost label ("*.example.com") in
	// internal mode. In acme mode with OnDemand it may be empty.
	Hosts []string
	ACME  ACMEConfig
	Files FilesConfig
	// Storage keeps what certmagic stores in the internal and acme modes:
	// certificates and their keys, ACME accounts, and the locks around
	// obtaining and renewing. Nil keeps them in files under DataDir. Replicas
	// given one shared Storage (the PostgreSQL store's) obtain and renew each
	// certificate once and serve the same one. The local CA's root stays
	// under DataDir either way.
	Storage certmagic.Storage
}

// ACMEConfig configures the acme mode.
type ACMEConfig struct {
	// CA is the ACME directory URL; empty means Let's Encrypt production.
	CA string
	// Email is the account contact address the CA sends notices to. Required:
	// configuring acme mode with it is taken as agreement to the CA's terms.
	Email string
	// OnDemand obtains certificates during TLS handshakes: for the names in
	// Hosts, and for any other name AskURL approves. Certificates are then
	// obtained at a name's first handshake rather than by New.
	OnDemand bool
	// AskURL is called as GET AskURL?domain=NAME before a certificate is
	// obtained on demand; only a 2xx answer allows it, anything else (or no
	// answer) denies. Required with OnDemand.
	AskURL string
	// TrustedRoots, if set, replaces the system roots for talking to the CA
	// (a private ACME CA).
	TrustedRoots *x509.CertPool
	// AltHTTPPort and AltTLSALPNPort are the ports the CA validates http-01
	// and tls-alpn-01 challenges on, when not 80 and 443 (for example behind
	// port forwarding). If the gateway already listens there, its plain-HTTP
	// listener (through HTTPChallengeHandler) and its TLS listener answer the
	// challenges; otherwise a temporary listener is started.
	AltHTTPPort, AltTLSALPNPort int
	// DisableHTTPChallenge and DisableTLSALPNChallenge turn off one of the two
	// challenge types, for when its port cannot be reached from the CA.
	DisableHTTPChallenge, DisableTLSALPNChallenge bool
}

// FilesConfig configures the files mode.
type FilesConfig struct {
	// Cert is a PEM file with the certificate, followed by any intermediates.
	Cert string
	// Key is a PEM file with the certificate's private key.
	Key string
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("certs: "+format, args...))
	}

	switch c.Mode {
	case ModeInternal, ModeACME, ModeFiles:
	case "":
		bad("Mode is required (%s, %s or %s)", ModeInternal, ModeACME, ModeFiles)
	default:
		bad("Mode %q is not one of %s, %s, %s", c.Mode, ModeInternal, ModeACME, ModeFiles)
	}

	if (c.Mode == ModeInternal || c.Mode == ModeACME) && strings.TrimSpace(c.DataDir) == "" {
		bad("DataDir is required in %s mode", c.Mode)
	}

	if len(c.Hosts) == 0 {
		switch {
		case c.Mode == ModeInternal:
			bad("Hosts is required in internal mode")
		case c.Mode == ModeACME && !c.ACME.OnDemand:
			bad("Hosts is required in acme mode unless ACME.OnDemand is set")
		}
	}
	for i, h := range c.Hosts {
		if err := checkHost(h); err != nil {
			bad("Hosts[%d] %q: %v", i, h, err)
			continue
		}
		if c.Mode == ModeACME && strings.HasPrefix(h, "*.") {
			bad("Hosts[%d] %q: wildcard certificates need the dns-01 challenge, which acme mode does not support", i, h)
		}
	}

	if c.Mode == ModeACME {
		a := c.ACME
		if a.CA != "" {
			if u, err := url.Parse(a.CA); err != nil || u.Scheme != "https" || u.Host == "" {
				bad("ACME.CA %q must be an https URL", a.CA)
			}
		}
		if a.Email == "" {
			bad("ACME.Email is required in acme mode")
		} else if !strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n") {
			bad("ACME.Email %q is not an email address", a.Email)
		}
		if a.OnDemand {
			if a.AskURL == "" {
				bad("ACME.AskURL is required with ACME.OnDemand")
			} else if u, err := url.Parse(a.AskURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("ACME.AskURL %q must be an http or https URL", a.AskURL)
			}
		}
		if a.AltHTTPPort < 0 || a.AltHTTPPort > 65535 {
			bad("ACME.AltHTTPPort %d is not a port number", a.AltHTTPPort)
		}
		if a.AltTLSALPNPort < 0 || a.AltTLSALPNPort > 65535 {
			bad("ACME.AltTLSALPNPort %d is not a port number", a.AltTLSALPNPort)
		}
		if a.DisableHTTPChallenge && a.DisableTLSALPNChallenge {
			bad("ACME.DisableHTTPChallenge and ACME.DisableTLSALPNChallenge leave no challenge to solve")
		}
	}

	if c.Mode == ModeFiles {
		if c.Files.Cert == "" {
			bad("Files.Cert is required in files mode")
		}
		if c.Files.Key == "" {
			bad("Files.Key is required in files mode")
		}
	}

	return errors.Join(errs...)
}

// checkHost accepts an IP address or a DNS name, optionally a wildcard of
// its leftmost label.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty")
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	name := strings.TrimPrefix(h, "*.")
	if len(name) > 253 {
		return errors.New("longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("not a valid host name (empty or over-long label)")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("not a valid host name (label starts or ends with '-')")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("not a valid host name (character %q)", r)
			}
		}
	}
	return nil
}

// Manager provides the gateway's certificates. It is safe for concurrent use.
type Manager struct {
	tlsConfig *tls.Config
	cache     *certmagic.Cache      // nil in files mode
	acme      *certmagic.ACMEIssuer // nil unless acme mode
	rootPEM   []byte                // internal mode only
	closers   []func()
	closeOnce sync.Once
}

// New validates cfg and prepares the certificates it describes. In internal
// and acme mode it returns once a certificate for every host in cfg.Hosts is
// loaded from DataDir or newly issued, so ctx should bound how long to wait
// for the CA; certmagic renews them in the background afterwards. Call Close
// when done. A nil logger discards logs.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "certs")
	hosts := normalizeHosts(cfg.Hosts)

	switch cfg.Mode {
	case ModeInternal:
		return newInternal(ctx, cfg, hosts, logger)
	case ModeACME:
		return newACME(ctx, cfg, hosts, logger)
	default:
		return newFiles(cfg, hosts, logger)
	}
}

// TLSConfig returns a configuration for the gateway's TLS listeners: TLS 1.2
// or later, AEAD cipher suites only, ALPN for h2 and http/1.1 (and acme-tls/1
// in acme mode). Each call returns a new copy.
func (m *Manager) TLSConfig() *tls.Config {
	return m.tlsConfig.Clone()
}

// HTTPChallengeHandler answers ACME http-01 challenges and passes every other
// request to next. Put it in front of the plain-HTTP listener's handler; in
// modes other than acme it is next itself.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	if m.acme == nil {
		return next
	}
	return m.acme.HTTPChallengeHandler(next)
}

// RootPEM returns the local CA's root certificate in PEM form (also written
// to DataDir/ca.pem) in internal mode, and nil otherwise.
func (m *Manager) RootPEM() []byte {
	return slices.Clone(m.rootPEM)
}

// Close stops background certificate maintenance. It is safe to call more
// than once.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		if m.cache != nil {
			m.cache.Stop()
		}
		for _, f := range m.closers {
			f()
		}
	})
}

// serverTLSConfig is the policy every mode shares. TLS 1.3 suites are not
// configurable and all AEAD; for TLS 1.2 only ECDHE with AES-GCM or
// ChaCha20-Poly1305 is offered.
func serverTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), extraProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		// The server's order wins, so h2 is preferred; acme-tls/1 is only
		// ever offered alone, by a CA validating a challenge.
		NextProtos:     append([]string{"h2", "http/1.1"}, extraProtos...),
		GetCertificate: getCert,
	}
}

// newMagic builds a certmagic configuration with its own cache, and cfg's
// Storage or else files under cfg.DataDir. The caller sets Issuers (and
// OnDemand) on the result.
func newMagic(cfg Config, hosts []string, logger *slog.Logger, tmpl certmagic.Config) (*certmagic.Config, *certmagic.Cache) {
	zl := zapLogger(logger)
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zl,
	})
	tmpl.Storage = cfg.Storage
	if tmpl.Storage == nil {
		tmpl.Storage = &certmagic.FileStorage{Path: storageDir(cfg.DataDir)}
	}
	tmpl.Logger = zl
	tmpl.DefaultServerName = defaultServerName(hosts)
	magic = certmagic.New(cache, tmpl)
	return magic, cache
}

// defaultServerName is the certificate served to clients that send no SNI
// and connect to an address with no certificate of its own: the first DNS
// name, if any.
func defaultServerName(hosts []string) string {
	for _, h := range hosts {
		if net.ParseIP(h) == nil && !strings.HasPrefix(h, "*.") {
			return h
		}
	}
	return ""
}

func normalizeHosts(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}
