package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var internalHosts = []string{"localhost", "bank.localhost", "brokerage.localhost", "127.0.0.1", "::1"}

func newInternalManager(t *testing.T, dataDir string) *Manager {
	t.Helper()
	m, err := New(t.Context(), Config{Mode: ModeInternal, DataDir: dataDir, Hosts: internalHosts}, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

// caPool reads DataDir/ca.pem the way a client given --cacert would.
func caPool(t *testing.T, dataDir string) *x509.CertPool {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("ca.pem holds no certificate")
	}
	return pool
}

func TestInternal(t *testing.T) {
	dir := t.TempDir()
	m := newInternalManager(t, dir)
	pool := caPool(t, dir)
	addr := serveTLS(t, m.TLSConfig(), okHandler)

	t.Run("https for a host trusting only ca.pem", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}}
		defer client.CloseIdleConnections()
		resp, err := client.Get("https://bank.localhost/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "ok HTTP/2.0" {
			t.Fatalf("got %d %q, want 200 \"ok HTTP/2.0\"", resp.StatusCode, body)
		}
	})

	for _, host := range internalHosts {
		t.Run("certificate for "+host, func(t *testing.T) {
			// Go sends no SNI for IP addresses; the certificate is chosen by
			// the address connected to, so dial the IP itself.
			dialAddr := addr
			if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
				ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
				if err != nil {
					t.Skip("no IPv6 loopback:", err)
				}
				serveTLSOn(t, ln, m.TLSConfig(), okHandler)
				dialAddr = ln.Addr().String()
			}
			state, err := handshake(t, dialAddr, &tls.Config{ServerName: host, RootCAs: pool})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			leaf := state.PeerCertificates[0]
			if ip := net.ParseIP(host); ip != nil {
				if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
					t.Errorf("leaf IP addresses %v do not include %s", leaf.IPAddresses, ip)
				}
			} else if !slices.Contains(leaf.DNSNames, host) {
				t.Errorf("leaf DNS names %v do not include %s", leaf.DNSNames, host)
			}
			if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 6*24*time.Hour || life > 8*24*time.Hour {
				t.Errorf("leaf lifetime %s, want about a week", life)
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.IsCA {
				t.Errorf("leaf is not a plain server certificate: eku=%v ca=%v", leaf.ExtKeyUsage, leaf.IsCA)
			}
		})
	}

	t.Run("unknown host is refused", func(t *testing.T) {
		if _, err := handshake(t, addr, &tls.Config{ServerName: "evil.localhost", RootCAs: pool}); err == nil {
			t.Fatal("handshake for a host not configured succeeded")
		}
	})

	t.Run("untrusted without ca.pem", func(t *testing.T) {
		_, err := handshake(t, addr, &tls.Config{ServerName: "bank.localhost", RootCAs: x509.NewCertPool()})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("handshake error = %v, want an unknown authority", err)
		}
	})

	t.Run("root files", func(t *testing.T) {
		if !bytes.Equal(m.RootPEM(), mustRead(t, filepath.Join(dir, "ca.pem"))) {
			t.Error("RootPEM differs from ca.pem")
		}
		if !bytes.Equal(m.RootPEM(), mustRead(t, filepath.Join(dir, "ca", "root.crt"))) {
			t.Error("RootPEM differs from ca/root.crt")
		}
		for path, want := range map[string]os.FileMode{
			filepath.Join(dir, "ca"):             0o700,
			filepath.Join(dir, "ca", "root.key"): 0o600,
		} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s has mode %v, want %v", path, got, want)
			}
		}
		root := parsePEMCert(t, m.RootPEM())
		if !root.IsCA || root.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("root: IsCA=%v key=%v, want an ECDSA CA", root.IsCA, root.PublicKeyAlgorithm)
		}
		if key, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || key.Curve != elliptic.P256() {
			t.Errorf("root key is not P-256")
		}
		if life := root.NotAfter.Sub(root.NotBefore); life < 5*365*24*time.Hour {
			t.Errorf("root lifetime %s, want years", life)
		}
	})
}

