package certs

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem; none means valid
	}{
		{
			name: "internal",
			cfg:  Config{Mode: ModeInternal, DataDir: "/data", Hosts: []string{"localhost", "bank.localhost", "127.0.0.1", "::1", "*.dev.localhost"}},
		},
		{
			name: "acme",
			cfg:  Config{Mode: ModeACME, DataDir: "/data", Hosts: []string{"login.example.com"}, ACME: ACMEConfig{Email: "ops@example.com"}},
		},
		{
			name: "acme on demand without hosts",
			cfg:  Config{Mode: ModeACME, DataDir: "/data", ACME: ACMEConfig{Email: "ops@example.com", OnDemand: true, AskURL: "http://127.0.0.1:9000/ask"}},
		},
		{
			name: "files",
			cfg:  Config{Mode: ModeFiles, Files: FilesConfig{Cert: "c.pem", Key: "k.pem"}},
		},
		{
			name: "no mode",
			cfg:  Config{},
			want: []string{"Mode is required"},
		},
		{
			name: "unknown mode",
			cfg:  Config{Mode: "letsencrypt"},
			want: []string{`Mode "letsencrypt"`},
		},
		{
			name: "internal with every problem",
			cfg:  Config{Mode: ModeInternal, Hosts: []string{"ok.localhost", "bad host", "-x.localhost", ""}},
			want: []string{"DataDir is required", `Hosts[1] "bad host"`, `Hosts[2] "-x.localhost"`, `Hosts[3] ""`},
		},
		{
			name: "internal without hosts",
			cfg:  Config{Mode: ModeInternal, DataDir: "/data"},
			want: []string{"Hosts is required in internal mode"},
		},
		{
			name: "acme with every problem",
			cfg: Config{Mode: ModeACME, Hosts: []string{"*.example.com"}, ACME: ACMEConfig{
				CA: "http://ca.example/dir", Email: "not an email", OnDemand: true,
				AltHTTPPort: -1, AltTLSALPNPort: 70000,
				DisableHTTPChallenge: true, DisableTLSALPNChallenge: true,
			}},
			want: []string{
				"DataDir is required", "dns-01", "ACME.CA", "ACME.Email", "ACME.AskURL is required",
				"AltHTTPPort", "AltTLSALPNPort", "no challenge",
			},
		},
		{
			name: "acme without email or hosts",
			cfg:  Config{Mode: ModeACME, DataDir: "/data", ACME: ACMEConfig{OnDemand: false}},
			want: []string{"Hosts is required in acme mode", "ACME.Email is required"},
		},
		{
			name: "acme ask url not http",
			cfg:  Config{Mode: ModeACME, DataDir: "/data", ACME: ACMEConfig{Email: "a@b.c", OnDemand: true, AskURL: "file:///etc/passwd"}},
			want: []string{"ACME.AskURL"},
		},
		{
			name: "files without paths",
			cfg:  Config{Mode: ModeFiles},
			want: []string{"Files.Cert is required", "Files.Key is required"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %d problems", len(tc.want))
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) {
				t.Fatalf("Validate() = %T, want a joined error", err)
			}
			if got := len(joined.Unwrap()); got != len(tc.want) {
				t.Errorf("Validate() reported %d problems, want %d:\n%v", got, len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, missing %q", err, w)
				}
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(t.Context(), Config{Mode: ModeInternal}, nil)
	if err == nil || !strings.Contains(err.Error(), "DataDir is required") {
		t.Fatalf("New() error = %v, want the validation problems", err)
	}
}

// TestTLSConfigPolicy checks the policy every mode's listener config shares.
func TestTLSConfigPolicy(t *testing.T) {
	aead := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	for _, extra := range [][]string{nil, {"acme-tls/1"}} {
		cfg := serverTLSConfig(nil, extra...)
		if len(cfg.CipherSuites) == 0 {
			t.Error("no TLS 1.2 cipher suites set; Go's defaults include CBC suites")
		}
		if cfg.MinVersion != tls.VersionTLS12 {
			t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
		}
		for _, id := range cfg.CipherSuites {
			if !slices.Contains(aead, id) {
				t.Errorf("cipher suite %s is not an ECDHE AEAD suite", tls.CipherSuiteName(id))
			}
		}
		if want := append([]string{"h2", "http/1.1"}, extra...); !slices.Equal(cfg.NextProtos, want) {
			t.Errorf("NextProtos = %q, want %q", cfg.NextProtos, want)
		}
	}
}
