-- The schema as first released. Instants are timestamptz (microseconds, kept
-- as instants whatever the session's time zone); NULL is the zero time.
-- Text that the gateway compares or sorts byte for byte (usernames, IDs) is
-- COLLATE "C", so that ordering does not follow the database's locale.
-- Sessions, devices and factors carry a user ID but no foreign key: other
-- stores keep them apart from users, and the contract does not tie them
-- together. The seq columns record the order rows were added in, the tie
-- breaker the lists need.

CREATE TABLE users (
	id               text COLLATE "C" PRIMARY KEY,
	username         text COLLATE "C" NOT NULL UNIQUE,
	display_name     text NOT NULL,
	password_hash    text NOT NULL,
	failed_logins    integer NOT NULL DEFAULT 0,
	step_up_failures integer NOT NULL DEFAULT 0,
	locked           boolean NOT NULL DEFAULT false,
	locked_at        timestamptz,
	products         text[] NOT NULL DEFAULT '{}', -- route names
	security_phone   text NOT NULL DEFAULT '', -- E.164, or '' for none
	email            text NOT NULL DEFAULT '',
	customer_id      text COLLATE "C" NOT NULL DEFAULT '', -- '' for a profile made otherwise
	consent_at       timestamptz,
	consent_version  text NOT NULL DEFAULT '',
	created_at       timestamptz,
	updated_at       timestamptz
);

-- One customer ID has at most one profile; any number have none.
CREATE UNIQUE INDEX users_customer_id ON users (customer_id) WHERE customer_id <> '';

-- A counter per key and fixed window. The window is named by its length and
-- start in Unix nanoseconds (exact integers, so that a window is one key);
-- window_end is the instant it ends, for Sweep.
CREATE TABLE hits (
	name         text COLLATE "C" NOT NULL,
	window_ns    bigint NOT NULL,
	window_start bigint NOT NULL,
	window_end   timestamptz NOT NULL,
	count        integer NOT NULL,
	PRIMARY KEY (name, window_ns, window_start)
);

CREATE INDEX hits_window_end ON hits (window_end);

CREATE TABLE sessions (
	id         text COLLATE "C" PRIMARY KEY, -- hex SHA-256 of the cookie token
	login_id   text COLLATE "C" NOT NULL,
	user_id    text COLLATE "C" NOT NULL,
	host       text NOT NULL,
	methods    text[] NOT NULL DEFAULT '{}', -- RFC 8176 method names
	auth_time  timestamptz,
	last_seen  timestamptz,
	expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_login_id ON sessions (login_id);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Single-use, expiring records of every kind; the kind is part of the key,
-- so a record is found only under its own.
CREATE TABLE records (
	kind       text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	subject    text NOT NULL,
	payload    bytea NOT NULL, -- opaque; an empty payload is zero bytes
	attempts   integer NOT NULL DEFAULT 0,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (kind, id)
);

CREATE INDEX records_expires_at ON records (expires_at);

CREATE TABLE devices (
	id           text COLLATE "C" PRIMARY KEY, -- hex SHA-256 of the device cookie's secret
	user_id      text COLLATE "C" NOT NULL,
	name         text NOT NULL,
	created_at   timestamptz,
	last_used_at timestamptz,
	expires_at   timestamptz NOT NULL,
	seq          bigint GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX devices_user_id ON devices (user_id);
CREATE INDEX devices_expires_at ON devices (expires_at);

CREATE TABLE factors (
	id           text COLLATE "C" PRIMARY KEY,
	user_id      text COLLATE "C" NOT NULL,
	kind         text NOT NULL,
	name         text NOT NULL,
	secret       bytea NOT NULL, -- opaque; kept whole
	counter      bigint NOT NULL DEFAULT 0, -- the replay guard
	created_at   timestamptz,
	last_used_at timestamptz,
	seq          bigint GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX factors_user_id ON factors (user_id);

CREATE TABLE signing_keys (
	id          text COLLATE "C" PRIMARY KEY,
	private_key bytea NOT NULL,
	created_at  timestamptz,
	retired_at  timestamptz,
	seq         bigint GENERATED ALWAYS AS IDENTITY
);

-- The one row Ping rewrites, so that readiness proves the database takes
-- writes (a standby or a read-only transaction default fails it).
CREATE TABLE heartbeat (
	id    integer PRIMARY KEY CHECK (id = 1),
	beats bigint NOT NULL
);
