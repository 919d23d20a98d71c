package main

import (
	"path/filepath"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/portcullis/portcullis/plugins/store/combined"
	"github.com/portcullis/portcullis/plugins/store/postgres"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// The PostgreSQL store keeps certmagic's storage; SQLite does not.
var _ certStorer = (*postgres.Store)(nil)

// withCertStorage is a durable store that keeps a certificate storage too,
// as the PostgreSQL store does.
type withCertStorage struct {
	combined.Durable
	storage certmagic.Storage
}

func (s withCertStorage) CertStorage() certmagic.Storage { return s.storage }

// The certificates go to the durable store's certificate storage when it
// keeps one, and to files under data_dir (nil) when it does not.
func TestCertStorageComesFromTheDurableStore(t *testing.T) {
	lite, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	plain, err := combined.New(lite, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := certStorage(plain); s != nil {
		t.Errorf("certStorage of a SQLite store = %v, want nil (files under data_dir)", s)
	}
	shared := &certmagic.FileStorage{Path: t.TempDir()}
	keeping, err := combined.New(withCertStorage{lite, shared}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := certStorage(keeping); s != shared {
		t.Errorf("certStorage = %v, want the durable store's %v", s, shared)
	}
}
