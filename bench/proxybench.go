// Package bench measures what the gateway costs on the request path: the
// same authenticated GET through Portcullis and through a bare
// httputil.ReverseProxy to one upstream, both over TLS on loopback, loaded
// by an in-process client. bench/proxy runs it from the command line and
// BenchmarkGatewayVsBareProxy from go test -bench.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/device"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/plugins/geoip"
	"github.com/portcullis/portcullis/plugins/geoip/geoiptest"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
	"github.com/portcullis/portcullis/policies"
)

const (
	// Host is the route's host name; every request carries it.
	Host = "bank.test"
	// Path is the upstream resource under load.
	Path = "/whoami"

	username = "alice"
	password = "bench-password-7f3a"
)

// Env is an upstream app with a bare reverse proxy and a Portcullis gateway
// in front of it, both serving TLS with the same certificate and settings,
// and a signed-in session on the gateway. Create it with NewEnv and release
// it with Close.
type Env struct {
	upstream *httptest.Server
	bare     *httptest.Server
	gwSrv    *httptest.Server
	gw       *gateway.Server
	store    *sqlite.Store
	device   string // the registered device's cookie
	roots    *x509.CertPool
	cookie   string

	bareTarget *Target
	gwTarget   *Target

	// Requests the upstream received with and without the gateway's
	// identity for the signed-in user.
	signals    *geoip.Reader
	identified atomic.Int64
	anonymous  atomic.Int64
}

// NewEnv starts the upstream, the bare proxy and the gateway (with a SQLite
// store in dir), creates a user and signs them in once.
func NewEnv(ctx context.Context, dir string) (env *Env, err error) {
	e := &Env{}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	e.upstream = httptest.NewServer(http.HandlerFunc(e.whoami))
	upstreamURL, err := url.Parse(e.upstream.URL)
	if err != nil {
		return nil, fmt.Errorf("bench: upstream url: %w", err)
	}

	e.store, err = sqlite.Open(ctx, dir+"/portcullis.db")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	signer, err := assertion.NewSigner(ctx, e.store, assertion.SignerConfig{Issuer: "https://" + Host, TTL: assertion.MaxTTL})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	// The gateway runs as in production: the shipped policies decide
	// every request, and logins are checked against an Anonymous-IP
	// database.
	engine, err := policies.New(ctx, policies.Config{})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := geoiptest.Generate(dir); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	e.signals, err = geoip.Open(geoip.Config{AnonymousIPPath: filepath.Join(dir, geoiptest.AnonymousIPFile)})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	e.gw, err = gateway.New(gateway.Config{
		Routes:       []gateway.Route{{Name: "whoami", Host: Host, PathPrefix: "/", Upstream: upstreamURL}},
		Session:      gateway.SessionConfig{IdleTimeout: 15 * time.Minute, MaxLifetime: 2 * time.Hour},
		StripHeaders: []string{"X-Remote-User"},
		AssertionTTL: assertion.MaxTTL,
	}, gateway.Deps{Users: e.store, Hits: e.store, Sessions: e.store, Records: e.store, Devices: e.store, Factors: e.store,
		CodeKey: benchCodeKey, Signer: signer, Policy: engine, Signals: e.signals})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}

	e.bare = newTLSServer(bareProxy(upstreamURL))
	e.gwSrv = newTLSServer(e.gw)
	e.roots = x509.NewCertPool()
	e.roots.AddCert(e.bare.Certificate())
	e.roots.AddCert(e.gwSrv.Certificate())

	if err := e.addUser(ctx); err != nil {
		return nil, err
	}
	if err := e.signIn(ctx); err != nil {
		return nil, err
	}
	e.bareTarget = &Target{Name: "bare", url: e.bare.URL + Path, cookie: e.cookie, roots: e.roots}
	e.gwTarget = &Target{Name: "gateway", url: e.gwSrv.URL + Path, cookie: e.cookie, roots: e.roots}
	return e, nil
}

// Bare is the bare reverse proxy under load.
func (e *Env) Bare() *Target { return e.bareTarget }

// Gateway is the Portcullis gateway under load.
func (e *Env) Gateway() *Target { return e.gwTarget }

// Close stops the servers and closes the store.
func (e *Env) Close() {
	for _, t := range []*Target{e.bareTarget, e.gwTarget} {
		if t != nil {
			t.Close()
		}
	}
	for _, s := range []*httptest.Server{e.gwSrv, e.bare, e.upstream} {
		if s != nil {
			s.Close()
		}
	}
	if e.gw != nil {
		e.gw.Close()
	}
	if e.signals != nil {
		e.signals.Close()
	}
	if e.store != nil {
		e.store.Close()
	}
}

