package sqlite_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// The bulk loaders store every record as the one-at-a-time calls do, or
// nothing when one of them conflicts.
func TestBulkCreate(t *testing.T) {
	s := openTemp(t)
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	var users []store.User
	var sessions []store.Session
	for i := range 50 {
		u := store.User{ID: fmt.Sprintf("u%d", i), Username: fmt.Sprintf("user%d", i), Products: []string{"bank"},
			CreatedAt: now, UpdatedAt: now}
		users = append(users, u)
		sess := store.Session{ID: fmt.Sprintf("s%d", i), LoginID: fmt.Sprintf("l%d", i), UserID: u.ID,
			Host: "bank.example", Methods: []string{"pwd"}, AuthTime: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
		if i%2 == 0 { // the others from devices not registered
			sess.DeviceID = fmt.Sprintf("d%d", i)
		}
		sessions = append(sessions, sess)
	}
	if err := s.CreateUsers(t.Context(), users); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSessions(t.Context(), sessions); err != nil {
		t.Fatal(err)
	}
	for i := range users {
		sess, u, err := s.GetSessionUser(t.Context(), sessions[i].ID)
		if err != nil || u.Username != users[i].Username || sess.UserID != users[i].ID || !sess.LastSeen.Equal(now) ||
			sess.DeviceID != sessions[i].DeviceID {
			t.Fatalf("session %d: %+v %+v %v", i, sess, u, err)
		}
	}
	more := []store.Session{{ID: "new", LoginID: "l", UserID: "u0", Host: "h", ExpiresAt: now}, sessions[3]}
	if err := s.CreateSessions(t.Context(), more); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateSessions with a taken ID: %v, want ErrConflict", err)
	}
	if _, err := s.GetSession(t.Context(), "new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session of the refused batch was stored: %v", err)
	}
	if err := s.CreateUsers(t.Context(), []store.User{{ID: "x", Username: "x"}, {ID: "y", Username: "user7"}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateUsers with a taken name: %v, want ErrConflict", err)
	}
	if _, err := s.UserByID(t.Context(), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a user of the refused batch was stored: %v", err)
	}
}
