-- The first schema. Times are UTC Unix nanoseconds; NULL is the zero time.
-- Rows keyed by a hash (sessions, grants) use the hex string the gateway gives.
-- Sessions carry a user ID but no foreign key: other stores keep sessions
-- apart from users, and the contract does not tie them together.

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	display_name  TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked        INTEGER NOT NULL DEFAULT 0,
	locked_at     INTEGER,
	products      TEXT NOT NULL DEFAULT '[]', -- JSON array of route names
	created_at    INTEGER,
	updated_at    INTEGER
) STRICT;

-- One row per key and window; finished windows are removed by AddHit and Sweep.
CREATE TABLE hits (
	name         TEXT NOT NULL,
	window_ns    INTEGER NOT NULL,
	window_start INTEGER NOT NULL,
	window_end   INTEGER NOT NULL,
	count        INTEGER NOT NULL,
	PRIMARY KEY (name, window_ns, window_start)
) STRICT, WITHOUT ROWID;

CREATE INDEX hits_window_end ON hits (window_end);

CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	login_id   TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	host       TEXT NOT NULL,
	methods    TEXT NOT NULL, -- JSON array of RFC 8176 method names
	auth_time  INTEGER,
	last_seen  INTEGER,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_login_id ON sessions (login_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE grants (
	id         TEXT PRIMARY KEY,
	session_id TEXT NOT NULL,
	host       TEXT NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX grants_expires_at ON grants (expires_at);

-- Listed oldest first: by created_at, then by insertion (rowid).
CREATE TABLE signing_keys (
	id          TEXT PRIMARY KEY,
	private_key BLOB NOT NULL,
	created_at  INTEGER,
	retired_at  INTEGER
) STRICT;
