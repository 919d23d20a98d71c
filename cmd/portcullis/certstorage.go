package main

import (
	"github.com/caddyserver/certmagic"

	"github.com/portcullis/portcullis/plugins/store/combined"
)

// certStorer is a durable store that keeps certmagic's storage as well, so
// that every replica on it shares certificates, ACME accounts and locks
// (the PostgreSQL store).
type certStorer interface {
	CertStorage() certmagic.Storage
}

// certStorage returns the certificate storage of db's durable store when it
// keeps one, and nil otherwise: certificates then stay in files under
// data_dir.
func certStorage(db *combined.Store) certmagic.Storage {
	if s, ok := db.Durable().(certStorer); ok {
		return s.CertStorage()
	}
	return nil
}
