package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds the schema, one numbered file per change:
// migrations/NNNN_description.sql. A release that changes the schema adds the
// next number; a file once released is never edited.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key that serialises migrations: every
// replica takes the same one, whatever the schema, so two processes never
// upgrade a database at once. It is the first eight bytes of "portcullis".
const migrationLock int64 = 0x706f727463756c6c

// embeddedMigrations returns the migrations built into the binary.
func embeddedMigrations() ([]migration, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return loadMigrations(sub)
}

// migration is one numbered file of migrationFiles.
type migration struct {
	version int
	name    string // the file name, kept for the record
	sql     string
}

// loadMigrations reads every *.sql file at the root of fsys in version order
// and checks that the versions are 1 to n, each once.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	if len(names) == 0 {
		return nil, errors.New("no migrations")
	}
	ms := make([]migration, 0, len(names))
	for _, name := range names {
		m := migration{name: name} // Glob at the root: a bare file name
		if m.version, err = migrationVersion(m.name); err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", m.name, err)
		}
		m.sql = string(b)
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if want := i + 1; m.version != want {
			return nil, fmt.Errorf("migration %s: version %d, want %d (versions run from 1 with no gap or repeat)", m.name, m.version, want)
		}
	}
	return ms, nil
}

// migrationVersion reads the version from a migration's file name,
// NNNN_description.sql.
func migrationVersion(name string) (int, error) {
	digits, _, found := strings.Cut(name, "_")
	v, err := strconv.Atoi(digits)
	if !found || err != nil || v < 1 {
		return 0, fmt.Errorf("migration %s: the name must be NNNN_description.sql, NNNN from 1", name)
	}
	return v, nil
}

// migrate brings the schema up to the last of ms in one transaction that
// first takes the migration lock: a process that opens the database while
// another migrates it waits, then finds the migrations applied. Each applied
// migration is recorded in schema_migrations with the time it was applied. A
// failure rolls every change back. A schema already past the last version
// known is refused, as this release cannot tell what it holds.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration, now func() time.Time) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL
		)`)
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		latest := ms[len(ms)-1].version
		if current > latest {
			return fmt.Errorf("the database schema is at version %d, newer than this release supports (%d): run a release that knows it", current, latest)
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, ts(now()))
			if err != nil {
				return fmt.Errorf("migration %s: record: %w", m.name, err)
			}
		}
		return nil
	})
}
