package postgres

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/portcullis/portcullis/gateway/store"
)

// CreateUsers stores many new users in one COPY, as CreateUser stores one:
// for loading a store at once (an import, a benchmark). Nothing is stored if
// any user fails; ErrConflict when an ID, a username or a customer ID is
// taken.
func (s *Store) CreateUsers(ctx context.Context, users []store.User) error {
	err := s.copyRows(ctx, "users", userColumns, len(users), func(i int) []any { return userArgs(users[i]) })
	if err != nil {
		return storeErr("create users", err)
	}
	return nil
}

// CreateSessions stores many new sessions in one COPY, as CreateSession
// stores one: for loading a store at once. Nothing is stored if any session
// fails; ErrConflict when an ID is taken.
func (s *Store) CreateSessions(ctx context.Context, sessions []store.Session) error {
	err := s.copyRows(ctx, "sessions", sessionColumns, len(sessions), func(i int) []any { return sessionArgs(sessions[i]) })
	if err != nil {
		return storeErr("create sessions", err)
	}
	return nil
}

// copyRows copies n rows into the table, the columns named as in a column
// list constant; COPY is one statement, so it stores every row or none.
func (s *Store) copyRows(ctx context.Context, table, columns string, n int, row func(int) []any) error {
	if n == 0 {
		return nil
	}
	names := strings.Split(columns, ",")
	for i, name := range names {
		names[i] = strings.TrimSpace(name)
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{table}, names,
		pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil }))
	return err
}

// TouchSessions sets the LastSeen of many sessions in one statement; unknown
// sessions are skipped. The rows are locked in ID order before any is
// written, so two batches that share sessions never deadlock, whichever
// replicas they come from.
func (s *Store) TouchSessions(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(seen))
	times := make([]pgtype.Timestamptz, len(ids))
	for i, id := range ids {
		times[i] = ts(seen[id])
	}
	_, err := s.pool.Exec(ctx, `WITH seen AS (
			SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS seen (id, at)
		), locked AS (
			SELECT s.id FROM sessions AS s JOIN seen ON seen.id = s.id ORDER BY s.id FOR UPDATE OF s
		)
		UPDATE sessions AS s SET last_seen = seen.at
		FROM seen JOIN locked ON locked.id = seen.id
		WHERE s.id = seen.id`, ids, times)
	if err != nil {
		return storeErr("touch sessions", err)
	}
	return nil
}
