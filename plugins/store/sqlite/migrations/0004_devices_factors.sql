-- The security phone and email on the profile, registered devices and second
-- factors. Users from before the upgrade have no phone and no email.
-- Devices and factors carry a user ID but no foreign key, as sessions do:
-- other stores keep them apart from users, and the contract does not tie
-- them together.

ALTER TABLE users ADD COLUMN security_phone TEXT NOT NULL DEFAULT ''; -- E.164, or '' for none
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';

-- Listed most recently used first; removed by Sweep once expired.
CREATE TABLE devices (
	id           TEXT PRIMARY KEY, -- hex SHA-256 of the device cookie's secret
	user_id      TEXT NOT NULL,
	name         TEXT NOT NULL,
	created_at   INTEGER,
	last_used_at INTEGER,
	expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX devices_user_id ON devices (user_id);
CREATE INDEX devices_expires_at ON devices (expires_at);

-- Listed oldest first: by created_at, then by insertion (rowid).
CREATE TABLE factors (
	id           TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL,
	kind         TEXT NOT NULL,
	name         TEXT NOT NULL,
	secret       BLOB NOT NULL, -- opaque; kept whole
	counter      INTEGER NOT NULL DEFAULT 0, -- the replay guard
	created_at   INTEGER,
	last_used_at INTEGER
) STRICT;

CREATE INDEX factors_user_id ON factors (user_id);
