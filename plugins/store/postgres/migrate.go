package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portcullis/portcullis/plugins/store/migrations"
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
type migration = migrations.Migration

// loadMigrations reads every *.sql file at the root of fsys in version order.
func loadMigrations(fsys fs.FS) ([]migration, error) { return migrations.Load(fsys) }

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
		latest := ms[len(ms)-1].Version
		if current > latest {
			return fmt.Errorf("the database schema is at version %d, newer than this release supports (%d): run a release that knows it", current, latest)
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, ts(now()))
			if err != nil {
				return fmt.Errorf("migration %s: record: %w", m.Name, err)
			}
		}
		return nil
	})
}
