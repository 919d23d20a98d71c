package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// BenchmarkGetSessionUser reads a session with its user, the read of every
// request whose session the gateway has not cached, from parallel callers.
func BenchmarkGetSessionUser(b *testing.B) {
	s := openFresh(b)
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	const n = 1000
	users := make([]store.User, n)
	sessions := make([]store.Session, n)
	for i := range n {
		users[i] = store.User{ID: fmt.Sprintf("u%d", i), Username: fmt.Sprintf("user%d", i), Products: []string{"savings"}}
		sessions[i] = store.Session{ID: fmt.Sprintf("s%d", i), LoginID: "l", UserID: users[i].ID, Host: "h",
			Methods: []string{"pwd", "otp"}, AuthTime: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := s.CreateUsers(b.Context(), users); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateSessions(b.Context(), sessions); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, _, err := s.GetSessionUser(b.Context(), sessions[i%n].ID); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkAddHit counts hits on one key from parallel callers: the
// contended increment of a per-address throttle.
func BenchmarkAddHit(b *testing.B) {
	s := openFresh(b)
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AddHit(b.Context(), "ip:192.0.2.1", time.Hour, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
