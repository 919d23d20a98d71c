package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway"
)

// grantExpiry is when the suite's grants expire.
var grantExpiry = at(time.Hour + 250*time.Millisecond)

// newGrant returns a grant for host, expiring at grantExpiry.
func newGrant(host string) gateway.Grant {
	return gateway.Grant{
		SessionID: sessionID(1),
		Host:      host,
		ExpiresAt: grantExpiry.In(elsewhere),
	}
}

// takeGrant checks that the grant is taken once, exactly as put.
func takeGrant(t *testing.T, s gateway.Store, id string, now time.Time, want gateway.Grant) {
	t.Helper()
	got, err := s.TakeGrant(t.Context(), id, now)
	ok(t, "TakeGrant("+id+")", err)
	var d diff
	check(&d, "SessionID", got.SessionID, want.SessionID)
	check(&d, "Host", got.Host, want.Host)
	checkTime(&d, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	d.report(t, "TakeGrant("+id+")")
}

// grantGone checks that the grant cannot be taken.
func grantGone(t *testing.T, s gateway.Store, id string, now time.Time, why string) {
	t.Helper()
	_, err := s.TakeGrant(t.Context(), id, now)
	is(t, "TakeGrant("+id+") "+why, err, gateway.ErrNotFound)
}

func grantTests() []test {
	before := grantExpiry.Add(-time.Millisecond)
	return []test{
		{"a grant is taken once", func(t *testing.T, s gateway.Store) {
			g := newGrant("brokerage.example.com")
			ok(t, "PutGrant", s.PutGrant(t.Context(), "g1", g))
			takeGrant(t, s, "g1", at(0), g)
			grantGone(t, s, "g1", at(0), "a second time")
		}},
		{"unknown grant is not found", func(t *testing.T, s gateway.Store) {
			grantGone(t, s, "g1", at(0), "on an empty store")
			ok(t, "PutGrant", s.PutGrant(t.Context(), "g1", newGrant("brokerage.example.com")))
			grantGone(t, s, "g2", at(0), "of another ID")
		}},
		{"grants are independent", func(t *testing.T, s gateway.Store) {
			g1, g2 := newGrant("brokerage.example.com"), newGrant("cards.example.com")
			g2.SessionID = sessionID(2)
			ok(t, "PutGrant", s.PutGrant(t.Context(), "g1", g1))
			ok(t, "PutGrant", s.PutGrant(t.Context(), "g2", g2))
			takeGrant(t, s, "g1", at(0), g1)
			takeGrant(t, s, "g2", at(0), g2)
		}},
		{"a grant is valid until just before it expires", func(t *testing.T, s gateway.Store) {
			g := newGrant("brokerage.example.com")
			ok(t, "PutGrant", s.PutGrant(t.Context(), "g1", g))
			takeGrant(t, s, "g1", before, g)
		}},
		{"an expired grant is not found", func(t *testing.T, s gateway.Store) {
			for id, now := range map[string]time.Time{
				"at-expiry":    grantExpiry,
				"after-expiry": grantExpiry.Add(time.Second),
				"long-after":   grantExpiry.Add(30 * 24 * time.Hour),
			} {
				ok(t, "PutGrant", s.PutGrant(t.Context(), id, newGrant("brokerage.example.com")))
				grantGone(t, s, id, now, "when expired")
			}
		}},
		{"concurrent takes succeed once", func(t *testing.T, s gateway.Store) {
			g := newGrant("brokerage.example.com")
			ok(t, "PutGrant", s.PutGrant(t.Context(), "g1", g))
			taken, errs := concurrently(parallelism, func() (gateway.Grant, error) {
				return s.TakeGrant(t.Context(), "g1", at(0))
			})
			wins := 0
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
					if taken[i].Host != g.Host || !taken[i].ExpiresAt.Equal(g.ExpiresAt) {
						t.Errorf("TakeGrant returned %+v, want %+v", taken[i], g)
					}
				case !errors.Is(err, gateway.ErrNotFound):
					t.Errorf("TakeGrant: error = %v, want success or %v", err, gateway.ErrNotFound)
				}
			}
			if wins != 1 {
				t.Fatalf("%d of %d concurrent TakeGrant calls succeeded, want exactly 1", wins, parallelism)
			}
		}},
	}
}
