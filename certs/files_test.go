package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestFilesServesGivenCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, cert := writePair(t, dir, "gw", "login.example.com")
	m, err := New(t.Context(), Config{Mode: ModeFiles, Hosts: []string{"login.example.com"}, Files: FilesConfig{Cert: certPath, Key: keyPath}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.RootPEM() != nil {
		t.Error("RootPEM in files mode is not nil")
	}
	addr := serveTLS(t, m.TLSConfig(), okHandler)
	state, err := handshake(t, addr, &tls.Config{ServerName: "login.example.com", RootCAs: poolOf(cert), NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if !state.PeerCertificates[0].Equal(cert) {
		t.Error("served certificate is not the one in the file")
	}
	if state.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN = %q, want h2", state.NegotiatedProtocol)
	}
	if _, err := handshake(t, addr, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, ServerName: "login.example.com", RootCAs: poolOf(cert)}); err == nil {
		t.Error("TLS 1.2 with a CBC suite succeeded in files mode")
	}
}

func TestFilesErrors(t *testing.T) {
	dir := t.TempDir()
	certA, keyA, _ := writePair(t, dir, "a", "a.example.com")
	_, keyB, _ := writePair(t, dir, "b", "b.example.com")
	notPEM := filepath.Join(dir, "garbage.pem")
	writeFile(t, notPEM, "hello")

	tests := []struct {
		name      string
		cert, key string
		want      string
		wantIs    error
	}{
		{name: "key of another certificate", cert: certA, key: keyB, want: "private key does not match public key"},
		{name: "certificate and key swapped", cert: keyA, key: certA, want: "are not a certificate and its key"},
		{name: "not pem", cert: notPEM, key: keyA, want: "are not a certificate and its key"},
		{name: "missing certificate", cert: filepath.Join(dir, "nope.crt"), key: keyA, wantIs: fs.ErrNotExist},
		{name: "missing key", cert: certA, key: filepath.Join(dir, "nope.key"), wantIs: fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(t.Context(), Config{Mode: ModeFiles, Files: FilesConfig{Cert: tc.cert, Key: tc.key}}, nil)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error = %v, want errors.Is %v", err, tc.wantIs)
			}
		})
	}
}

func TestFilesReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		certPath, keyPath, first := writePair(t, dir, "gw", "login.example.com")
		m, err := New(t.Context(), Config{Mode: ModeFiles, Files: FilesConfig{Cert: certPath, Key: keyPath}}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		get := m.TLSConfig().GetCertificate
		served := func() *x509.Certificate {
			t.Helper()
			c, err := get(&tls.ClientHelloInfo{ServerName: "login.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			return c.Leaf
		}

		// A new pair, written in place.
		_, _, second := writePair(t, dir, "gw", "login.example.com")
		if !served().Equal(first) {
			t.Fatal("reloaded before the check interval")
		}
		time.Sleep(reloadInterval)
		if !served().Equal(second) {
			t.Fatal("new pair not served after the check interval")
		}

		// A certificate written before its key: keep serving the last good one.
		_, otherKey, _ := writePair(t, t.TempDir(), "other", "login.example.com")
		if err := os.WriteFile(keyPath, mustRead(t, otherKey), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(reloadInterval)
		if !served().Equal(second) {
			t.Fatal("a mismatched pair replaced the served certificate")
		}

		// Files that disappear: keep serving.
		if err := os.Remove(certPath); err != nil {
			t.Fatal(err)
		}
		time.Sleep(reloadInterval)
		if !served().Equal(second) {
			t.Fatal("a missing file replaced the served certificate")
		}
	})
}
