-- certmagic's storage (CertStorage): certificates, their keys and metadata,
-- ACME accounts and OCSP staples, shared by every replica, and the locks
-- that let one replica obtain or renew a certificate while the others wait.
-- Keys are slash-separated paths; a "directory" is a prefix of keys and has
-- no row of its own. starts_with(key, prefix) on the C-collated key is a range
-- scan of the primary key's index.

CREATE TABLE cert_storage (
	key      text COLLATE "C" PRIMARY KEY,
	value    bytea NOT NULL, -- opaque; private keys among them
	modified timestamptz NOT NULL -- the database's clock, the one every replica shares
);

-- One row per held lock. A holder refreshes expires_at while it works; a row
-- past expires_at belongs to a holder that is gone, and the next Lock takes
-- it over. token tells holders apart, so that one whose lease lapsed cannot
-- release or extend its successor's.
CREATE TABLE cert_locks (
	name       text COLLATE "C" PRIMARY KEY,
	token      text NOT NULL,
	expires_at timestamptz NOT NULL
);
