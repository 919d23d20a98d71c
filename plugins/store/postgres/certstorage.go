package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// certLockLease is how long a lock outlives its holder's last refresh:
	// the longest a crashed replica keeps the others waiting. The holder
	// refreshes it four times a lease, so a database that stops answering
	// for less than three quarters of it costs no lock.
	certLockLease = 20 * time.Second
	// certLockPoll is how often a waiting Lock tries again, as often as
	// certmagic's FileStorage looks at a lock file.
	certLockPoll = time.Second
)

// certStoreLock is the advisory lock key that serialises CertStorage.Store,
// so that a key is never stored both as a file and as a directory (the
// first eight bytes of "pc-certs").
const certStoreLock int64 = 0x70632d6365727473

// CertStorage returns certmagic's storage in the store's database: the
// certificates, their keys, ACME accounts and locks every replica shares,
// so that replicas obtain and renew each certificate once. The value holds
// the locks this process has taken: create it once and give the same value
// to every certmagic configuration of the process. It uses the store's
// pool, so it fails once the store is closed.
func (s *Store) CertStorage() certmagic.Storage {
	return newCertStorage(s.pool, certLockLease, certLockPoll)
}

// CertStorage is certmagic.Storage (and certmagic.TryLocker) in the
// cert_storage and cert_locks tables. It is safe for concurrent use.
//
// Keys behave as the paths of certmagic's FileStorage: "a//b/" is "a/b", a
// directory is a prefix of stored keys, List walks in the order FileStorage
// does, and a missing key is fs.ErrNotExist. A key with a ".." element is
// refused (FileStorage would leave its directory), and so is storing a file
// where a directory is, or under a file. Directories have no rows: one
// exists while a key under it does. Modified times come from the database's
// clock.
//
// A lock is a row of cert_locks holding a random token and an expiry on the
// database's clock, which the holder pushes forward while it holds the lock;
// Lock inserts the row, or takes over one whose expiry has passed, in one
// statement, and polls while another holder's row is current. A row rather
// than a session-level advisory lock, because an advisory lock belongs to
// one connection: it would pin a pool connection for every held lock (and
// certmagic holds one per certificate it obtains), and a connection the pool
// or the network drops would release it silently while the holder carried
// on. A row survives reconnects, a crashed holder's row lapses after
// certLockLease, and the database's clock is the one every replica judges
// expiry by, whatever their own clocks say. A holder whose refreshes fail
// for a whole lease may lose the lock to another replica; certmagic
// tolerates that rare overlap (it checks storage again after locking) and
// Unlock then reports it. Within one process, goroutines wanting a name the
// process holds wait in the process, without polling the database.
//
// Lock keeps the lease fresh itself for as long as the lock is held, so
// certmagic's optional LockLeaseRenewer is not implemented: a lease it
// lengthened would keep the others waiting that much longer after a crash.
type CertStorage struct {
	pool  *pgxpool.Pool
	lease time.Duration
	poll  time.Duration

	mu   sync.Mutex
	held map[string]*certLock // the names this process holds or is taking
}

var (
	_ certmagic.Storage   = (*CertStorage)(nil)
	_ certmagic.TryLocker = (*CertStorage)(nil)
)

// certLock is one name this process holds, or is taking.
type certLock struct {
	token    string
	released chan struct{} // closed when the process lets go of the name

	// Set once the database granted the lock.
	locked  bool
	stop    context.CancelFunc // stops the refresher
	stopped chan struct{}      // closed when the refresher has returned
}

func newCertStorage(pool *pgxpool.Pool, lease, poll time.Duration) *CertStorage {
	return &CertStorage{pool: pool, lease: lease, poll: poll, held: map[string]*certLock{}}
}

// String names the storage in certmagic's logs, without the DSN.
func (c *CertStorage) String() string { return "PostgreSQL certificate storage" }

// certKey cleans a key as FileStorage's file names are cleaned: repeated
// and outer slashes and "." elements dropped; "" is the root. A key with a
// ".." element is refused.
func certKey(key string) (string, error) {
	for el := range strings.SplitSeq(key, "/") {
		if el == ".." {
			return "", errors.New(`a key may not have a ".." element`)
		}
	}
	return strings.TrimPrefix(path.Clean("/"+key), "/"), nil
}

