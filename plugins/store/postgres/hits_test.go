package postgres

import (
	"testing"
	"time"
)

// AddHit drops the key's ended windows as it counts, and Sweep drops every
// ended window while keeping the current ones.
func TestEndedWindowsAreDropped(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	rows := func() int64 {
		t.Helper()
		var n int64
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM hits`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 5 {
		if _, err := s.AddHit(ctx, "ip:192.0.2.1", time.Minute, now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if n := rows(); n != 1 {
		t.Errorf("after hits in five windows of one key, %d windows are kept, want 1", n)
	}
	for _, key := range []string{"ip:192.0.2.2", "ip:192.0.2.3"} {
		if _, err := s.AddHit(ctx, key, time.Minute, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddHit(ctx, "ip:192.0.2.3", time.Hour, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(ctx, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Left: the first key's window of the fifth minute and the hour window.
	if n := rows(); n != 2 {
		t.Errorf("after Sweep, %d windows are kept, want 2", n)
	}
	if n, err := s.Hits(ctx, "ip:192.0.2.1", time.Minute, now.Add(4*time.Minute)); err != nil || n != 1 {
		t.Errorf("Hits in the current window after Sweep = %d, %v; want 1", n, err)
	}
	if n, err := s.AddHit(ctx, "ip:192.0.2.3", time.Hour, now.Add(time.Minute)); err != nil || n != 2 {
		t.Errorf("AddHit in the hour window after Sweep = %d, %v; want 2", n, err)
	}
}

func TestHitWindow(t *testing.T) {
	base := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now    time.Time
		window time.Duration
		start  time.Time
	}{
		{base, time.Minute, base},
		{base.Add(59*time.Second + 999*time.Millisecond), time.Minute, base},
		{base.Add(time.Minute), time.Minute, base.Add(time.Minute)},
		{base.Add(14 * time.Minute), 15 * time.Minute, base},
		{time.Unix(-90, 0), time.Minute, time.Unix(-120, 0)},
		{time.Unix(-60, 0), time.Minute, time.Unix(-60, 0)},
	} {
		start, end, err := hitWindow(tc.window, tc.now)
		if err != nil || start != tc.start.UnixNano() || !end.Equal(tc.start.Add(tc.window)) {
			t.Errorf("hitWindow(%v, %v) = %v, %v, %v; want %v to %v", tc.window, tc.now, time.Unix(0, start), end, err,
				tc.start, tc.start.Add(tc.window))
		}
	}
	for _, tc := range []struct {
		now    time.Time
		window time.Duration
	}{
		{base, 0},
		{base, -time.Minute},
		{time.Date(2300, time.January, 1, 0, 0, 0, 0, time.UTC), time.Minute},
		{time.Date(1600, time.January, 1, 0, 0, 0, 0, time.UTC), time.Minute},
	} {
		if _, _, err := hitWindow(tc.window, tc.now); err == nil {
			t.Errorf("hitWindow(%v, %v) succeeded, want an error", tc.window, tc.now)
		}
	}
}
