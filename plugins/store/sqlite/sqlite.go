// Package sqlite is the embedded store: all of the gateway's state in one
// SQLite file, through the pure-Go modernc.org/sqlite driver (no cgo). It
// suits a single gateway instance; replicas share PostgreSQL and Redis
// instead.
//
// The database runs in write-ahead-log mode, so reads proceed while a write
// commits. Writes share a single connection and begin their transactions
// with BEGIN IMMEDIATE: writers in this process queue for the connection,
// and writers in other processes (an admin command on the same file) wait up
// to the busy timeout for the file lock instead of failing or deadlocking.
//
// The statements on the path of every request whose session the gateway has
// not cached (a session with its user, in one joined read; a session's
// LastSeen) are prepared once per connection. Sessions and users are kept in
// WITHOUT ROWID tables, so a lookup by ID walks one b-tree. The database is
// read with pread, not mmap, so that the pages a busy gateway reads stay out
// of its resident memory.
//
// The schema is created and upgraded by numbered migrations embedded in the
// binary, applied in order when the store is opened and recorded in the
// schema_migrations table (version, file name, time applied).
//
// Times are stored as UTC Unix nanoseconds, so they round-trip exactly within
// the years 1678 to 2262; the zero time.Time is stored as NULL. Usernames are
// compared byte for byte: the gateway canonicalises them first.
//
// Finished AddHit windows are dropped when AddHit comes across them; Sweep
// removes every expired session, single-use record, device and counter window
// and is meant to be called periodically. The store keeps no clock of its own: every
// judgement of expiry is made at the now its caller gives.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway/store"
)

// busyTimeout is how long a write waits for another process's write lock.
const busyTimeout = 5 * time.Second

// Store keeps every part of the store contract in a SQLite file. It is safe
// for concurrent use.
type Store struct {
	read  *sql.DB // read-only connections, several at once
	write *sql.DB // the one connection that writes

	// Statements on the path of every request whose session the gateway
	// has not cached, prepared once.
	getSession, getSessionUser, userByID *stmt
	touchSession                         *stmt
}

var (
	_ store.Users        = (*Store)(nil)
	_ store.Hits         = (*Store)(nil)
	_ store.Sessions     = (*Store)(nil)
	_ store.SessionUsers = (*Store)(nil)
	_ store.Records      = (*Store)(nil)
	_ store.Devices      = (*Store)(nil)
	_ store.Factors      = (*Store)(nil)
	_ assertion.KeyStore = (*Store)(nil)
	_ store.Upkeep       = (*Store)(nil)
)

// Open opens the database file at path, creating it if it does not exist,
// and applies any migrations it lacks. The directory must exist. A new file
// is created with mode 0600 whatever the umask, and SQLite gives its -wal
// and -shm files the database file's mode: the file holds signing keys and
// password hashes.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: no path")
	}
	ms, err := loadMigrations(mustSub(migrationFiles, "migrations"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	return open(ctx, path, ms)
}

// open opens the store with the given migrations.
func open(ctx context.Context, path string, ms []migration) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := checkPath(abs); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	write, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {fmt.Sprint(busyTimeout.Milliseconds())},
		"_foreign_keys": {"on"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"NORMAL"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	write.SetMaxOpenConns(1)
	// The first connection checks that the file is a database and switches
	// it to WAL, which the readers rely on.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := tightenSidecars(abs); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := migrate(ctx, write, ms, time.Now); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}

	read, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {fmt.Sprint(busyTimeout.Milliseconds())},
		"_query_only":   {"on"},
	}))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	return newStore(read, write), nil
}