// ancestors lists the directories k is under, outermost first.
func ancestors(k string) []string {
	list := []string{}
	for i, r := range k {
		if r == '/' {
			list = append(list, k[:i])
		}
	}
	return list
}

// errBelowFile is the error of a key below a file, which FileStorage's file
// system reports as an error rather than a missing file.
var errBelowFile = errors.New("a key above it is a file")

// missing tells what a key with no row of its own is: a directory, modified
// when the latest key under it was; a key below a file (errBelowFile); or
// nothing (pgx.ErrNoRows).
func (c *CertStorage) missing(ctx context.Context, k string) (time.Time, error) {
	var latest *time.Time
	var belowFile bool
	err := c.pool.QueryRow(ctx, `SELECT (SELECT max(modified) FROM cert_storage WHERE starts_with(key, $1)),
		EXISTS (SELECT 1 FROM cert_storage WHERE key = ANY($2))`, under(k), ancestors(k)).Scan(&latest, &belowFile)
	switch {
	case err != nil:
		return time.Time{}, err
	case latest != nil:
		return latest.UTC(), nil
	case belowFile:
		return time.Time{}, errBelowFile
	}
	return time.Time{}, pgx.ErrNoRows
}

// under is the prefix of the keys below k.
func under(k string) string {
	if k == "" {
		return ""
	}
	return k + "/"
}

// certErr wraps err with the operation and the key as given. A key
// PostgreSQL text cannot hold (a NUL byte, invalid UTF-8) names nothing
// stored: fs.ErrNotExist when notExist is set.
func certErr(op, key string, err error, notExist bool) error {
	var e *pgconn.PgError
	if notExist && (errors.Is(err, pgx.ErrNoRows) || errors.As(err, &e) && e.Code == "22021") {
		err = fs.ErrNotExist
	}
	return fmt.Errorf("postgres: cert storage: %s %q: %w", op, key, err)
}

// Store puts value at key, replacing any value there.
func (c *CertStorage) Store(ctx context.Context, key string, value []byte) error {
	k, err := certKey(key)
	if err == nil && k == "" {
		err = errors.New("the root is a directory")
	}
	if err != nil {
		return certErr("store", key, err, false)
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, certStoreLock); err != nil {
			return err
		}
		var clash string
		err := tx.QueryRow(ctx, `SELECT key FROM cert_storage WHERE key = ANY($1) OR starts_with(key, $2) LIMIT 1`,
			ancestors(k), under(k)).Scan(&clash)
		switch {
		case err == nil && strings.HasPrefix(clash, under(k)):
			return fmt.Errorf("it is a directory (%q is stored under it)", clash)
		case err == nil:
			return fmt.Errorf("%q is a file, so nothing can be stored under it", clash)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO cert_storage (key, value, modified) VALUES ($1, $2, clock_timestamp())
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`, k, bytesArg(value))
		return err
	})
	if err != nil {
		return certErr("store", key, err, false)
	}
	return nil
}

// Load returns the value at key: fs.ErrNotExist when there is none, and an
// error that is not when key is a directory.
func (c *CertStorage) Load(ctx context.Context, key string) ([]byte, error) {
	k, err := certKey(key)
	if err != nil {
		return nil, certErr("load", key, err, false)
	}
	var value []byte
	err = c.pool.QueryRow(ctx, `SELECT value FROM cert_storage WHERE key = $1`, k).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err = c.missing(ctx, k); err == nil {
			err = errors.New("it is a directory")
		}
	}
	if err != nil {
		return nil, certErr("load", key, err, true)
	}
	return value, nil
}

// Delete deletes key and every key under it. A key that does not exist is
// not an error.
func (c *CertStorage) Delete(ctx context.Context, key string) error {
	k, err := certKey(key)
	if err != nil {
		return certErr("delete", key, err, false)
	}
	_, err = c.pool.Exec(ctx, `DELETE FROM cert_storage WHERE key = $1 OR starts_with(key, $2)`, k, under(k))
	if err == nil {
		return nil
	}
	if err := certErr("delete", key, err, true); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil // a key text cannot hold is not stored
}

// Exists reports whether key is stored or is a directory. It is false when
// the database cannot be asked.
func (c *CertStorage) Exists(ctx context.Context, key string) bool {
	k, err := certKey(key)
	if err != nil {
		return false
	}
	var found bool
	err = c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cert_storage WHERE key = $1 OR starts_with(key, $2))`,
		k, under(k)).Scan(&found)
	return err == nil && found
}

