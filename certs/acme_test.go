package certs

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// testACME is an in-process Pebble, the Let's Encrypt test CA.
type testACME struct {
	directory    string         // ACME directory URL
	serverRoots  *x509.CertPool // trust for talking to the ACME server
	issuingRoots *x509.CertPool // trust for the certificates it issues
}

// startPebble runs Pebble wired the way its cmd/pebble does. Its validation
// authority resolves every name through dnsAddr and validates http-01 on
// httpPort and tls-alpn-01 on tlsPort of the resolved address.
func startPebble(t *testing.T, dnsAddr string, httpPort, tlsPort int) testACME {
	t.Helper()
	logger := log.New(newTestWriter(t), "pebble ", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "default"},
	})
	validator := va.New(logger, httpPort, tlsPort, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)

	acmeSrv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(acmeSrv.Close)
	mgmt := httptest.NewTLSServer(front.ManagementHandler())
	t.Cleanup(mgmt.Close)

	resp, err := mgmt.Client().Get(mgmt.URL + wfe.RootCertPath + "0")
	if err != nil {
		t.Fatalf("fetching Pebble root: %v", err)
	}
	defer resp.Body.Close()
	rootPEM, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("fetching Pebble root: %d %v", resp.StatusCode, err)
	}
	issuing := x509.NewCertPool()
	if !issuing.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("Pebble root is not PEM: %q", rootPEM)
	}
	return testACME{
		directory:    acmeSrv.URL + wfe.DirectoryPath,
		serverRoots:  poolOf(acmeSrv.Certificate()),
		issuingRoots: issuing,
	}
}

// startDNS answers every A query with 127.0.0.1 over TCP, the transport
// Pebble uses for a custom resolver; names like acme.localhost then lead the
// validation authority to this machine without touching the system resolver.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Net: "tcp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func portOf(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln := listenLoopback(t)
	defer ln.Close()
	return portOf(ln)
}

