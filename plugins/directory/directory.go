package directory

import (
	_ "embed"
	"errors"
	"log/slog"
	"time"

	"github.com/portcullis/portcullis/gateway/selfservice"
)

// Config chooses and configures a directory: File for a customer file, or
// URL (with TokenFile, and optionally CAFile and Timeout) for the bank's
// HTTP service. Exactly one of File and URL is set.
type Config struct {
	// File is a customer file, ".json" or ".csv"; see the package
	// documentation for both formats.
	File string
	// URL is the HTTP directory's base URL: https, or http to a loopback
	// host only. Requests go to URL + "/verify", "/identify" and
	// "/customer".
	URL string
	// TokenFile holds the bearer token sent to URL; required with URL. It
	// must not be readable or writable by group or others (chmod 600).
	TokenFile string
	// CAFile, when set, is a PEM file of the certificate authorities that
	// URL's certificate is verified against, instead of the system's.
	CAFile string
	// Timeout bounds one HTTP request, connection included; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Logger receives load and failure lines, never identity data; nil
	// logs nothing. Set by the caller, not by configuration.
	Logger *slog.Logger
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Reloader is implemented by both directories: a File re-reads its file,
// an HTTP directory its token file. A failed reload keeps what was loaded.
type Reloader interface {
	Reload() error
}

// Open returns the directory cfg describes: a *File when cfg.File is set,
// an *HTTP when cfg.URL is. Both also implement Reloader.
func Open(cfg Config) (selfservice.Directory, error) {
	switch {
	case cfg.File != "" && cfg.URL != "":
		return nil, errors.New("directory: set file or url, not both")
	case cfg.File != "":
		return OpenFile(cfg)
	case cfg.URL != "":
		return OpenHTTP(cfg)
	}
	return nil, errors.New("directory: set file (a customer file) or url (an HTTP directory)")
}

// sample is testdata/customers.json, the demo's customers; a test keeps
// the two identical.
//
//go:embed sample.json
var sample []byte

// SampleJSON returns the sample customer file (JSON format): the demo's
// customers, with obviously fake identities.
func SampleJSON() []byte {
	return append([]byte(nil), sample...)
}

// Sample returns a directory of the sample customers, for the demo and
// tests. Its Reload re-reads the embedded copy.
func Sample(logger *slog.Logger) (*File, error) {
	f := newFile("customers.json", false, logger, func() ([]byte, error) { return sample, nil })
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}
