package compose

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/plugins/store/combined"
	"github.com/portcullis/portcullis/plugins/store/postgres"
	"github.com/portcullis/portcullis/plugins/store/postgres/postgrestest"
	"github.com/portcullis/portcullis/plugins/store/redis/redistest"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// The invalidations go over every channel the stores have: none with
// SQLite alone, PostgreSQL's alone, and both PostgreSQL's and Redis's when
// both are there.
func TestInvalidatorUsesEveryChannel(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		lite, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "store.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lite.Close() })
		db, err := combined.New(lite, nil)
		if err != nil {
			t.Fatal(err)
		}
		if inv := Invalidator(db, nil); inv != nil {
			t.Errorf("invalidator of SQLite alone = %T, want nil", inv)
		}
	})
	openPostgres := func(t *testing.T) *postgres.Store {
		pg, err := postgres.Open(t.Context(), postgrestest.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		return pg
	}
	t.Run("postgres", func(t *testing.T) {
		pg := openPostgres(t)
		db, err := combined.New(pg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if inv := Invalidator(db, nil); inv != session.Invalidator(pg) {
			t.Errorf("invalidator of PostgreSQL alone = %T, want the PostgreSQL store", inv)
		}
	})
	t.Run("postgres and redis", func(t *testing.T) {
		pg := openPostgres(t)
		rs := redistest.Open(t)
		db, err := combined.New(pg, rs)
		if err != nil {
			t.Fatal(err)
		}
		inv := Invalidator(db, nil)
		if inv == nil || inv == session.Invalidator(pg) || inv == session.Invalidator(rs) {
			t.Fatalf("invalidator of PostgreSQL and Redis = %T, want both", inv)
		}
		want := session.Invalidation{UserID: "u1"}
		var got []chan session.Invalidation
		for _, channel := range []session.Invalidator{pg, rs} {
			ctx, cancel := context.WithCancel(t.Context())
			ready, c, done := make(chan struct{}), make(chan session.Invalidation, 4), make(chan struct{})
			go func() {
				defer close(done)
				channel.Listen(ctx, func() { close(ready) }, func(inv session.Invalidation) { c <- inv })
			}()
			t.Cleanup(func() { cancel(); <-done })
			select {
			case <-ready:
			case <-time.After(5 * time.Second):
				t.Fatalf("%T did not subscribe", channel)
			}
			got = append(got, c)
		}
		if err := inv.Publish(t.Context(), want); err != nil {
			t.Fatal(err)
		}
		for i, c := range got {
			select {
			case inv := <-c:
				if inv != want {
					t.Errorf("channel %d received %+v, want %+v", i, inv, want)
				}
			case <-time.After(time.Second):
				t.Errorf("channel %d received nothing", i)
			}
		}
	})
}
