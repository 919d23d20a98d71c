package sqlite

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

const factorColumns = `id, user_id, kind, name, secret, counter, created_at, last_used_at`

// scanFactor reads a row of factorColumns.
func scanFactor(row interface{ Scan(...any) error }) (store.Factor, error) {
	var f store.Factor
	err := row.Scan(&f.ID, &f.UserID, &f.Kind, &f.Name, &f.Secret, &f.Counter,
		timeCol{&f.CreatedAt}, timeCol{&f.LastUsedAt})
	return f, err
}

// AddFactor stores a new factor; ErrConflict if its ID is taken, by any
// user.
func (s *Store) AddFactor(ctx context.Context, f store.Factor) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO factors (`+factorColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.UserID, f.Kind, f.Name, payloadArg(f.Secret), f.Counter,
		timeArg(f.CreatedAt), timeArg(f.LastUsedAt))
	if err != nil {
		return storeErr("add factor", err)
	}
	return nil
}

// FactorsOf returns the user's factors, oldest first: by CreatedAt, then in
// the order they were added.
func (s *Store) FactorsOf(ctx context.Context, userID string) ([]store.Factor, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+factorColumns+` FROM factors
		WHERE user_id = ? ORDER BY created_at, rowid`, userID)
	if err != nil {
		return nil, storeErr("list factors", err)
	}
	defer rows.Close()
	var factors []store.Factor
	for rows.Next() {
		f, err := scanFactor(rows)
		if err != nil {
			return nil, storeErr("list factors", err)
		}
		factors = append(factors, f)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list factors", err)
	}
	return factors, nil
}

// AdvanceFactor moves the factor's counter forward in one conditional
// statement, so of concurrent callers with the same counter one changes the
// row. When none changed, a lookup of the user's factor tells a factor the
// user does not have (ErrNotFound) from a counter that was not ahead.
func (s *Store) AdvanceFactor(ctx context.Context, userID, id string, counter int64, at time.Time) (bool, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE factors SET counter = ?, last_used_at = ?
		WHERE user_id = ? AND id = ? AND counter < ?`,
		counter, timeArg(at), userID, id, counter)
	if err != nil {
		return false, storeErr("advance factor", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, storeErr("advance factor", err)
	} else if n == 1 {
		return true, nil
	}
	var found int
	err = s.read.QueryRowContext(ctx, `SELECT 1 FROM factors WHERE user_id = ? AND id = ?`, userID, id).Scan(&found)
	if err != nil {
		return false, storeErr("advance factor", err)
	}
	return false, nil
}

// DeleteFactor removes the factor if the user has it, in one statement;
// ErrNotFound otherwise (another user's factor included).
func (s *Store) DeleteFactor(ctx context.Context, userID, id string) error {
	err := oneRow(s.write.ExecContext(ctx, `DELETE FROM factors WHERE user_id = ? AND id = ?`, userID, id))
	if err != nil {
		return storeErr("delete factor", err)
	}
	return nil
}
