// Package postgres is the store for gateways that run as several replicas:
// every part of the store contract (customer profiles with their failure
// counters and lock, AddHit counters, sessions, single-use records, devices,
// second factors, assertion signing keys) kept in one PostgreSQL database
// through pgx and its connection pool. Every replica opens the same
// database, so that the five-strike count, single-use codes and logout hold
// across all of them. Store.CertStorage keeps certmagic's storage in the same
// database, so that replicas share certificates, ACME accounts and the locks
// that have each certificate obtained once.
//
// # Configuring the DSN
//
// Open takes a libpq connection string, either a URL or key=value pairs:
//
//	postgres://portcullis@db.internal:5432/portcullis?sslmode=verify-full
//	host=db.internal dbname=portcullis user=portcullis sslmode=verify-full
//
// The gateway reads it from the file the store.postgres.dsn_file
// configuration key names, so that the password it may hold stays out of the
// configuration file and the process list; the file is a secret and should
// be mode 0600. The DSN is never logged and never repeated in an error (an
// error names the host and database at most). The usual libpq settings apply
// (sslmode, sslrootcert, connect_timeout, the PG* environment variables, a
// .pgpass file) and so do pgx's pool settings (pool_max_conns,
// pool_max_conn_lifetime and the rest). Without connect_timeout, connecting
// gives up after five seconds. Statements are prepared and cached per
// connection; behind a pooler that runs in transaction mode, set
// default_query_exec_mode=exec.
//
// # Schema
//
// The tables live in the schema that the DSN's search_path resolves to
// first (by default public); search_path=portcullis keeps them in a schema
// of their own, which must exist. Open pins every connection of the pool to
// that one schema, so a table of the same name further along the path is
// never read instead.
//
// The schema is created and upgraded by numbered migrations embedded in the
// binary and recorded in the schema_migrations table. Open applies the ones
// the database lacks in one transaction that holds a transaction-level
// advisory lock, so replicas starting together apply each migration once and
// a failed upgrade leaves the schema as it was. A database whose schema is
// newer than this release knows is refused.
//
// # Behaviour
//
// Every counter and limit is decided in the database, by one statement whose
// result comes back to the caller: an increment that returns the new count,
// a conditional update that reports whether it matched, a delete that
// returns the row it deleted. Concurrent calls, on one replica or many, all
// count and never both win a compare-and-set.
//
// Instants are stored as timestamptz, so they keep microseconds and come
// back in UTC; the zero time.Time is stored as NULL. Usernames and IDs are
// compared and ordered byte for byte (COLLATE "C"): the gateway canonicalises
// usernames first. PostgreSQL text holds no NUL byte and only valid UTF-8:
// a username or ID with either is refused when written and, looked up, is
// ErrNotFound, as no row can have it. Payloads, factor secrets and keys are
// bytea and kept whole whatever the bytes.
//
// The store keeps no clock of its own: every judgement of expiry is made at
// the now its caller gives. Expired sessions, records, devices and ended
// counter windows stay until Sweep removes them (AddHit also drops the ended
// windows of the key it counts), so a gateway on this store calls Sweep
// every few minutes; any one replica may.
package postgres