// List returns the keys under prefix, joined to prefix as given: its
// children (files and directories) or, recursive, every file and directory
// below it, in FileStorage's walk order (each directory before what it
// holds, siblings by name). A file lists nothing; a prefix that does not
// exist is fs.ErrNotExist.
func (c *CertStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	k, err := certKey(prefix)
	if err != nil {
		return nil, certErr("list", prefix, err, false)
	}
	rows, err := c.pool.Query(ctx, `SELECT key FROM cert_storage WHERE key = $1 OR starts_with(key, $2)`, k, under(k))
	keys, err := collect(rows, err, func(row scanner) (string, error) {
		var key string
		return key, row.Scan(&key)
	})
	if err != nil {
		return nil, certErr("list", prefix, err, true)
	}
	if len(keys) == 0 {
		_, err := c.missing(ctx, k)
		if err == nil {
			err = pgx.ErrNoRows // stored since the listing, which saw nothing
		}
		return nil, certErr("list", prefix, err, true)
	}
	seen := map[string]bool{}
	for _, key := range keys {
		rel, ok := strings.CutPrefix(key, under(k))
		if !ok || key == k {
			continue // the prefix itself, a file
		}
		if !recursive {
			rel, _, _ = strings.Cut(rel, "/")
			seen[rel] = true
			continue
		}
		for i, r := range rel {
			if r == '/' {
				seen[rel[:i]] = true
			}
		}
		seen[rel] = true
	}
	split := func(s string) []string { return strings.Split(s, "/") }
	list := make([]string, 0, len(seen))
	for _, rel := range slices.SortedFunc(maps.Keys(seen), func(a, b string) int { return slices.Compare(split(a), split(b)) }) {
		list = append(list, path.Join(prefix, rel))
	}
	return list, nil
}

// Stat describes key: a file with its size and modification time, or a
// directory modified when the latest key under it was; fs.ErrNotExist when
// it is neither.
func (c *CertStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	k, err := certKey(key)
	if err != nil {
		return certmagic.KeyInfo{}, certErr("stat", key, err, false)
	}
	info := certmagic.KeyInfo{Key: key, IsTerminal: true}
	err = c.pool.QueryRow(ctx, `SELECT octet_length(value), modified FROM cert_storage WHERE key = $1`, k).
		Scan(&info.Size, timeCol{&info.Modified})
	if errors.Is(err, pgx.ErrNoRows) {
		info = certmagic.KeyInfo{Key: key}
		info.Modified, err = c.missing(ctx, k)
	}
	if err != nil {
		return certmagic.KeyInfo{}, certErr("stat", key, err, true)
	}
	return info, nil
}

// Lock takes the lock of name, waiting while another holder has it, until
// ctx ends (then the error wraps ctx's). The lock is held until Unlock, or
// until its lease lapses because the process can no longer refresh it.
func (c *CertStorage) Lock(ctx context.Context, name string) error {
	l, err := c.claim(ctx, name, true)
	if err != nil {
		return fmt.Errorf("postgres: cert storage: lock %q: %w", name, err)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			c.drop(name, l)
			return fmt.Errorf("postgres: cert storage: lock %q: %w", name, ctx.Err())
		case <-timer.C:
		}
		ok, err := c.acquire(ctx, name, l)
		if err != nil {
			c.drop(name, l)
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("postgres: cert storage: lock %q: %w", name, err)
		}
		if ok {
			return nil
		}
		timer.Reset(c.poll)
	}
}

