package certs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
)

// askTimeout bounds one call to the on-demand ask endpoint; the TLS handshake
// that triggered it is waiting.
const askTimeout = 5 * time.Second

// newACME sets up acme mode: certmagic's ACME issuer, optionally on demand.
func newACME(ctx context.Context, cfg Config, hosts []string, logger *slog.Logger) (*Manager, error) {
	a := cfg.ACME
	ca := a.CA
	if ca == "" {
		ca = LetsEncrypt
	}

	// A non-nil, empty Issuers keeps certmagic from filling in its default
	// issuer; the real one needs the finished config.
	tmpl := certmagic.Config{Issuers: []certmagic.Issuer{}}
	var ask *asker
	if a.OnDemand {
		u, err := url.Parse(a.AskURL)
		if err != nil { // already checked by Validate
			return nil, fmt.Errorf("certs: ACME.AskURL: %w", err)
		}
		ask = newAsker(u, hosts, logger)
		tmpl.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: ask.decide}
	}
	magic, cache := newMagic(cfg, hosts, logger, tmpl)
	iss := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                      ca,
		Email:                   a.Email,
		Agreed:                  true, // see ACMEConfig.Email
		TrustedRoots:            a.TrustedRoots,
		AltHTTPPort:             a.AltHTTPPort,
		AltTLSALPNPort:          a.AltTLSALPNPort,
		DisableHTTPChallenge:    a.DisableHTTPChallenge,
		DisableTLSALPNChallenge: a.DisableTLSALPNChallenge,
		Logger:                  magic.Logger,
	})
	magic.Issuers = []certmagic.Issuer{iss}

	var protos []string
	if !a.DisableTLSALPNChallenge {
		protos = append(protos, acmez.ACMETLS1Protocol)
	}
	m := &Manager{
		tlsConfig: serverTLSConfig(magic.GetCertificate, protos...),
		cache:     cache,
		acme:      iss,
	}
	if ask != nil {
		m.closers = append(m.closers, ask.client.CloseIdleConnections)
	}

	// With OnDemand set, certmagic only records the hosts here and obtains
	// their certificates at their first handshake.
	if err := magic.ManageSync(ctx, hosts); err != nil {
		m.Close()
		return nil, fmt.Errorf("certs: obtaining certificates from %s: %w", ca, err)
	}
	logger.Info("certificates ready", "mode", ModeACME, "ca", ca, "hosts", hosts, "on_demand", a.OnDemand)
	return m, nil
}

// asker decides whether a certificate may be obtained on demand for a name.
type asker struct {
	url     *url.URL
	allowed []string // configured hosts, allowed without asking
	client  *http.Client
	logger  *slog.Logger
}

func newAsker(u *url.URL, allowed []string, logger *slog.Logger) *asker {
	return &asker{
		url:     u,
		allowed: allowed,
		client: &http.Client{
			Timeout:   askTimeout,
			Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4},
			// A redirect is not a yes.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		logger: logger,
	}
}

// errDenied is returned for names the ask endpoint did not approve.
var errDenied = errors.New("certs: on-demand certificate not allowed")

// decide returns nil only if name is a configured host or the ask endpoint
// answers 2xx for it. It fails closed: an unreachable or failing endpoint
// denies.
func (a *asker) decide(ctx context.Context, name string) error {
	if slices.Contains(a.allowed, name) {
		return nil
	}
	u := *a.url
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()

	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", errDenied, name, err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.logger.Warn("on-demand certificate denied", "domain", name, "reason", "ask endpoint unreachable", "error", err)
		return fmt.Errorf("%w: %q: asking: %v", errDenied, name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.logger.Info("on-demand certificate denied", "domain", name, "reason", "ask endpoint refused", "status", resp.StatusCode)
		return fmt.Errorf("%w: %q: ask endpoint answered %s", errDenied, name, resp.Status)
	}
	a.logger.Info("on-demand certificate allowed", "domain", name)
	return nil
}
