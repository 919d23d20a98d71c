-- The sessions of one user are listed (where am I signed in) and deleted
-- together (log out everywhere, a new password): an index by user keeps
-- both from scanning every session.

CREATE INDEX sessions_user_id ON sessions (user_id);