// TestACME obtains real certificates over ACME from an in-process Pebble and
// serves them: for configured hosts at start (with certmagic's own challenge
// listeners, as when the gateway starts before its listeners), and on demand
// through the gateway's own plain-HTTP and TLS listeners.
func TestACME(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an ACME CA in process")
	}
	// Pebble's deliberate chaos: random validation delays and rejected nonces.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	dnsAddr := startDNS(t)

	t.Run("configured hosts at start", func(t *testing.T) {
		httpPort, tlsPort := freePort(t), freePort(t)
		pebble := startPebble(t, dnsAddr, httpPort, tlsPort)
		start := time.Now()
		m, err := New(t.Context(), Config{
			Mode:    ModeACME,
			DataDir: t.TempDir(),
			Hosts:   []string{"acme.localhost"},
			ACME: ACMEConfig{
				CA:             pebble.directory,
				Email:          "ops@portcullis.test",
				TrustedRoots:   pebble.serverRoots,
				AltHTTPPort:    httpPort,
				AltTLSALPNPort: tlsPort,
			},
		}, testLogger(t))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer m.Close()
		t.Logf("certificate obtained in %s", time.Since(start).Round(time.Millisecond))

		addr := serveTLS(t, m.TLSConfig(), okHandler)
		state, err := handshake(t, addr, &tls.Config{ServerName: "acme.localhost", RootCAs: pebble.issuingRoots, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatalf("handshake trusting Pebble's root: %v", err)
		}
		if leaf := state.PeerCertificates[0]; !slices.Equal(leaf.DNSNames, []string{"acme.localhost"}) {
			t.Errorf("leaf names %v, want [acme.localhost]", leaf.DNSNames)
		}
		if state.NegotiatedProtocol != "h2" {
			t.Errorf("ALPN = %q, want h2", state.NegotiatedProtocol)
		}
		if _, err := handshake(t, addr, &tls.Config{ServerName: "other.localhost", RootCAs: pebble.issuingRoots}); err == nil {
			t.Error("handshake for a host not configured succeeded without on-demand")
		}
	})

	for _, tc := range []struct {
		name      string
		challenge string
		acme      ACMEConfig
	}{
		{name: "on demand over http-01", challenge: "http-01", acme: ACMEConfig{DisableTLSALPNChallenge: true}},
		{name: "on demand over tls-alpn-01", challenge: "tls-alpn-01", acme: ACMEConfig{DisableHTTPChallenge: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The gateway's listeners exist before the CA validates.
			httpLn, tlsLn := listenLoopback(t), listenLoopback(t)
			pebble := startPebble(t, dnsAddr, portOf(httpLn), portOf(tlsLn))

			var mu sync.Mutex
			var asked []string
			ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				domain := r.URL.Query().Get("domain")
				mu.Lock()
				asked = append(asked, domain)
				mu.Unlock()
				if domain != "allowed.localhost" {
					http.Error(w, "no", http.StatusForbidden)
				}
			}))
			defer ask.Close()

			cfg := tc.acme
			cfg.CA = pebble.directory
			cfg.Email = "ops@portcullis.test"
			cfg.TrustedRoots = pebble.serverRoots
			cfg.OnDemand = true
			cfg.AskURL = ask.URL + "/check?token=abc"
			cfg.AltHTTPPort = portOf(httpLn)
			cfg.AltTLSALPNPort = portOf(tlsLn)
			m, err := New(t.Context(), Config{Mode: ModeACME, DataDir: t.TempDir(), ACME: cfg}, testLogger(t))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer m.Close()

			// Count the validations each listener answers.
			var httpChallenges, tlsChallenges atomic.Int32
			plain := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
						httpChallenges.Add(1)
					}
					m.HTTPChallengeHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.WriteHeader(http.StatusTeapot)
					})).ServeHTTP(w, r)
				}),
				ErrorLog: log.New(io.Discard, "", 0),
			}
			go func() { _ = plain.Serve(httpLn) }()
			t.Cleanup(func() { _ = plain.Close() })
			tlsCfg := m.TLSConfig()
			if tc.challenge == "tls-alpn-01" && !slices.Contains(tlsCfg.NextProtos, "acme-tls/1") {
				t.Fatalf("NextProtos %q lack acme-tls/1", tlsCfg.NextProtos)
			}
			getCert := tlsCfg.GetCertificate
			tlsCfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				if slices.Equal(hello.SupportedProtos, []string{"acme-tls/1"}) {
					tlsChallenges.Add(1)
				}
				return getCert(hello)
			}
			serveTLSOn(t, tlsLn, tlsCfg, okHandler)
			addr := tlsLn.Addr().String()

			// Anything else on the plain-HTTP listener reaches the next handler.
			resp, err := http.Get("http://" + httpLn.Addr().String() + "/login")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTeapot {
				t.Errorf("plain request got %d, want it passed on (418)", resp.StatusCode)
			}

			if _, err := handshake(t, addr, &tls.Config{ServerName: "denied.localhost", RootCAs: pebble.issuingRoots}); err == nil {
				t.Error("handshake for a name the ask endpoint refused succeeded")
			}

			start := time.Now()
			state, err := handshake(t, addr, &tls.Config{ServerName: "allowed.localhost", RootCAs: pebble.issuingRoots})
			if err != nil {
				t.Fatalf("handshake for an allowed name: %v", err)
			}
			t.Logf("certificate obtained during the handshake in %s", time.Since(start).Round(time.Millisecond))
			if leaf := state.PeerCertificates[0]; !slices.Equal(leaf.DNSNames, []string{"allowed.localhost"}) {
				t.Errorf("leaf names %v, want [allowed.localhost]", leaf.DNSNames)
			}

			mu.Lock()
			defer mu.Unlock()
			if !slices.Contains(asked, "denied.localhost") || !slices.Contains(asked, "allowed.localhost") {
				t.Errorf("ask endpoint was asked about %q, want both names", asked)
			}
			switch tc.challenge {
			case "http-01":
				if httpChallenges.Load() == 0 || tlsChallenges.Load() != 0 {
					t.Errorf("validations answered: http-01 %d, tls-alpn-01 %d; want only http-01", httpChallenges.Load(), tlsChallenges.Load())
				}
			case "tls-alpn-01":
				if tlsChallenges.Load() == 0 || httpChallenges.Load() != 0 {
					t.Errorf("validations answered: http-01 %d, tls-alpn-01 %d; want only tls-alpn-01", httpChallenges.Load(), tlsChallenges.Load())
				}
			}
		})
	}
}

func TestAskFailsClosed(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		allowed bool
	}{
		{"2xx allows", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, true},
		{"403 denies", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }, false},
		{"500 denies", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }, false},
		{"redirect denies", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gotDomain atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/ok" {
					return // 200, reached only by following a redirect
				}
				gotDomain.Store(r.URL.Query().Get("domain"))
				tc.handler(w, r)
			}))
			defer srv.Close()
			a := newAsker(mustParseURL(t, srv.URL+"/ask"), nil, testLogger(t))
			err := a.decide(t.Context(), "shop.example.com")
			if tc.allowed != (err == nil) {
				t.Fatalf("decide = %v, want allowed=%v", err, tc.allowed)
			}
			if got := gotDomain.Load(); got != "shop.example.com" {
				t.Errorf("ask endpoint got domain=%v", got)
			}
		})
	}

	t.Run("unreachable denies", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := mustParseURL(t, srv.URL+"/ask")
		srv.Close()
		if err := newAsker(u, nil, testLogger(t)).decide(t.Context(), "shop.example.com"); err == nil {
			t.Fatal("decide allowed with the ask endpoint down")
		}
	})

	t.Run("configured hosts need no asking", func(t *testing.T) {
		u := mustParseURL(t, "http://127.0.0.1:1/ask") // nothing listens there
		if err := newAsker(u, []string{"login.example.com"}, testLogger(t)).decide(t.Context(), "login.example.com"); err != nil {
			t.Fatalf("decide = %v for a configured host", err)
		}
	})
}