// TryLock takes the lock of name if no one holds it, without waiting.
func (c *CertStorage) TryLock(ctx context.Context, name string) (bool, error) {
	l, err := c.claim(ctx, name, false)
	if err != nil || l == nil {
		return false, err
	}
	ok, err := c.acquire(ctx, name, l)
	if err != nil {
		c.drop(name, l)
		return false, fmt.Errorf("postgres: cert storage: try lock %q: %w", name, err)
	}
	if !ok {
		c.drop(name, l)
	}
	return ok, nil
}

// Unlock releases the lock of name that this process took. It is an error
// when the process does not hold it, or when the lease had lapsed (another
// holder may have had the lock meanwhile).
func (c *CertStorage) Unlock(ctx context.Context, name string) error {
	c.mu.Lock()
	l := c.held[name]
	if l == nil || !l.locked {
		c.mu.Unlock()
		return fmt.Errorf("postgres: cert storage: unlock %q: this process does not hold it: %w", name, fs.ErrNotExist)
	}
	delete(c.held, name)
	c.mu.Unlock()
	defer close(l.released)
	l.stop()
	<-l.stopped
	err := oneRow(c.pool.Exec(ctx, `DELETE FROM cert_locks WHERE name = $1 AND token = $2`, name, l.token))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: cert storage: unlock %q: the lock's lease had lapsed, so another holder may have taken it", name)
	case err != nil:
		return fmt.Errorf("postgres: cert storage: unlock %q (its lease will lapse): %w", name, err)
	}
	return nil
}

// claim takes the name's place in this process, for a new token. With wait,
// it waits while another goroutine of the process holds or is taking the
// name; without, it returns nil then.
func (c *CertStorage) claim(ctx context.Context, name string, wait bool) (*certLock, error) {
	for {
		c.mu.Lock()
		other := c.held[name]
		if other == nil {
			l := &certLock{token: rand.Text(), released: make(chan struct{})}
			c.held[name] = l
			c.mu.Unlock()
			return l, nil
		}
		c.mu.Unlock()
		if !wait {
			return nil, nil
		}
		select {
		case <-other.released:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// drop gives up the name's place taken by claim, the lock not taken.
func (c *CertStorage) drop(name string, l *certLock) {
	c.mu.Lock()
	delete(c.held, name)
	c.mu.Unlock()
	close(l.released)
}

// acquire asks the database for the lock under l's token: it inserts the
// lock's row, or takes over a row whose lease has lapsed, in one statement.
// Once granted, a refresher keeps the lease fresh until Unlock.
func (c *CertStorage) acquire(ctx context.Context, name string, l *certLock) (bool, error) {
	err := oneRow(c.pool.Exec(ctx, `INSERT INTO cert_locks AS l (name, token, expires_at)
		VALUES ($1, $2, clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
			WHERE l.expires_at <= clock_timestamp()`, name, l.token, c.lease.Microseconds()))
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	refreshCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.mu.Lock()
	l.locked, l.stop, l.stopped = true, stop, make(chan struct{})
	c.mu.Unlock()
	go c.refresh(refreshCtx, name, l.token, l.stopped)
	return true, nil
}

// refresh pushes the lease of the lock held under token forward four times
// a lease until ctx ends. It gives up once the row is no longer the
// holder's, or when no refresh succeeded for a whole lease (the lock is
// presumed lost); Unlock then reports it.
func (c *CertStorage) refresh(ctx context.Context, name, token string, stopped chan<- struct{}) {
	defer close(stopped)
	ticker := time.NewTicker(c.lease / 4)
	defer ticker.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		err := oneRow(c.pool.Exec(ctx, `UPDATE cert_locks SET expires_at = clock_timestamp() + $3 * interval '1 microsecond'
			WHERE name = $1 AND token = $2 AND expires_at > clock_timestamp()`, name, token, c.lease.Microseconds()))
		switch {
		case err == nil:
			last = time.Now()
		case errors.Is(err, pgx.ErrNoRows), time.Since(last) >= c.lease:
			return
		}
	}
}
