package policies

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// Bundle configures policies loaded from an OPA bundle: the .tar.gz that
// the stock `opa build` writes (Rego modules, data.json, an optional
// .manifest and, when signed with `opa build --signing-key` or `opa sign`,
// .signatures.json).
type Bundle struct {
	// Path is the bundle file.
	Path string
	// PublicKey is the PEM public key (RSA, ECDSA or Ed25519) whose
	// signature every bundle must carry. Empty accepts unsigned bundles,
	// which only AllowUnsigned may ask for.
	PublicKey []byte
	// KeyID is the key ID the signature names (`opa build
	// --verification-key-id`, "default" when empty).
	KeyID string
	// Algorithm is the signature's JWS algorithm; empty means the one that
	// fits PublicKey (RS256, ES256/ES384/ES512, EdDSA).
	Algorithm string
	// AllowUnsigned accepts a bundle without a signature when PublicKey is
	// empty. Without it, New refuses a bundle configuration without a key.
	AllowUnsigned bool
}

// maxBundleBytes bounds what a bundle may hold once decompressed.
const maxBundleBytes = 64 << 20

// verification returns the OPA verification config, nil for unsigned
// bundles.
func (b *Bundle) verification() (*bundle.VerificationConfig, error) {
	if len(b.PublicKey) == 0 {
		if !b.AllowUnsigned {
			return nil, errors.New("a bundle needs a public key to verify its signature (or unsigned bundles allowed explicitly)")
		}
		return nil, nil
	}
	alg := b.Algorithm
	if alg == "" {
		var err error
		if alg, err = keyAlgorithm(b.PublicKey); err != nil {
			return nil, err
		}
	}
	id := b.KeyID
	if id == "" {
		id = "default"
	}
	// Not bundle.NewKeyConfig: it would take a key that names an existing
	// file as that file's path.
	kc := &bundle.KeyConfig{Key: string(b.PublicKey), Algorithm: alg}
	return bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{id: kc}, id, "", nil), nil
}

// keyAlgorithm is the JWS algorithm that fits a PEM public key.
func keyAlgorithm(pemKey []byte) (string, error) {
	block, _ := pem.Decode(pemKey)
	if block == nil {
		return "", errors.New("bundle public key: not PEM")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("bundle public key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		return "RS256", nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
	case ed25519.PublicKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("bundle public key: unsupported key type %T", key)
}

// bundleReader reads a bundle file for the engine, verifying and unpacking
// it only when its bytes changed since the last good read: Watch reads it
// every second.
type bundleReader struct {
	Bundle
	mu  sync.Mutex
	sum [sha256.Size]byte
	src *sources // of the last good read, nil before one
}

func (r *bundleReader) read() (*sources, error) {
	raw, err := os.ReadFile(r.Path)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	sum := sha256.Sum256(raw)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src != nil && sum == r.sum {
		return r.src, nil
	}
	src, err := readBundle(&r.Bundle, raw)
	if err != nil {
		return nil, err
	}
	r.sum, r.src = sum, src
	return src, nil
}

// readBundle verifies and unpacks a bundle's bytes into sources: its
// modules under their paths in the bundle, and its data as data.json at
// the root, so that a bundle and the directory it was built from compile
// alike. A bundle that fails verification (unsigned when a key is set, a
// file changed or added after signing, another key) is an error, and the
// serving policies stay.
func readBundle(b *Bundle, raw []byte) (*sources, error) {
	vc, err := b.verification()
	if err != nil {
		return nil, err
	}
	r := bundle.NewReader(bytes.NewReader(raw)).
		WithRegoVersion(ast.RegoV1).
		WithSizeLimitBytes(maxBundleBytes)
	if vc != nil {
		r = r.WithBundleVerificationConfig(vc)
	} else {
		r = r.WithSkipBundleVerification(true)
	}
	bd, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", b.Path, err)
	}
	src := &sources{files: map[string][]byte{}}
	for _, m := range bd.Modules {
		name := path.Clean(strings.TrimPrefix(m.Path, "/"))
		if isTestFile(name) {
			continue
		}
		src.files[name] = m.Raw
	}
	if len(bd.Data) > 0 {
		data, err := json.Marshal(bd.Data) // keys sorted: the revision is stable
		if err != nil {
			return nil, fmt.Errorf("bundle %s: data: %w", b.Path, err)
		}
		src.files["data.json"] = data
	}
	src.revision = src.hash()
	return src, nil
}
