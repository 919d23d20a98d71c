package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"
)

const (
	// rootLifetime is long: the root is installed in trust stores by hand.
	rootLifetime = 10 * 365 * 24 * time.Hour
	// leafLifetime is short; certmagic renews a leaf once a third of its
	// lifetime is left.
	leafLifetime = 7 * 24 * time.Hour
	// backdate allows for clients whose clocks run a little slow.
	backdate = 5 * time.Minute
)

// Paths under the data directory.
func caDir(dataDir string) string        { return filepath.Join(dataDir, "ca") }
func rootKeyPath(dataDir string) string  { return filepath.Join(caDir(dataDir), "root.key") }
func rootCertPath(dataDir string) string { return filepath.Join(caDir(dataDir), "root.crt") }
func rootPEMPath(dataDir string) string  { return filepath.Join(dataDir, "ca.pem") }
func storageDir(dataDir string) string   { return filepath.Join(dataDir, "certmagic") }

// KeyFiles returns the private key files that cfg keeps on disk and that
// start-up checks for loose permissions: the local CA's key in internal mode,
// the configured key in files mode. Keys that certmagic stores are written
// 0600 by certmagic itself.
func KeyFiles(cfg Config) []string {
	switch cfg.Mode {
	case ModeInternal:
		return []string{rootKeyPath(cfg.DataDir)}
	case ModeFiles:
		if cfg.Files.Key != "" {
			return []string{cfg.Files.Key}
		}
	}
	return nil
}

// localCA is the internal mode's certificate authority.
type localCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// loadOrCreateCA loads the root from dataDir, creating it on first run.
func loadOrCreateCA(dataDir string, now time.Time, random io.Reader, logger *slog.Logger) (*localCA, error) {
	ca, err := loadCA(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createCA(dataDir, now, random); err != nil {
			return nil, err
		}
		if ca, err = loadCA(dataDir); err != nil {
			return nil, err
		}
		logger.Info("local ca created", "path", caDir(dataDir), "fingerprint", ca.fingerprint())
	} else if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(rootKeyPath(dataDir)); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("local ca key is readable by other users", "path", rootKeyPath(dataDir), "mode", fi.Mode().Perm().String())
	}
	if now.After(ca.cert.NotAfter) {
		return nil, fmt.Errorf("certs: local CA root %s expired on %s; remove %s to create a new one",
			rootCertPath(dataDir), ca.cert.NotAfter.Format(time.DateOnly), caDir(dataDir))
	}
	if err := writeFileAtomic(rootPEMPath(dataDir), ca.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("certs: writing local CA root: %w", err)
	}
	return ca, nil
}

// loadCA reads the root certificate and key. A missing CA directory is
// reported as fs.ErrNotExist; anything else that is wrong is an error naming
// the file.
func loadCA(dataDir string) (*localCA, error) {
	keyPEM, keyErr := os.ReadFile(rootKeyPath(dataDir))
	certPEM, certErr := os.ReadFile(rootCertPath(dataDir))
	switch {
	case errors.Is(keyErr, fs.ErrNotExist) && errors.Is(certErr, fs.ErrNotExist):
		return nil, fs.ErrNotExist
	case keyErr != nil:
		return nil, fmt.Errorf("certs: reading local CA key: %w", keyErr)
	case certErr != nil:
		return nil, fmt.Errorf("certs: reading local CA root: %w", certErr)
	}

	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("certs: %s: no PKCS #8 PRIVATE KEY block", rootKeyPath(dataDir))
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", rootKeyPath(dataDir), err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: %s: key of type %T cannot sign", rootKeyPath(dataDir), k)
	}

	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certs: %s: no CERTIFICATE block", rootCertPath(dataDir))
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", rootCertPath(dataDir), err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certs: %s is not a CA certificate", rootCertPath(dataDir))
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("certs: %s does not match %s", rootKeyPath(dataDir), rootCertPath(dataDir))
	}

	return &localCA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
	}, nil
}

