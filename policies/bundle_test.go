package policies

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	opacompile "github.com/open-policy-agent/opa/v1/compile"
)

// bundleKey is a signing key pair as `openssl` would write it: the private
// key in a PEM file for `opa build --signing-key`, the public key as PEM.
type bundleKey struct {
	privateFile string
	public      []byte
}

func newBundleKey(t *testing.T) bundleKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		t.Fatal(err)
	}
	return bundleKey{privateFile: file, public: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})}
}

// buildBundle builds dir into a bundle file as `opa build -b dir` does
// (the same compile package), signed with key unless key is nil.
func buildBundle(t *testing.T, dir string, key *bundleKey) string {
	t.Helper()
	var out bytes.Buffer
	// From inside dir, as `cd rego && opa build -b .` names the modules.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd) //nolint:errcheck // back to where the test was
	c := opacompile.New().WithAsBundle(true).WithRegoVersion(ast.RegoV1).WithPaths(".").WithOutput(&out)
	if key != nil {
		c = c.WithBundleSigningConfig(bundle.NewSigningConfig(key.privateFile, "ES256", ""))
	}
	if err := c.Build(t.Context()); err != nil {
		t.Fatalf("build bundle: %v", err)
	}
	file := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := os.WriteFile(file, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// rewriteBundle rewrites the bundle file's tar entries through edit, which
// may change a file's contents; it returns the new entries to add.
func rewriteBundle(t *testing.T, file string, edit func(name string, b []byte) []byte, add map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	put := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		put(h.Name, edit(h.Name, b))
	}
	for name, content := range add {
		put(name, []byte(content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSignedBundleDecidesAsItsDirectory(t *testing.T) {
	key := newBundleKey(t)
	dir := policyDir(t)
	e := newEngine(t, Config{Bundle: &Bundle{Path: buildBundle(t, dir, &key), PublicKey: key.public}})
	fromDir := newEngine(t, Config{Dir: dir})
	for _, in := range []Input{cleanLogin(), vpnLogin(), fullInput(), accessInput("/transfers/new", testNow.Unix()-60)} {
		got, want := e.Decide(t.Context(), in), fromDir.Decide(t.Context(), in)
		got.Revision, want.Revision = "", ""
		if !equalDecisions(got, want) {
			t.Errorf("%s: bundle %+v, directory %+v", in.Point, got, want)
		}
	}
}

func equalDecisions(a, b Decision) bool {
	return a.Allow == b.Allow && a.Reason == b.Reason && strings.Join(a.StepUp, ",") == strings.Join(b.StepUp, ",") &&
		a.Lock == b.Lock && a.Message == b.Message
}

func TestBundleVerification(t *testing.T) {
	key, other := newBundleKey(t), newBundleKey(t)
	dir := policyDir(t)
	tests := []struct {
		name    string
		bundle  func(t *testing.T) Bundle
		wantErr string // "" loads
	}{
		{"signed", func(t *testing.T) Bundle {
			return Bundle{Path: buildBundle(t, dir, &key), PublicKey: key.public}
		}, ""},
		{"unsigned, with a key", func(t *testing.T) Bundle {
			return Bundle{Path: buildBundle(t, dir, nil), PublicKey: key.public}
		}, ".signatures.json"},
		{"signed by another key", func(t *testing.T) Bundle {
			return Bundle{Path: buildBundle(t, dir, &other), PublicKey: key.public}
		}, "verif"},
		{"a module changed after signing", func(t *testing.T) Bundle {
			file := buildBundle(t, dir, &key)
			rewriteBundle(t, file, func(name string, b []byte) []byte {
				if strings.HasSuffix(name, "ip.rego") {
					return bytes.Replace(b, []byte("anonymous_vpn"), []byte("anonymous_xxx"), 1)
				}
				return b
			}, nil)
			return Bundle{Path: file, PublicKey: key.public}
		}, "digest"},
		{"data changed after signing", func(t *testing.T) Bundle {
			file := buildBundle(t, dir, &key)
			rewriteBundle(t, file, func(name string, b []byte) []byte {
				if strings.HasSuffix(name, "data.json") {
					return bytes.Replace(b, []byte(`"anonymous_vpn":true`), []byte(`"anonymous_vpn":false`), 1)
				}
				return b
			}, nil)
			return Bundle{Path: file, PublicKey: key.public}
		}, "digest"},
		{"a module added after signing", func(t *testing.T) Bundle {
			file := buildBundle(t, dir, &key)
			rewriteBundle(t, file, func(_ string, b []byte) []byte { return b },
				map[string]string{"/extra.rego": "package portcullis.extra\n\nx := 1\n"})
			return Bundle{Path: file, PublicKey: key.public}
		}, "extra.rego"},
		{"unsigned without a key", func(t *testing.T) Bundle {
			return Bundle{Path: buildBundle(t, dir, nil)}
		}, "public key"},
		{"unsigned, allowed explicitly", func(t *testing.T) Bundle {
			return Bundle{Path: buildBundle(t, dir, nil), AllowUnsigned: true}
		}, ""},
		{"not a bundle", func(t *testing.T) Bundle {
			file := filepath.Join(t.TempDir(), "bundle.tar.gz")
			writeFile(t, filepath.Dir(file), "bundle.tar.gz", "not gzip")
			return Bundle{Path: file, PublicKey: key.public}
		}, "bundle"},
		{"missing file", func(t *testing.T) Bundle {
			return Bundle{Path: filepath.Join(t.TempDir(), "none.tar.gz"), PublicKey: key.public}
		}, "no such file"},
		{"not a key", func(t *testing.T) Bundle {
			return Bundle{Path: buildBundle(t, dir, &key), PublicKey: []byte("not a key")}
		}, "not PEM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.bundle(t)
			_, err := New(t.Context(), Config{Bundle: &b})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatal("loaded")
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			case err != nil:
				t.Log(err)
			}
		})
	}
}

func TestBundleReloadKeepsServingOnABadBundle(t *testing.T) {
	key := newBundleKey(t)
	dir := policyDir(t)
	file := buildBundle(t, dir, &key)
	var logs logBuffer
	e := newEngine(t, Config{Bundle: &Bundle{Path: file, PublicKey: key.public}, Logger: testLogger(&logs)})
	ctx := t.Context()
	if d := e.Decide(ctx, vpnLogin()); d.Reason != "ip_anonymous_vpn" {
		t.Fatalf("first bundle: %+v", d)
	}
	first := e.Revision()

	// A new signed bundle that stops blocking VPNs is taken.
	editFile(t, dir, "data.json", `"anonymous_vpn": true`, `"anonymous_vpn": false`)
	install := func(src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	install(buildBundle(t, dir, &key))
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	second := e.Revision()
	if second == first {
		t.Fatal("revision unchanged")
	}
	if d := e.Decide(ctx, vpnLogin()); !d.Allow {
		t.Fatalf("second bundle: %+v", d)
	}

	// An unsigned one, then a tampered one, are refused; the second keeps serving.
	editFile(t, dir, "data.json", `"anonymous_vpn": false`, `"anonymous_vpn": true`)
	install(buildBundle(t, dir, nil))
	if err := e.Reload(ctx); err == nil {
		t.Fatal("unsigned bundle loaded")
	}
	tampered := buildBundle(t, dir, &key)
	rewriteBundle(t, tampered, func(name string, b []byte) []byte {
		return bytes.Replace(b, []byte(`"max_consecutive_failures":5`), []byte(`"max_consecutive_failures":500`), 1)
	}, nil)
	install(tampered)
	if err := e.Reload(ctx); err == nil {
		t.Fatal("tampered bundle loaded")
	}
	if e.Revision() != second {
		t.Fatalf("revision %s, want %s", e.Revision(), second)
	}
	if d := e.Decide(ctx, vpnLogin()); !d.Allow {
		t.Fatalf("after refused bundles: %+v", d)
	}
	if !strings.Contains(logs.String(), "policy reload failed") {
		t.Errorf("refusal not logged:\n%s", logs.String())
	}
}

func TestBundleAndDirectoryAreExclusive(t *testing.T) {
	key := newBundleKey(t)
	dir := policyDir(t)
	if _, err := New(t.Context(), Config{Dir: dir, Bundle: &Bundle{Path: buildBundle(t, dir, &key), PublicKey: key.public}}); err == nil {
		t.Fatal("both accepted")
	}
}

func TestWatchReloadsABundle(t *testing.T) {
	key := newBundleKey(t)
	dir := policyDir(t)
	file := buildBundle(t, dir, &key)
	editFile(t, dir, "data.json", `"anonymous_vpn": true`, `"anonymous_vpn": false`)
	next := buildBundle(t, dir, &key)
	synctest.Test(t, func(t *testing.T) {
		e := newEngine(t, Config{Bundle: &Bundle{Path: file, PublicKey: key.public}})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			e.Watch(ctx, time.Second)
			close(done)
		}()
		if d := e.Decide(ctx, vpnLogin()); d.Reason != "ip_anonymous_vpn" {
			t.Fatalf("first bundle: %+v", d)
		}
		b, err := os.ReadFile(next)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if d := e.Decide(ctx, vpnLogin()); !d.Allow {
			t.Errorf("after the new bundle: %+v", d)
		}
		cancel()
		<-done
	})
}
