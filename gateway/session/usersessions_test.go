package session_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// The sessions of a user are listed live only, and ending them takes
// effect at once on this instance although each was cached.
func TestUserSessions(t *testing.T) {
	f := newFixture(t)
	idle, _ := f.signIn(t, "bank.test")
	f.clock.add(10 * time.Minute)
	r1, id1 := f.signIn(t, "bank.test")
	r2, id2 := f.signIn(t, "auto.test")
	f.clock.add(6 * time.Minute) // the first is idle now
	for _, r := range []*http.Request{r1, r2} {
		if _, ok, err := f.m.Current(r); !ok || err != nil {
			t.Fatalf("Current: %v %v", ok, err)
		}
	}
	live, err := f.m.OfUser(t.Context(), f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 2 {
		t.Fatalf("OfUser = %d sessions, want the 2 that are not idle", len(live))
	}
	if _, ok, _ := f.m.Current(idle); ok {
		t.Fatal("the idle session is valid")
	}

	if err := f.m.EndSession(t.Context(), "someone-else", id1.Session.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EndSession of another user's session: %v, want ErrNotFound", err)
	}
	if _, ok, _ := f.m.Current(r1); !ok {
		t.Fatal("another user ended the session")
	}
	if err := f.m.EndSession(t.Context(), f.user.ID, id1.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := f.m.Current(r1); ok {
		t.Fatal("the ended session is still valid")
	}

	// Renewed, the session has a new ID and the old one is refused.
	w := httptest.NewRecorder()
	renewed, err := f.m.Renew(w, r2, id2)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.ID == id2.Session.ID || renewed.LoginID != id2.Session.LoginID || !renewed.AuthTime.Equal(id2.Session.AuthTime) {
		t.Fatalf("renewed %+v from %+v", renewed, id2.Session)
	}
	if _, ok, _ := f.m.Current(r2); ok {
		t.Fatal("the session ID from before the renewal is valid")
	}
	r3 := withCookies(httptest.NewRequest(http.MethodGet, "https://auto.test/", nil), w)
	if _, ok, _ := f.m.Current(r3); !ok {
		t.Fatal("the renewed session is not valid")
	}
	r4, _ := f.signIn(t, "bank.test")
	n, err := f.m.EndUserSessions(t.Context(), f.user.ID, renewed.ID)
	if err != nil || n != 1 { // r4's: the idle one was deleted when it was refused
		t.Fatalf("EndUserSessions = %d, %v; want 1", n, err)
	}
	if _, ok, _ := f.m.Current(r4); ok {
		t.Fatal("a session survived EndUserSessions")
	}
	if _, ok, _ := f.m.Current(r3); !ok {
		t.Fatal("EndUserSessions ended the session it was to keep")
	}
	if n, err := f.m.EndUserSessions(t.Context(), f.user.ID, ""); err != nil || n != 1 {
		t.Fatalf("EndUserSessions of all = %d, %v; want 1", n, err)
	}
	if _, ok, _ := f.m.Current(r3); ok {
		t.Fatal("a session survived ending them all")
	}
}
