package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// A file from before profiles counted step-up failures keeps its users and
// their password failures and locks; each starts with no step-up failures,
// counts them from one, and an unlock resets them.
func TestStepUpFailuresKeepUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s := openBefore(t, path, "0008_step_up_failures.sql")
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	users := []store.User{
		{ID: "u1", Username: "alice", FailedLogins: 3, Locked: true, LockedAt: now, CreatedAt: now, UpdatedAt: now},
		{ID: "u2", Username: "bob", FailedLogins: 1, CreatedAt: now, UpdatedAt: now},
	}
	for _, u := range users {
		insertFirstUser(t, s, u)
	}
	s.Close()

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range users {
		u, err := s.UserByID(t.Context(), want.ID)
		if err != nil {
			t.Fatalf("UserByID(%s) after the upgrade: %v", want.ID, err)
		}
		if u.StepUpFailures != 0 || u.FailedLogins != want.FailedLogins || u.Locked != want.Locked {
			t.Errorf("user %s after the upgrade: %d step-up failures, %d failed logins, locked %v; want 0, %d, %v",
				want.ID, u.StepUpFailures, u.FailedLogins, u.Locked, want.FailedLogins, want.Locked)
		}
	}
	for want := 1; want <= 3; want++ {
		n, err := s.AddStepUpFailure(t.Context(), "u1")
		if err != nil || n != want {
			t.Fatalf("AddStepUpFailure #%d after the upgrade = %d, %v", want, n, err)
		}
	}
	if ok, err := s.ConfirmStepUp(t.Context(), "u1", 10); err != nil || ok {
		t.Errorf("ConfirmStepUp of a locked profile = %v, %v; want false", ok, err)
	}
	if was, err := s.UnlockUser(t.Context(), "u1", now.Add(time.Hour)); err != nil || !was {
		t.Fatalf("UnlockUser = %v, %v", was, err)
	}
	if u, err := s.UserByID(t.Context(), "u1"); err != nil || u.StepUpFailures != 0 || u.FailedLogins != 0 || u.Locked {
		t.Errorf("after the unlock: %+v, %v", u, err)
	}
}
