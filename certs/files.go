package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// reloadInterval is how often, at most, the files are checked for changes;
// the check runs during a handshake, so no goroutine is needed.
const reloadInterval = time.Second

// fileCert serves a certificate read from PEM files and re-reads them when
// their contents change. A change that does not load (for example a
// certificate written before its key) keeps the previous certificate.
type fileCert struct {
	certPath, keyPath string
	now               func() time.Time
	logger            *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certPEM   []byte
	keyPEM    []byte
	checkedAt time.Time
	// badCert and badKey hold the last contents that failed to load, so
	// that a failure is logged once rather than at every check.
	badCert, badKey []byte
}

func newFiles(cfg Config, hosts []string, logger *slog.Logger) (*Manager, error) {
	fc := &fileCert{certPath: cfg.Files.Cert, keyPath: cfg.Files.Key, now: time.Now, logger: logger}
	certPEM, keyPEM, cert, err := fc.load()
	if err != nil {
		return nil, err
	}
	fc.cert, fc.certPEM, fc.keyPEM, fc.checkedAt = cert, certPEM, keyPEM, fc.now()
	checkCovers(cert.Leaf, hosts, fc.now(), logger)
	logger.Info("certificates ready", "mode", ModeFiles, "cert", fc.certPath,
		"not_after", cert.Leaf.NotAfter)
	return &Manager{tlsConfig: serverTLSConfig(fc.getCertificate)}, nil
}

// load reads and parses both files.
func (fc *fileCert) load() (certPEM, keyPEM []byte, cert *tls.Certificate, err error) {
	certPEM, keyPEM, err = fc.read()
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err = fc.parse(certPEM, keyPEM)
	return certPEM, keyPEM, cert, err
}

func (fc *fileCert) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(fc.certPath); err != nil {
		return nil, nil, fmt.Errorf("certs: reading certificate: %w", err)
	}
	if keyPEM, err = os.ReadFile(fc.keyPath); err != nil {
		return nil, nil, fmt.Errorf("certs: reading key: %w", err)
	}
	return certPEM, keyPEM, nil
}

func (fc *fileCert) parse(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: %s and %s are not a certificate and its key: %w", fc.certPath, fc.keyPath, err)
	}
	return &pair, nil
}

func (fc *fileCert) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if now := fc.now(); now.Sub(fc.checkedAt) >= reloadInterval {
		fc.checkedAt = now
		fc.reloadLocked()
	}
	return fc.cert, nil
}

// reloadLocked replaces the certificate if either file changed and the pair
// loads. A pair that does not load is reported once. fc.mu must be held.
func (fc *fileCert) reloadLocked() {
	certPEM, keyPEM, err := fc.read()
	if err != nil {
		fc.reportLocked(nil, nil, err)
		return
	}
	if bytes.Equal(certPEM, fc.certPEM) && bytes.Equal(keyPEM, fc.keyPEM) {
		fc.badCert, fc.badKey = nil, nil
		return
	}
	cert, err := fc.parse(certPEM, keyPEM)
	if err != nil {
		fc.reportLocked(certPEM, keyPEM, err)
		return
	}
	fc.cert, fc.certPEM, fc.keyPEM = cert, certPEM, keyPEM
	fc.badCert, fc.badKey = nil, nil
	fc.logger.Info("certificate reloaded", "cert", fc.certPath, "not_after", cert.Leaf.NotAfter)
}

func (fc *fileCert) reportLocked(certPEM, keyPEM []byte, err error) {
	if fc.badCert != nil && bytes.Equal(certPEM, fc.badCert) && bytes.Equal(keyPEM, fc.badKey) {
		return
	}
	fc.badCert, fc.badKey = append([]byte{}, certPEM...), append([]byte{}, keyPEM...)
	fc.logger.Error("certificate reload failed; serving the previous one", "cert", fc.certPath, "error", err)
}

// checkCovers logs what is likely a misconfiguration: a certificate that has
// expired or does not name a configured host.
func checkCovers(leaf *x509.Certificate, hosts []string, now time.Time, logger *slog.Logger) {
	if now.After(leaf.NotAfter) {
		logger.Warn("certificate has expired", "not_after", leaf.NotAfter)
	}
	for _, h := range hosts {
		// A certificate for *.example.com covers any one label there.
		if err := leaf.VerifyHostname(strings.Replace(h, "*.", "x.", 1)); err != nil {
			logger.Warn("certificate does not cover host", "host", h)
		}
	}
}