func newStore(read, write *sql.DB) *Store {
	return &Store{
		read: read, write: write,
		getSession:     newStmt(read, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`),
		getSessionUser: newStmt(read, sessionUserQuery),
		userByID:       newStmt(read, `SELECT `+userColumns+` FROM users WHERE id = ?`),
		touchSession:   newStmt(write, `UPDATE sessions SET last_seen = ? WHERE id = ?`),
	}
}

// checkPath reports the usual mistakes in a path, which SQLite would all
// report as "unable to open database file".
func checkPath(abs string) error {
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return errors.New("is a directory")
	}
	dir := filepath.Dir(abs)
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// createPrivate creates an empty database file at abs with mode 0600 unless
// a file is already there. SQLite itself would create it 0644 less the
// umask.
func createPrivate(abs string) error {
	f, err := os.OpenFile(abs, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// The umask may have taken bits from 0600 (a umask of 0277 would leave
	// the file unwritable); set the mode exactly.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// tightenSidecars gives the -wal and -shm files next to the database at abs
// no permission the database file lacks. SQLite copies the database's mode
// only onto sidecars it creates; ones left by a crash, or by a release that
// created the database 0644, keep theirs.
func tightenSidecars(abs string) error {
	db, err := os.Stat(abs)
	if err != nil {
		return err
	}
	want := db.Mode().Perm()
	for _, p := range []string{abs + "-wal", abs + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&^want != 0 {
			if err := os.Chmod(p, perm&want); err != nil {
				return err
			}
		}
	}
	return nil
}

// dsn returns the driver's name for the file at abs: a file: URI, so that
// any character in the path is escaped, with the driver's parameters.
func dsn(abs string, params url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: params.Encode()}
	return u.String()
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant naming an embedded directory
	}
	return sub
}

// Ping reports whether the database file can be read and written: it reads
// the schema version through the readers and commits an update of the
// heartbeat row through the writer, a row that means nothing else. A file
// that opened read-only, a full disk or a lost lock fail it, as they would
// fail every sign-in.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := schemaVersion(ctx, s.read); err != nil {
		return fmt.Errorf("sqlite: ping: read: %w", err)
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO heartbeat (id, beats) VALUES (1, 1)
		ON CONFLICT (id) DO UPDATE SET beats = beats + 1`)
	if err != nil {
		return fmt.Errorf("sqlite: ping: write: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*stmt{s.getSession, s.getSessionUser, s.userByID, s.touchSession} {
		errs = append(errs, st.close())
	}
	return errors.Join(append(errs, s.read.Close(), s.write.Close())...)
}

// Sweep deletes the sessions, records and devices that have expired at now
// and the AddHit windows that have ended. Nothing else removes expired
// sessions or devices, so a gateway on this store calls Sweep every few
// minutes.
func (s *Store) Sweep(ctx context.Context, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM records WHERE expires_at <= ?`,
			`DELETE FROM sessions WHERE expires_at <= ?`,
			`DELETE FROM devices WHERE expires_at <= ?`,
			`DELETE FROM hits WHERE window_end <= ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, timeArg(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: sweep: %w", err)
	}
	return nil
}

// inTx runs f in a write transaction and commits if it returns nil.
func (s *Store) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// storeErr wraps err with the operation, as store.ErrConflict when it is a
// uniqueness violation and store.ErrNotFound when no row matched.
func storeErr(op string, err error) error {
	var e *sqlite.Error
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: %s: %w", op, store.ErrNotFound)
	case errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY):
		return fmt.Errorf("sqlite: %s: %w: %v", op, store.ErrConflict, err)
	default:
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
}

// oneRow returns sql.ErrNoRows unless the statement changed a row.
func oneRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

// The range of instants a Unix nanosecond count holds.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// timeArg is a time.Time query argument, stored as UTC Unix nanoseconds, or
// NULL for the zero time.
type timeArg time.Time

func (t timeArg) Value() (driver.Value, error) {
	tt := time.Time(t)
	switch {
	case tt.IsZero():
		return nil, nil
	case tt.Before(minTime) || tt.After(maxTime):
		return nil, fmt.Errorf("time %v is outside the years the store keeps (1678 to 2262)", tt)
	}
	return tt.UnixNano(), nil
}

// timeCol scans a column written from a timeArg.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.Unix(0, v).UTC()
	default:
		return fmt.Errorf("time column holds %T, want an integer", v)
	}
	return nil
}
