package sqlite

import (
	"context"
	"database/sql"
	"sync/atomic"
)

// stmt is a statement of the request path, prepared on first use so that
// SQLite parses it once per connection rather than on every call. It is
// prepared lazily because a store opened with an old schema (the migration
// tests) may not have its tables; a failed preparation is retried next time.
type stmt struct {
	db    *sql.DB
	query string
	st    atomic.Pointer[sql.Stmt]
}

func newStmt(db *sql.DB, query string) *stmt { return &stmt{db: db, query: query} }

// get returns the prepared statement.
func (s *stmt) get(ctx context.Context) (*sql.Stmt, error) {
	if st := s.st.Load(); st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.query)
	if err != nil {
		return nil, err
	}
	if !s.st.CompareAndSwap(nil, st) {
		st.Close() // another caller prepared it first
		return s.st.Load(), nil
	}
	return st, nil
}

// close closes the statement if it was prepared.
func (s *stmt) close() error {
	if st := s.st.Swap(nil); st != nil {
		return st.Close()
	}
	return nil
}