// TestTLSVersionsAndSuites drives real handshakes against the internal
// mode's listener config.
func TestTLSVersionsAndSuites(t *testing.T) {
	dir := t.TempDir()
	m := newInternalManager(t, dir)
	pool := caPool(t, dir)
	addr := serveTLS(t, m.TLSConfig(), okHandler)

	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	}
	tests := []struct {
		name        string
		client      *tls.Config
		wantErr     string // substring; empty means success
		wantVersion uint16
		wantSuite   uint16
		wantProto   string
	}{
		{
			name:    "tls 1.1 is refused",
			client:  &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
			wantErr: "protocol version",
		},
		{
			name:    "tls 1.2 with only cbc suites is refused",
			client:  &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: cbc},
			wantErr: "handshake failure",
		},
		{
			name:        "tls 1.2 with aes-gcm",
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			wantVersion: tls.VersionTLS12,
			wantSuite:   tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		},
		{
			name:        "tls 1.2 with chacha20-poly1305",
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
			wantVersion: tls.VersionTLS12,
			wantSuite:   tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		{
			name:        "tls 1.3",
			client:      &tls.Config{},
			wantVersion: tls.VersionTLS13,
		},
		{
			name:      "alpn prefers h2",
			client:    &tls.Config{NextProtos: []string{"http/1.1", "h2"}},
			wantProto: "h2",
		},
		{
			name:      "alpn http/1.1",
			client:    &tls.Config{NextProtos: []string{"http/1.1"}},
			wantProto: "http/1.1",
		},
		{
			name:    "no acme-tls/1 outside acme mode",
			client:  &tls.Config{NextProtos: []string{"acme-tls/1"}},
			wantErr: "no application protocol",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.client.Clone()
			cfg.ServerName = "bank.localhost"
			cfg.RootCAs = pool
			state, err := handshake(t, addr, cfg)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("handshake succeeded with %s %s, want %q", tls.VersionName(state.Version), tls.CipherSuiteName(state.CipherSuite), tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("handshake error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if tc.wantVersion != 0 && state.Version != tc.wantVersion {
				t.Errorf("version = %s, want %s", tls.VersionName(state.Version), tls.VersionName(tc.wantVersion))
			}
			if tc.wantSuite != 0 && state.CipherSuite != tc.wantSuite {
				t.Errorf("suite = %s, want %s", tls.CipherSuiteName(state.CipherSuite), tls.CipherSuiteName(tc.wantSuite))
			}
			if state.NegotiatedProtocol != tc.wantProto {
				t.Errorf("ALPN = %q, want %q", state.NegotiatedProtocol, tc.wantProto)
			}
		})
	}
}

func TestInternalRestartKeepsRootAndCertificates(t *testing.T) {
	dir := t.TempDir()
	first := newInternalManager(t, dir)
	firstRoot := first.RootPEM()
	firstLeaf := leafFor(t, first, dir, "bank.localhost")
	first.Close()

	second := newInternalManager(t, dir)
	if !bytes.Equal(second.RootPEM(), firstRoot) {
		t.Fatal("a second start on the same data directory made a new root")
	}
	if !bytes.Equal(mustRead(t, filepath.Join(dir, "ca.pem")), firstRoot) {
		t.Fatal("ca.pem changed on the second start")
	}
	if got := leafFor(t, second, dir, "bank.localhost"); got.SerialNumber.Cmp(firstLeaf.SerialNumber) != 0 {
		t.Errorf("leaf re-issued on restart (serial %s, was %s); want it loaded from storage", got.SerialNumber, firstLeaf.SerialNumber)
	}
}

func TestInternalReplacedRootReissues(t *testing.T) {
	dir := t.TempDir()
	first := newInternalManager(t, dir)
	first.Close()
	if err := os.RemoveAll(filepath.Join(dir, "ca")); err != nil {
		t.Fatal(err)
	}
	second := newInternalManager(t, dir)
	if bytes.Equal(second.RootPEM(), first.RootPEM()) {
		t.Fatal("root not recreated")
	}
	// The leaf certmagic kept from the first root must not be served.
	leafFor(t, second, dir, "bank.localhost")
}

