package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AddHit counts a hit in the window of the given length that contains now,
// in one statement that returns the count. Windows are aligned to the Unix
// epoch. The same statement deletes the key's ended windows that no other
// transaction holds (SKIP LOCKED, so that two hits either side of a window's
// end never wait on each other's rows); Sweep deletes the rest.
func (s *Store) AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	start, end, err := hitWindow(window, now)
	if err != nil {
		return 0, storeErr("add hit", err)
	}
	var n int
	err = s.pool.QueryRow(ctx, `WITH ended AS (
			SELECT window_start FROM hits
			WHERE name = $1 AND window_ns = $2 AND window_start < $3
			FOR UPDATE SKIP LOCKED
		), gone AS (
			DELETE FROM hits
			WHERE name = $1 AND window_ns = $2 AND window_start IN (SELECT window_start FROM ended)
		)
		INSERT INTO hits (name, window_ns, window_start, window_end, count) VALUES ($1, $2, $3, $4, 1)
		ON CONFLICT (name, window_ns, window_start) DO UPDATE SET count = hits.count + 1
		RETURNING count`,
		key, int64(window), start, ts(end)).Scan(&n)
	if err != nil {
		return 0, storeErr("add hit", err)
	}
	return n, nil
}

// ReleaseHit gives back one hit of the current window (the one containing
// now) with a single conditional update that stops at zero.
func (s *Store) ReleaseHit(ctx context.Context, key string, window time.Duration, now time.Time) error {
	start, _, err := hitWindow(window, now)
	if err != nil {
		return storeErr("release hit", err)
	}
	_, err = s.pool.Exec(ctx, `UPDATE hits SET count = count - 1
		WHERE name = $1 AND window_ns = $2 AND window_start = $3 AND count > 0`,
		key, int64(window), start)
	if err != nil {
		return storeErr("release hit", err)
	}
	return nil
}

// Hits reads the current window's count without counting; a window with no
// row is zero.
func (s *Store) Hits(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	start, _, err := hitWindow(window, now)
	if err != nil {
		return 0, storeErr("hits", err)
	}
	var n int
	err = s.pool.QueryRow(ctx, `SELECT count FROM hits WHERE name = $1 AND window_ns = $2 AND window_start = $3`,
		key, int64(window), start).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, storeErr("hits", err)
	}
	return n, nil
}

// hitWindow returns the start, in Unix nanoseconds, and the end of the
// epoch-aligned window of the given length that contains now.
func hitWindow(window time.Duration, now time.Time) (start int64, end time.Time, err error) {
	if window <= 0 {
		return 0, time.Time{}, errors.New("window must be positive")
	}
	if now.Before(minTime.Add(window)) || now.After(maxTime.Add(-window)) {
		return 0, time.Time{}, fmt.Errorf("time %v is outside the years counters keep (1678 to 2262)", now)
	}
	t := now.UnixNano()
	start = t - t%int64(window)
	if t%int64(window) < 0 {
		start -= int64(window)
	}
	return start, time.Unix(0, start).Add(window), nil
}