// whoami is the upstream: a legacy app's "who is signed in" endpoint that
// does no work. It counts whether the request carried the gateway's
// identity for the signed-in user.
func (e *Env) whoami(w http.ResponseWriter, r *http.Request) {
	body := `{"user":null}`
	if r.Header.Get(assertion.HeaderUser) == username && r.Header.Get(assertion.HeaderAssertion) != "" {
		e.identified.Add(1)
		body = `{"user":"` + username + `"}`
	} else {
		e.anonymous.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, body)
}

// bareProxy is the baseline: a reverse proxy with nothing but the URL
// rewrite, the forwarded headers and the gateway's upstream transport
// settings.
func bareProxy(upstream *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		// The gateway's own transport and copy buffers, so that the ratio
		// measures only what the gateway does on top of proxying.
		Transport:     gateway.NewUpstreamTransport(),
		BufferPool:    gateway.BufferPool(),
		FlushInterval: 100 * time.Millisecond,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
}

// newTLSServer starts h behind TLS with the settings cmd/portcullis uses for
// its HTTPS listener. Both proxies get the same certificate (httptest's)
// and TLS configuration, so the cost of TLS is the same on both paths.
func newTLSServer(h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.Config.ReadHeaderTimeout = 10 * time.Second
	s.Config.IdleTimeout = 2 * time.Minute
	s.Config.MaxHeaderBytes = 64 << 10
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	s.StartTLS()
	return s
}

func (e *Env) addUser(ctx context.Context) error {
	hash, err := e.gw.Hasher().Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("bench: hash password: %w", err)
	}
	now := time.Now()
	u := store.User{ID: "id-" + username, Username: username, DisplayName: "Alice", PasswordHash: hash,
		Products: []string{"whoami"}, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateUser(ctx, u); err != nil {
		return fmt.Errorf("bench: create user: %w", err)
	}
	// The user signs in from a registered device, so the measured session
	// is a full one without a step-up.
	token, id, err := web.NewToken(rand.Reader)
	if err != nil {
		return fmt.Errorf("bench: device: %w", err)
	}
	if err := e.store.AddDevice(ctx, store.Device{ID: id, UserID: u.ID, Name: "bench", CreatedAt: now, LastUsedAt: now,
		ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		return fmt.Errorf("bench: device: %w", err)
	}
	e.device = token
	return nil
}

// benchCodeKey seals the security codes the bench never sends.
var benchCodeKey = []byte("bench-code-key-0123456789abcdef!")

// signIn logs the user in through the JSON API and keeps the cookies the
// gateway sets, as a browser would.
func (e *Env) signIn(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.gwSrv.URL+"/.portcullis/api/v1/login", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bench: sign in: %w", err)
	}
	req.Host = Host
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(&http.Cookie{Name: device.Cookie, Value: e.device})
	tr := clientTransport(e.roots)
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("bench: sign in: %w", err)
	}
	defer resp.Body.Close()
	var answer struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusOK || answer.Status != "authenticated" {
		return fmt.Errorf("bench: sign in: status %d, answer %q, decode error %v", resp.StatusCode, answer.Status, err)
	}
	var parts []string
	for _, c := range resp.Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	if len(parts) == 0 {
		return errors.New("bench: sign in: no session cookie")
	}
	e.cookie = strings.Join(parts, "; ")
	return nil
}

// clientTransport is one load-generator connection: HTTP/1.1 with
// keep-alive over TLS, trusting the test certificate.
func clientTransport(roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   false,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     time.Minute,
	}
}

// counts returns the upstream's counters.
func (e *Env) counts() (identified, anonymous int64) {
	return e.identified.Load(), e.anonymous.Load()
}

// Run loads t with cfg and checks what the upstream received: through the
// gateway every request must carry the signed-in user's identity, through
// the bare proxy none may.
func (e *Env) Run(ctx context.Context, t *Target, cfg LoadConfig) (Result, error) {
	id0, anon0 := e.counts()
	res, err := t.Run(ctx, cfg)
	if err != nil {
		return res, err
	}
	id1, anon1 := e.counts()
	ids, anons := id1-id0, anon1-anon0
	total := int64(res.Requests)
	switch t {
	case e.gwTarget:
		if anons != 0 || ids < total {
			return res, fmt.Errorf("bench: %s: upstream saw %d requests with the identity and %d without, for %d measured", t.Name, ids, anons, total)
		}
	case e.bareTarget:
		if ids != 0 || anons < total {
			return res, fmt.Errorf("bench: %s: upstream saw %d requests with an identity, want none", t.Name, ids)
		}
	}
	return res, nil
}