func TestInternalBrokenRoot(t *testing.T) {
	tests := []struct {
		name    string
		break_  func(t *testing.T, dir string)
		wantErr string
	}{
		{
			name: "garbage key",
			break_: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "ca", "root.key"), "not a key")
			},
			wantErr: "root.key",
		},
		{
			name: "key of another root",
			break_: func(t *testing.T, dir string) {
				other := t.TempDir()
				if err := createCA(other, time.Now(), rand.Reader); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "ca", "root.key"), string(mustRead(t, filepath.Join(other, "ca", "root.key"))))
			},
			wantErr: "does not match",
		},
		{
			name: "missing certificate",
			break_: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "ca", "root.crt")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "reading local CA root",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			newInternalManager(t, dir).Close()
			tc.break_(t, dir)
			_, err := New(t.Context(), Config{Mode: ModeInternal, DataDir: dir, Hosts: internalHosts}, testLogger(t))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestLocalIssuerSignsOnlyConfiguredHosts(t *testing.T) {
	dir := t.TempDir()
	if err := createCA(dir, time.Now(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	ca, err := loadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss := &localIssuer{ca: ca, hosts: []string{"bank.localhost", "127.0.0.1"}, now: time.Now, random: rand.Reader}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		csr     x509.CertificateRequest
		wantErr bool
	}{
		{"configured name and ip", x509.CertificateRequest{DNSNames: []string{"bank.localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}, false},
		{"other name", x509.CertificateRequest{DNSNames: []string{"bank.example.com"}}, true},
		{"other ip", x509.CertificateRequest{IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}}, true},
		{"other common name", x509.CertificateRequest{Subject: pkix.Name{CommonName: "evil.localhost"}, DNSNames: []string{"bank.localhost"}}, true},
		{"email", x509.CertificateRequest{DNSNames: []string{"bank.localhost"}, EmailAddresses: []string{"a@b.c"}}, true},
		{"nothing", x509.CertificateRequest{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := x509.CreateCertificateRequest(rand.Reader, &tc.csr, key)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			issued, err := iss.Issue(t.Context(), csr)
			if tc.wantErr {
				if err == nil {
					t.Fatal("Issue succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			leaf := parsePEMCert(t, issued.Certificate)
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: poolOf(ca.cert), DNSName: "bank.localhost"}); err != nil {
				t.Errorf("issued certificate does not verify: %v", err)
			}
		})
	}
}

func TestHTTPChallengeHandlerOutsideACME(t *testing.T) {
	m := newInternalManager(t, t.TempDir())
	h := m.HTTPChallengeHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://bank.localhost/.well-known/acme-challenge/abc", nil))
	if rec.Code != http.StatusTeapot {
		t.Fatalf("got %d, want the request passed on (418)", rec.Code)
	}
}

func TestInternalWildcardHost(t *testing.T) {
	dir := t.TempDir()
	m, err := New(t.Context(), Config{Mode: ModeInternal, DataDir: dir, Hosts: []string{"*.apps.localhost"}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	addr := serveTLS(t, m.TLSConfig(), okHandler)
	pool := caPool(t, dir)
	if _, err := handshake(t, addr, &tls.Config{ServerName: "savings.apps.localhost", RootCAs: pool}); err != nil {
		t.Fatalf("handshake under the wildcard: %v", err)
	}
	if _, err := handshake(t, addr, &tls.Config{ServerName: "a.b.apps.localhost", RootCAs: pool}); err == nil {
		t.Fatal("a wildcard covered two labels")
	}
}

// leafFor handshakes with a fresh listener using m and returns the leaf.
func leafFor(t *testing.T, m *Manager, dir, host string) *x509.Certificate {
	t.Helper()
	addr := serveTLS(t, m.TLSConfig(), okHandler)
	state, err := handshake(t, addr, &tls.Config{ServerName: host, RootCAs: caPool(t, dir)})
	if err != nil {
		t.Fatalf("handshake for %s: %v", host, err)
	}
	return state.PeerCertificates[0]
}

func parsePEMCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing certificate: %v", err)
	}
	return cert
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
