-- One row that Ping rewrites, so that readiness proves the file takes writes.
-- It holds nothing else; beats only counts the Pings since it was created.
CREATE TABLE heartbeat (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	beats INTEGER NOT NULL
) STRICT;
