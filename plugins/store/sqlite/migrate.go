package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/portcullis/portcullis/plugins/store/migrations"
)

// migrationFiles holds the schema, one numbered file per change:
// migrations/NNNN_description.sql. A release that changes the schema adds the
// next number; files already released are never edited.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema change.
type migration = migrations.Migration

// loadMigrations reads the *.sql files at the root of fsys.
func loadMigrations(fsys fs.FS) ([]migration, error) { return migrations.Load(fsys) }

// migrate brings the database schema up to the last of ms. Each migration
// runs in its own write transaction together with its schema_migrations row,
// so a failed migration leaves no trace and a migration is never applied
// twice, even when two processes open a new file at the same time. A database
// already past the last known version is refused: this release does not know
// its schema.
func migrate(ctx context.Context, db *sql.DB, ms []migration, now func() time.Time) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`
	if _, err := db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	current, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].Version
	if current > latest {
		return fmt.Errorf("database schema version %d is newer than this release supports (%d)", current, latest)
	}
	for _, m := range ms[current:] {
		if err := apply(ctx, db, m, now()); err != nil {
			return err
		}
	}
	return nil
}

// schemaVersion returns the highest migration applied, 0 for a new database.
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// apply runs one migration and records it, unless another process recorded
// it first.
func apply(ctx context.Context, db *sql.DB, m migration, at time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	defer tx.Rollback()
	var n int
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, timeArg(at))
	if err != nil {
		return fmt.Errorf("migration %s: record: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.Name, err)
	}
	return nil
}