// createCA makes a new root in a scratch directory and renames it into
// place, so that a concurrent start on the same data directory ends with
// one root that both use.
func createCA(dataDir string, now time.Time, random io.Reader) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return fmt.Errorf("certs: generating local CA key: %w", err)
	}
	serial, err := randomSerial(random)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Portcullis"},
			// The serial tells apart the roots of different installations
			// in a trust store.
			CommonName: "Portcullis local CA " + hex.EncodeToString(serial.Bytes()[:4]),
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(rootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("certs: creating local CA root: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: encoding local CA key: %w", err)
	}

	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("certs: creating data directory: %w", err)
	}
	tmp, err := os.MkdirTemp(dataDir, ".ca-")
	if err != nil {
		return fmt.Errorf("certs: creating local CA: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "root.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("certs: writing local CA key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "root.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("certs: writing local CA root: %w", err)
	}
	if err := os.Rename(tmp, caDir(dataDir)); err != nil {
		if _, statErr := os.Stat(rootKeyPath(dataDir)); statErr == nil {
			return nil // another process created it first; use that one
		}
		return fmt.Errorf("certs: creating local CA: %w", err)
	}
	return nil
}

func (ca *localCA) fingerprint() string {
	sum := sha256.Sum256(ca.cert.Raw)
	return hex.EncodeToString(sum[:])
}

// localIssuer issues leaf certificates from the local CA; it implements
// certmagic.Issuer. It signs only the configured hosts.
type localIssuer struct {
	ca     *localCA
	hosts  []string
	now    func() time.Time
	random io.Reader
}

var _ certmagic.Issuer = (*localIssuer)(nil)

// IssuerKey distinguishes certificates of one root from those of another,
// so that certificates signed by a replaced root are not served.
func (iss *localIssuer) IssuerKey() string {
	return "portcullis-local-" + iss.ca.fingerprint()[:16]
}

// Issue signs a certificate for the names in csr.
func (iss *localIssuer) Issue(_ context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certs: local CA: invalid CSR: %w", err)
	}
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return nil, errors.New("certs: local CA: only DNS names and IP addresses are issued")
	}
	dnsNames := slices.Clone(csr.DNSNames)
	if cn := csr.Subject.CommonName; cn != "" && net.ParseIP(cn) == nil && !slices.Contains(dnsNames, cn) {
		dnsNames = append(dnsNames, cn)
	}
	if len(dnsNames)+len(csr.IPAddresses) == 0 {
		return nil, errors.New("certs: local CA: CSR names no host")
	}
	for _, n := range dnsNames {
		if !slices.Contains(iss.hosts, n) {
			return nil, fmt.Errorf("certs: local CA: %q is not a configured host", n)
		}
	}
	for _, ip := range csr.IPAddresses {
		if !slices.Contains(iss.hosts, ip.String()) {
			return nil, fmt.Errorf("certs: local CA: %s is not a configured host", ip)
		}
	}

	serial, err := randomSerial(iss.random)
	if err != nil {
		return nil, err
	}
	now := iss.now()
	notAfter := now.Add(leafLifetime)
	if notAfter.After(iss.ca.cert.NotAfter) {
		notAfter = iss.ca.cert.NotAfter
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	subject := pkix.Name{}
	if len(dnsNames) > 0 {
		subject.CommonName = dnsNames[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		DNSNames:              dnsNames,
		IPAddresses:           csr.IPAddresses,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(iss.random, tmpl, iss.ca.cert, csr.PublicKey, iss.ca.key)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA: signing: %w", err)
	}
	return &certmagic.IssuedCertificate{
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

func randomSerial(random io.Reader) (*big.Int, error) {
	n, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certs: generating serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

// writeFileAtomic replaces path with data unless it already holds exactly
// that.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// newInternal sets up internal mode: the local CA as certmagic's issuer.
func newInternal(ctx context.Context, cfg Config, hosts []string, logger *slog.Logger) (*Manager, error) {
	ca, err := loadOrCreateCA(cfg.DataDir, time.Now(), rand.Reader, logger)
	if err != nil {
		return nil, err
	}
	iss := &localIssuer{ca: ca, hosts: hosts, now: time.Now, random: rand.Reader}
	magic, cache := newMagic(cfg, hosts, logger, certmagic.Config{
		Issuers: []certmagic.Issuer{iss},
		// Leaves from the local CA name no OCSP responder.
		OCSP: certmagic.OCSPConfig{DisableStapling: true},
	})
	m := &Manager{
		tlsConfig: serverTLSConfig(magic.GetCertificate),
		cache:     cache,
		rootPEM:   ca.certPEM,
	}
	if err := magic.ManageSync(ctx, hosts); err != nil {
		m.Close()
		return nil, fmt.Errorf("certs: issuing local certificates: %w", err)
	}
	logger.Info("certificates ready", "mode", ModeInternal, "hosts", hosts,
		"root", rootPEMPath(cfg.DataDir))
	return m, nil
}
