package postgres

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// The bulk loaders store every row as the one-at-a-time calls do, or none
// when one of them conflicts.
func TestBulkCreate(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	var users []store.User
	var sessions []store.Session
	for i := range 200 {
		u := store.User{ID: fmt.Sprintf("u%d", i), Username: fmt.Sprintf("user%d", i), Products: []string{"bank"},
			CustomerID: fmt.Sprintf("c%d", i), CreatedAt: now, UpdatedAt: now}
		users = append(users, u)
		sess := store.Session{ID: fmt.Sprintf("s%d", i), LoginID: fmt.Sprintf("l%d", i), UserID: u.ID,
			Host: "bank.example", Methods: []string{"pwd"}, AuthTime: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
		if i%2 == 0 { // the others from devices not registered
			sess.DeviceID = fmt.Sprintf("d%d", i)
		}
		sessions = append(sessions, sess)
	}
	if err := s.CreateUsers(ctx, users); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSessions(ctx, sessions); err != nil {
		t.Fatal(err)
	}
	for i := range users {
		sess, u, err := s.GetSessionUser(ctx, sessions[i].ID)
		if err != nil || u.Username != users[i].Username || u.CustomerID != users[i].CustomerID ||
			!slices.Equal(u.Products, users[i].Products) || sess.UserID != users[i].ID ||
			!slices.Equal(sess.Methods, sessions[i].Methods) || !sess.LastSeen.Equal(now) || u.LockedAt != (time.Time{}) ||
			sess.DeviceID != sessions[i].DeviceID {
			t.Fatalf("session %d: %+v %+v %v", i, sess, u, err)
		}
	}
	if err := s.CreateUsers(ctx, nil); err != nil {
		t.Errorf("CreateUsers of none: %v", err)
	}
	for _, tc := range []struct {
		name  string
		users []store.User
	}{
		{"a taken name", []store.User{{ID: "x", Username: "x"}, {ID: "y", Username: "user7"}}},
		{"a taken ID", []store.User{{ID: "x", Username: "x"}, {ID: "u7", Username: "y"}}},
		{"a taken customer ID", []store.User{{ID: "x", Username: "x"}, {ID: "y", Username: "y", CustomerID: "c7"}}},
		{"a name twice in the batch", []store.User{{ID: "x", Username: "x"}, {ID: "y", Username: "x"}}},
	} {
		if err := s.CreateUsers(ctx, tc.users); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateUsers with %s: %v, want ErrConflict", tc.name, err)
		}
		if _, err := s.UserByID(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a user of the batch with %s was stored: %v", tc.name, err)
		}
	}
	more := []store.Session{{ID: "new", LoginID: "l", UserID: "u0", Host: "h", ExpiresAt: now}, sessions[3]}
	if err := s.CreateSessions(ctx, more); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateSessions with a taken ID: %v, want ErrConflict", err)
	}
	if _, err := s.GetSession(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session of the refused batch was stored: %v", err)
	}
}

// Batches of touches that share sessions, from several replicas and with
// their IDs in any order, all land, and each lands whole: the rows are
// locked in one order before any is written, so no two batches deadlock or
// interleave.
func TestTouchSessionsConcurrently(t *testing.T) {
	stores := replicas(t, 3)
	ctx := t.Context()
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	const n = 40
	sessions := make([]store.Session, n)
	for i := range sessions {
		sessions[i] = store.Session{ID: fmt.Sprintf("s%02d", i), LoginID: "l", UserID: "u1", Host: "h", LastSeen: now,
			ExpiresAt: now.Add(time.Hour)}
	}
	if err := stores[0].CreateSessions(ctx, sessions); err != nil {
		t.Fatal(err)
	}
	var batch atomic.Int64
	times := acrossReplicas(t, stores, 5, func(s *Store) (time.Time, error) {
		// Every batch touches every session at a time of its own; a map's
		// order is random, so the batches name the rows in many orders.
		at := now.Add(time.Duration(batch.Add(1)) * time.Millisecond)
		seen := make(map[string]time.Time, n)
		for _, sess := range sessions {
			seen[sess.ID] = at
		}
		return at, s.TouchSessions(ctx, seen)
	})
	// The batch that committed last wrote every row.
	got, err := stores[1].ListUserSessions(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d sessions listed, want %d", len(got), n)
	}
	last := got[0].LastSeen
	if !slices.ContainsFunc(times, last.Equal) {
		t.Fatalf("LastSeen %v is no batch's time", last)
	}
	for _, sess := range got {
		if !sess.LastSeen.Equal(last) {
			t.Errorf("session %s LastSeen = %v, want %v: batches interleaved", sess.ID, sess.LastSeen, last)
		}
	}
}
