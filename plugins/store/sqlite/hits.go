package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// AddHit counts a hit in the window of the given length that contains now.
// Windows are aligned to the Unix epoch. The key's earlier windows are
// deleted on the way.
func (s *Store) AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	if window <= 0 {
		return 0, storeErr("add hit", errors.New("window must be positive"))
	}
	start := windowStart(now, window)
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM hits WHERE name = ? AND window_ns = ? AND window_start < ?`,
			key, int64(window), start)
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO hits (name, window_ns, window_start, window_end, count)
			VALUES (?, ?, ?, ?, 1)
			ON CONFLICT (name, window_ns, window_start) DO UPDATE SET count = count + 1
			RETURNING count`,
			key, int64(window), start, start+int64(window)).Scan(&n)
	})
	if err != nil {
		return 0, storeErr("add hit", err)
	}
	return n, nil
}

// ReleaseHit takes one hit back from the window that contains now.
func (s *Store) ReleaseHit(ctx context.Context, key string, window time.Duration, now time.Time) error {
	if window <= 0 {
		return storeErr("release hit", errors.New("window must be positive"))
	}
	_, err := s.write.ExecContext(ctx, `UPDATE hits SET count = count - 1
		WHERE name = ? AND window_ns = ? AND window_start = ? AND count > 0`,
		key, int64(window), windowStart(now, window))
	if err != nil {
		return storeErr("release hit", err)
	}
	return nil
}

// Hits returns the count in the window of the given length that contains
// now, without adding to it.
func (s *Store) Hits(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	if window <= 0 {
		return 0, storeErr("hits", errors.New("window must be positive"))
	}
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count FROM hits WHERE name = ? AND window_ns = ? AND window_start = ?`,
		key, int64(window), windowStart(now, window)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, storeErr("hits", err)
	}
	return n, nil
}

// windowStart is the start, in Unix nanoseconds, of the epoch-aligned window
// that contains now.
func windowStart(now time.Time, window time.Duration) int64 {
	t := now.UnixNano()
	start := t - t%int64(window)
	if t%int64(window) < 0 {
		start -= int64(window)
	}
	return start
}
