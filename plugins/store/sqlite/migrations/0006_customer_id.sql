-- A profile created online records the customer ID it was created for and
-- the customer's consent to electronic delivery (when, and which version of
-- the text). One customer ID has at most one profile; profiles from before
-- the upgrade, and those an administrator makes, have none ('') and any
-- number of them may.

ALTER TABLE users ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN consent_at INTEGER;
ALTER TABLE users ADD COLUMN consent_version TEXT NOT NULL DEFAULT '';

CREATE UNIQUE INDEX users_customer_id ON users (customer_id) WHERE customer_id <> '';
