-- Single-use, expiring records of every kind (the cross-host exchange code,
-- security codes, recovery tokens, WebAuthn challenges) replace the
-- exchange-only grants. A record is found only under its own kind, so the
-- kind is part of the key. Exchange codes outstanding at the upgrade (they
-- live seconds) are dropped with the grants table and fail as expired codes
-- do.

CREATE TABLE records (
	kind       TEXT NOT NULL,
	id         TEXT NOT NULL,
	subject    TEXT NOT NULL,
	payload    BLOB NOT NULL, -- opaque; an empty payload is a zero-length blob
	attempts   INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;

CREATE INDEX records_expires_at ON records (expires_at);

DROP TABLE grants; -- and its index, grants_expires_at
