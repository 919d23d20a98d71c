package compose

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	opacompile "github.com/open-policy-agent/opa/v1/compile"

	"github.com/portcullis/portcullis/config"
)

// TestServeLoadsASignedBundle builds the repository's rego/ into a signed
// bundle as `opa build --signing-key` does and loads it the way serve
// does, with the key from its file; an unsigned build is refused.
func TestServeLoadsASignedBundle(t *testing.T) {
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	signing, public := filepath.Join(dir, "signing.pem"), filepath.Join(dir, "public.pem")
	writeTestFile(t, signing, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}))
	writeTestFile(t, public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	build := func(name string, sc *bundle.SigningConfig) string {
		var out bytes.Buffer
		c := opacompile.New().WithAsBundle(true).WithRegoVersion(ast.RegoV1).WithPaths("../../rego").WithOutput(&out)
		if sc != nil {
			c = c.WithBundleSigningConfig(sc)
		}
		if err := c.Build(t.Context()); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, name)
		writeTestFile(t, file, out.Bytes())
		return file
	}
	signed := build("signed.tar.gz", bundle.NewSigningConfig(signing, "ES256", ""))
	unsigned := build("unsigned.tar.gz", nil)
	logger := slog.New(slog.DiscardHandler)

	engine, dlog, err := NewPolicyEngine(t.Context(), config.Policies{Bundle: signed, BundlePublicKey: public}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	dlog.Close()
	if engine.Revision() == "" {
		t.Fatal("no revision")
	}
	if _, _, err := NewPolicyEngine(t.Context(), config.Policies{Bundle: unsigned, BundlePublicKey: public}, logger, nil); err == nil ||
		!strings.Contains(err.Error(), "signatures") {
		t.Fatalf("unsigned bundle: %v", err)
	}
	if _, _, err := NewPolicyEngine(t.Context(), config.Policies{Bundle: signed, BundlePublicKey: filepath.Join(dir, "none.pem")}, logger, nil); err == nil ||
		!strings.Contains(err.Error(), "bundle_public_key") {
		t.Fatalf("missing key: %v", err)
	}
	if !watchesPolicies(config.Policies{Bundle: signed, Watch: new(true)}) || watchesPolicies(config.Policies{Watch: new(true)}) {
		t.Error("watchesPolicies")
	}
}

func writeTestFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
