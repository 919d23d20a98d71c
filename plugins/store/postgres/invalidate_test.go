package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/session/sessiontest"
)

// An invalidation published by one replica reaches every replica on the
// same schema, the publisher included, from the moment ready was called,
// and none on another schema of the same database.
func TestInvalidationsReachEveryReplica(t *testing.T) {
	_, dsn := freshSchema(t)
	one, two := openDSN(t, dsn), openDSN(t, dsn)
	other := openFresh(t)
	// Published as soon as Listen has called ready: nothing before is
	// buffered anywhere, so receiving it shows the subscription was in
	// place.
	gotOne, _ := sessiontest.Listen(t, one)
	if err := one.Publish(t.Context(), session.Invalidation{SessionID: "s0"}); err != nil {
		t.Fatal(err)
	}
	sessiontest.Receive(t, "publisher", gotOne, session.Invalidation{SessionID: "s0"})
	gotTwo, _ := sessiontest.Listen(t, two)
	if err := one.Publish(t.Context(), session.Invalidation{UserID: "u0"}); err != nil {
		t.Fatal(err)
	}
	sessiontest.Receive(t, "other replica", gotTwo, session.Invalidation{UserID: "u0"})
	sessiontest.Receive(t, "publisher", gotOne, session.Invalidation{UserID: "u0"})
	gotOther, _ := sessiontest.Listen(t, other)

	sent := []session.Invalidation{{SessionID: "s1"}, {LoginID: "l1"}, {UserID: "u1"}, {SessionID: "s2", UserID: "u2"}}
	for _, inv := range sent {
		if err := two.Publish(t.Context(), inv); err != nil {
			t.Fatal(err)
		}
	}
	for name, got := range map[string]<-chan session.Invalidation{"publisher": gotTwo, "other replica": gotOne} {
		for _, want := range sent {
			sessiontest.Receive(t, name, got, want)
		}
	}
	if err := other.Publish(t.Context(), session.Invalidation{UserID: "u3"}); err != nil {
		t.Fatal(err)
	}
	sessiontest.Receive(t, "the replica on another schema", gotOther, session.Invalidation{UserID: "u3"})
	select {
	case inv := <-gotOne:
		t.Errorf("an invalidation on another schema reached this one: %+v", inv)
	case inv := <-gotOther:
		t.Errorf("an invalidation of this schema reached another: %+v", inv)
	default:
	}

	if err := one.Publish(t.Context(), session.Invalidation{}); err == nil {
		t.Error("Publish of an invalidation that names nothing succeeded")
	}
}

// The channel holds the schema, in a name PostgreSQL keeps whole: a schema
// too long for that is hashed, and stays distinct from its neighbours.
func TestInvalidationChannel(t *testing.T) {
	long := strings.Repeat("s", maxIdentifier)
	for _, tc := range []struct {
		schema, want string
	}{
		{"public", "portcullis_invalidations_public"},
		{"Portcullis \"Prod\"", "portcullis_invalidations_Portcullis \"Prod\""},
		{strings.Repeat("x", maxIdentifier-len(channelPrefix)), channelPrefix + strings.Repeat("x", maxIdentifier-len(channelPrefix))},
	} {
		if got := invalidationChannel(tc.schema); got != tc.want {
			t.Errorf("invalidationChannel(%q) = %q, want %q", tc.schema, got, tc.want)
		}
	}
	a, b := invalidationChannel(long), invalidationChannel(long+"t")
	if len(a) > maxIdentifier || len(b) > maxIdentifier || a == b || !strings.HasPrefix(a, channelPrefix) {
		t.Errorf("channels of long schemas: %q and %q", a, b)
	}
}

// A store on a schema whose name needs quoting (capitals, a hyphen)
// listens and publishes on its channel all the same.
func TestInvalidationsOnAQuotedSchema(t *testing.T) {
	schema := "pc_test_Quoted-Schema_" + hex.EncodeToString(randomBytes(t, 8))
	ident := pgx.Identifier{schema}.Sanitize()
	dsn := testDSN(t)
	admin(t, `CREATE SCHEMA `+ident)
	t.Cleanup(func() { admin(t, `DROP SCHEMA `+ident+` CASCADE`) })
	s := openDSN(t, withParam(dsn, "search_path", ident))
	if s.channel != invalidationChannel(schema) {
		t.Fatalf("channel %q, want %q", s.channel, invalidationChannel(schema))
	}
	got, _ := sessiontest.Listen(t, s)
	if err := s.Publish(t.Context(), session.Invalidation{LoginID: "l1"}); err != nil {
		t.Fatal(err)
	}
	sessiontest.Receive(t, "the store", got, session.Invalidation{LoginID: "l1"})
}

// A notification on the channel that is not an invalidation ends the
// subscription with an error: a replica that cannot tell what to drop must
// stop trusting its cache.
func TestInvalidationUnreadableEndsListen(t *testing.T) {
	_, dsn := freshSchema(t)
	s := openDSN(t, dsn)
	for _, msg := range []string{"not json", "{}", `{"sid":""}`} {
		_, done := sessiontest.Listen(t, s)
		if _, err := s.pool.Exec(t.Context(), `SELECT pg_notify($1, $2)`, s.channel, msg); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err == nil || errors.Is(err, context.Canceled) {
				t.Fatalf("Listen after %q: %v, want a failure", msg, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("Listen went on after %q", msg)
		}
	}
}

// When the link to the database is cut, Listen returns an error within
// about a second, whether the connection is closed or merely goes silent,
// and Publish fails; once the link returns both work again.
func TestInvalidationFaultEndsListen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(p *testProxy)
	}{
		{"cut", (*testProxy).cutOff},
		{"silent", func(p *testProxy) { p.Stall() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dsn := freshSchema(t)
			p := newProxy(t)
			s := openDSN(t, withParam(p.dsn(dsn), "connect_timeout", "1"))
			_, done := sessiontest.Listen(t, s)
			// Quiet for a few health periods first: the pings of an idle
			// subscription are answered.
			select {
			case err := <-done:
				t.Fatalf("an idle Listen ended: %v", err)
			case <-time.After(3 * listenHealth):
			}

			tc.fault(p)
			start := time.Now()
			select {
			case err := <-done:
				if err == nil || errors.Is(err, context.Canceled) {
					t.Fatalf("Listen after the fault: %v, want a failure", err)
				}
				t.Logf("Listen noticed the fault after %v: %v", time.Since(start), err)
			case <-time.After(2 * time.Second):
				t.Fatal("Listen went on for 2s after the fault")
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := s.Publish(ctx, session.Invalidation{UserID: "u1"}); err == nil {
				t.Error("Publish with the link down succeeded")
			}

			p.Restore()
			got, _ := sessiontest.Listen(t, s)
			if err := s.Publish(t.Context(), session.Invalidation{UserID: "u1"}); err != nil {
				t.Fatalf("Publish after the link returned: %v", err)
			}
			sessiontest.Receive(t, "the store", got, session.Invalidation{UserID: "u1"})
		})
	}
}

// Listen ends with ctx's error when ctx ends, before or after subscribing,
// without calling ready in the first case.
func TestInvalidationListenEndsWithContext(t *testing.T) {
	s := openFresh(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Listen(ctx, func() { t.Error("ready called with a done context") }, func(session.Invalidation) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Listen with a done context: %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, func() { close(ready) }, func(session.Invalidation) {}) }()
	<-ready
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Listen after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Listen went on for 1s after its context ended")
	}
}
