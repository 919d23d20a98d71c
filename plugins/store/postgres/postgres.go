package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway/store"
)

// connectTimeout bounds each connection attempt when the DSN sets no
// connect_timeout, so that an unreachable server fails a request rather than
// holding it.
const connectTimeout = 5 * time.Second

// Store keeps every part of the store contract in a PostgreSQL database. It
// is safe for concurrent use, by any number of goroutines and replicas.
type Store struct {
	pool *pgxpool.Pool
	// channel is the NOTIFY channel of the session invalidations (see
	// Publish).
	channel string
}

var (
	_ store.Users          = (*Store)(nil)
	_ store.Hits           = (*Store)(nil)
	_ store.Sessions       = (*Store)(nil)
	_ store.SessionUsers   = (*Store)(nil)
	_ store.SessionTouches = (*Store)(nil)
	_ store.Records        = (*Store)(nil)
	_ store.Devices        = (*Store)(nil)
	_ store.Factors        = (*Store)(nil)
	_ assertion.KeyStore   = (*Store)(nil)
	_ store.Upkeep         = (*Store)(nil)
)

// Open connects to the database the DSN names and applies any migrations it
// lacks (see the package documentation for the DSN and the schema). The DSN
// may hold a password: no error repeats it.
func Open(ctx context.Context, dsn string) (*Store, error) {
	ms, err := embeddedMigrations()
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return open(ctx, dsn, ms)
}

// open opens the store with the given migrations.
func open(ctx context.Context, dsn string, ms []migration) (*Store, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	where := describe(cfg.ConnConfig)
	schema, err := resolveSchema(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	if err := migrate(ctx, pool, ms, time.Now); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: schema %s: %w", where, schema, err)
	}
	return &Store{pool: pool, channel: invalidationChannel(schema)}, nil
}

// parseDSN parses the DSN into a pool configuration. Its errors never hold
// the DSN: pgx's would, with the password redacted only as far as it can
// tell where the password is.
func parseDSN(dsn string) (*pgxpool.Config, error) {
	if dsn == "" {
		return nil, errors.New("no DSN")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("the DSN cannot be parsed (it is not repeated here, as it may hold a password): " +
			"want a postgres:// URL or key=value pairs")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	return cfg, nil
}

// describe names the database the configuration connects to, for errors:
// the host and database, nothing that may be secret.
func describe(cc *pgx.ConnConfig) string {
	return fmt.Sprintf("%s/%s", cc.Host, cc.Database)
}

// resolveSchema returns the schema the configuration's search_path resolves
// to first, the one new tables go to, over a connection of its own.
func resolveSchema(ctx context.Context, cc *pgx.ConnConfig) (string, error) {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema pgtype.Text
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", fmt.Errorf("read the current schema: %w", err)
	}
	if !schema.Valid {
		return "", errors.New("the search_path names no schema that exists (create it first)")
	}
	return schema.String, nil
}

// Ping reports whether the database can be read and written: it commits an
// update of the heartbeat row, a row that means nothing else. A standby, a
// database gone read-only or a lost connection fail it, as they would fail
// every sign-in.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO heartbeat (id, beats) VALUES (1, 1)
		ON CONFLICT (id) DO UPDATE SET beats = heartbeat.beats + 1`)
	if err != nil {
		return storeErr("ping", err)
	}
	return nil
}

// Close closes every connection of the pool, waiting for those in use to be
// released. Every method fails afterwards.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Sweep deletes, in one transaction, the sessions, records and devices that
// have expired at now and the AddHit windows that have ended.
func (s *Store) Sweep(ctx context.Context, now time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`DELETE FROM records WHERE expires_at <= $1`,
			`DELETE FROM sessions WHERE expires_at <= $1`,
			`DELETE FROM devices WHERE expires_at <= $1`,
			`DELETE FROM hits WHERE window_end <= $1`,
		} {
			if _, err := tx.Exec(ctx, q, ts(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storeErr("sweep", err)
	}
	return nil
}

// storeErr wraps err with the operation, as store.ErrConflict when it is a
// uniqueness violation and store.ErrNotFound when no row matched.
func storeErr(op string, err error) error {
	var e *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: %s: %w", op, store.ErrNotFound)
	case errors.As(err, &e) && e.Code == "23505": // unique_violation
		return fmt.Errorf("postgres: %s: %w: %s", op, store.ErrConflict, e.ConstraintName)
	default:
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
}

// lookupErr is storeErr for a lookup by a key the caller gave: a key that
// PostgreSQL text cannot hold (a NUL byte, invalid UTF-8) names no row, so
// it is ErrNotFound, as in a store that can hold any bytes and finds none.
func lookupErr(op string, err error) error {
	var e *pgconn.PgError
	if errors.As(err, &e) && e.Code == "22021" { // character_not_in_repertoire
		return fmt.Errorf("postgres: %s: %w", op, store.ErrNotFound)
	}
	return storeErr(op, err)
}

// oneRow returns pgx.ErrNoRows unless the statement changed a row.
func oneRow(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return pgx.ErrNoRows
	}
	return nil
}

// ts is a time.Time query argument: NULL for the zero time.
func ts(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// timeCol scans a timestamptz column written from ts: NULL is the zero
// time, and an infinite timestamp, which the store never writes, is an error.
type timeCol struct{ t *time.Time }

func (c timeCol) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*c.t = time.Time{}
	case v.InfinityModifier != pgtype.Finite:
		return errors.New("time column holds an infinite timestamp")
	default:
		*c.t = v.Time.UTC()
	}
	return nil
}

// The range of instants a Unix nanosecond count holds, which bounds the
// AddHit windows.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// scanner is a row to scan: pgx.Row or pgx.Rows.
type scanner interface{ Scan(...any) error }

// collect reads every row with scan; none is an empty, non-nil list.
func collect[T any](rows pgx.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
	if list == nil && err == nil {
		list = []T{}
	}
	return list, err
}
