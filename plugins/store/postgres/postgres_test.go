package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/store/storetest"
	"github.com/portcullis/portcullis/plugins/store/postgres/postgrestest"
)

// testDSNVar names the environment variable that holds the DSN of the
// database the tests may create schemas in.
const testDSNVar = "PORTCULLIS_TEST_POSTGRES"

// testDSN returns the test database's DSN, or skips the test without one.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(testDSNVar)
	if dsn == "" {
		t.Skip(testDSNVar + " not set: set it to the DSN of a PostgreSQL database the tests may create schemas in, " +
			"such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	return dsn
}

// withParam returns the DSN with one more setting, which overrides the
// DSN's own: a query parameter of a URL, a trailing pair otherwise.
func withParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// admin runs statements on the test database outside any store.
func admin(t testing.TB, sqls ...string) {
	t.Helper()
	postgrestest.Exec(t, testDSN(t), sqls...)
}

// adminQuery reads one value from the test database outside any store.
func adminQuery[T any](t testing.TB, query string) T {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v T
	if err := conn.QueryRow(ctx, query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// freshSchema creates an empty schema of a name no other test uses, dropped
// when the test ends, and returns it with a DSN whose search_path is it.
func freshSchema(t testing.TB) (schema, dsn string) {
	t.Helper()
	dsn = testDSN(t)
	schema = "pc_test_" + hex.EncodeToString(randomBytes(t, 8))
	admin(t, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { admin(t, `DROP SCHEMA `+schema+` CASCADE`) })
	return schema, withParam(dsn, "search_path", schema)
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// openDSN opens a store on the DSN, closed when the test ends.
func openDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() }) // Close reports no error: it only releases the pool
	return s
}

// openFresh opens a store on a fresh schema.
func openFresh(t testing.TB) *Store {
	t.Helper()
	_, dsn := freshSchema(t)
	return openDSN(t, dsn)
}

var _ storetest.All = (*Store)(nil)

func TestConformance(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(t *testing.T) storetest.All { return openFresh(t) })
	storetest.RunSessionUsers(t, func(t *testing.T) storetest.SessionUserStore { return openFresh(t) })
	storetest.RunSessionTouches(t, func(t *testing.T) storetest.SessionTouchStore { return openFresh(t) })
}

func TestReopenKeepsData(t *testing.T) {
	_, dsn := freshSchema(t)
	u := store.User{ID: "u1", Username: "alice", Products: []string{"savings"}, CreatedAt: time.UnixMilli(1_900_000_000_123)}
	func() {
		first := openDSN(t, dsn)
		defer first.Close()
		if err := first.CreateUser(t.Context(), u); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if n, err := first.AddLoginFailure(t.Context(), u.ID); err != nil || n != 1 {
			t.Fatalf("AddLoginFailure = %d, %v", n, err)
		}
	}()
	s := openDSN(t, dsn)
	got, err := s.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatalf("UserByName after reopening: %v", err)
	}
	if got.ID != "u1" || got.FailedLogins != 1 || !got.CreatedAt.Equal(u.CreatedAt) || strings.Join(got.Products, ",") != "savings" {
		t.Errorf("after reopening, user = %+v", got)
	}
}

// The tables go to the schema the search_path names, and a table of the
// same name further along the path is never read instead.
func TestSchemaFromSearchPath(t *testing.T) {
	mine, _ := freshSchema(t)
	other, otherDSN := freshSchema(t)
	decoy := openDSN(t, otherDSN)
	if err := decoy.CreateUser(t.Context(), store.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	s := openDSN(t, withParam(testDSN(t), "search_path", mine+","+other))
	if _, err := s.UserByName(t.Context(), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByName of a user in the schema further along the path: error = %v, want ErrNotFound", err)
	}
	if err := s.CreateUser(t.Context(), store.User{ID: "u2", Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	n := adminQuery[int64](t, `SELECT count(*) FROM `+mine+`.users WHERE username = 'bob'`)
	if n != 1 {
		t.Errorf("%s.users holds %d rows for bob, want 1", mine, n)
	}
}

func TestOpenFailsClearly(t *testing.T) {
	dsn := testDSN(t)
	const password = "correct-horse-battery-staple"
	tests := []struct {
		name, dsn, want string
	}{
		{"no DSN", "", "no DSN"},
		{"unparsable DSN", "postgres://app:" + password + "@[::1", "cannot be parsed"},
		{"unparsable key=value DSN", "host=127.0.0.1 password=" + password + " port=notaport", "cannot be parsed"},
		{"closed port", "postgres://app:" + password + "@127.0.0.1:1/portcullis?sslmode=disable&connect_timeout=2", "127.0.0.1/portcullis"},
		{"missing schema", withParam(dsn, "search_path", "pc_test_missing_"+hex.EncodeToString(randomBytes(t, 4))), "names no schema"},
		{"wrong password", withParam(withParam(dsn, "user", "pc_no_such_role"), "password", password), "pc_no_such_role"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("Open: %v", err)
			msg := err.Error()
			if !strings.HasPrefix(msg, "postgres: open") || !strings.Contains(msg, tc.want) {
				t.Errorf("error = %q, want it to start with %q and say %q", msg, "postgres: open", tc.want)
			}
			if strings.Contains(msg, password) {
				t.Errorf("error = %q repeats the DSN's password", msg)
			}
		})
	}
}

func TestClosedStoreFails(t *testing.T) {
	s := openFresh(t)
	if err := s.CreateUser(t.Context(), store.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	everyMethodFails(t, s)
}

// everyMethodFails calls every method of s and checks that each fails with
// an error that is neither ErrNotFound nor ErrConflict: a store that cannot
// reach its database must never look like one that answered.
func everyMethodFails(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	calls := map[string]func() error{
		"Ping":               func() error { return s.Ping(ctx) },
		"Sweep":              func() error { return s.Sweep(ctx, now) },
		"CreateUser":         func() error { return s.CreateUser(ctx, store.User{ID: "u2", Username: "bob"}) },
		"UserByName":         func() error { _, err := s.UserByName(ctx, "alice"); return err },
		"UserByCustomerID":   func() error { _, err := s.UserByCustomerID(ctx, "c1"); return err },
		"UserByID":           func() error { _, err := s.UserByID(ctx, "u1"); return err },
		"ListUsers":          func() error { _, err := s.ListUsers(ctx); return err },
		"SetPasswordHash":    func() error { return s.SetPasswordHash(ctx, "u1", "h", now) },
		"SetUsername":        func() error { return s.SetUsername(ctx, "u1", "carol", now) },
		"SetDisplayName":     func() error { return s.SetDisplayName(ctx, "u1", "Carol", now) },
		"SetProducts":        func() error { return s.SetProducts(ctx, "u1", []string{"card"}, now) },
		"SetSecurityPhone":   func() error { return s.SetSecurityPhone(ctx, "u1", "+15005550006", now) },
		"SetEmail":           func() error { return s.SetEmail(ctx, "u1", "a@example.com", now) },
		"AddLoginFailure":    func() error { _, err := s.AddLoginFailure(ctx, "u1"); return err },
		"ResetLoginFailures": func() error { return s.ResetLoginFailures(ctx, "u1") },
		"ConfirmLogin":       func() error { _, err := s.ConfirmLogin(ctx, "u1", 5); return err },
		"LockUser":           func() error { _, err := s.LockUser(ctx, "u1", now); return err },
		"UnlockUser":         func() error { _, err := s.UnlockUser(ctx, "u1", now); return err },
		"AddStepUpFailure":   func() error { _, err := s.AddStepUpFailure(ctx, "u1"); return err },
		"ConfirmStepUp":      func() error { _, err := s.ConfirmStepUp(ctx, "u1", 5); return err },
		"AddHit":             func() error { _, err := s.AddHit(ctx, "ip", time.Minute, now); return err },
		"ReleaseHit":         func() error { return s.ReleaseHit(ctx, "ip", time.Minute, now) },
		"Hits":               func() error { _, err := s.Hits(ctx, "ip", time.Minute, now); return err },
		"CreateSession":      func() error { return s.CreateSession(ctx, store.Session{ID: "s1", ExpiresAt: now}) },
		"GetSession":         func() error { _, err := s.GetSession(ctx, "s1"); return err },
		"GetSessionUser":     func() error { _, _, err := s.GetSessionUser(ctx, "s1"); return err },
		"TouchSession":       func() error { return s.TouchSession(ctx, "s1", now) },
		"TouchSessions":      func() error { return s.TouchSessions(ctx, map[string]time.Time{"s1": now}) },
		"DeleteSession":      func() error { return s.DeleteSession(ctx, "s1") },
		"DeleteLogin":        func() error { return s.DeleteLogin(ctx, "l1") },
		"ListUserSessions":   func() error { _, err := s.ListUserSessions(ctx, "u1"); return err },
		"DeleteUserSessions": func() error { _, err := s.DeleteUserSessions(ctx, "u1", ""); return err },
		"CreateUsers":        func() error { return s.CreateUsers(ctx, []store.User{{ID: "u3", Username: "dave"}}) },
		"CreateSessions":     func() error { return s.CreateSessions(ctx, []store.Session{{ID: "s2", ExpiresAt: now}}) },
		"PutRecord":          func() error { return s.PutRecord(ctx, store.Record{Kind: "k", ID: "r", ExpiresAt: now}, now) },
		"GetRecord":          func() error { _, err := s.GetRecord(ctx, "k", "r", now); return err },
		"TakeRecord":         func() error { _, err := s.TakeRecord(ctx, "k", "r", now); return err },
		"AttemptRecord":      func() error { _, err := s.AttemptRecord(ctx, "k", "r", now); return err },
		"AddDevice":          func() error { return s.AddDevice(ctx, store.Device{ID: "d", ExpiresAt: now}) },
		"DeviceByID":         func() error { _, err := s.DeviceByID(ctx, "d", now); return err },
		"TouchDevice":        func() error { return s.TouchDevice(ctx, "d", now) },
		"ListDevices":        func() error { _, err := s.ListDevices(ctx, "u1", now); return err },
		"DeleteDevice":       func() error { return s.DeleteDevice(ctx, "u1", "d") },
		"DeleteDevices":      func() error { _, err := s.DeleteDevices(ctx, "u1"); return err },
		"AddFactor":          func() error { return s.AddFactor(ctx, store.Factor{ID: "f", UserID: "u1"}) },
		"FactorsOf":          func() error { _, err := s.FactorsOf(ctx, "u1"); return err },
		"AdvanceFactor":      func() error { _, err := s.AdvanceFactor(ctx, "u1", "f", 9, now); return err },
		"DeleteFactor":       func() error { return s.DeleteFactor(ctx, "u1", "f") },
		"SigningKeys":        func() error { _, err := s.SigningKeys(ctx); return err },
		"AddSigningKey":      func() error { return s.AddSigningKey(ctx, assertionKey("k1", now)) },
		"RetireSigningKey":   func() error { return s.RetireSigningKey(ctx, "k1", now) },
	}
	for name, call := range calls {
		err := call()
		switch {
		case err == nil:
			t.Errorf("%s succeeded without a database", name)
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
			t.Errorf("%s without a database: error = %v, want a failure other than ErrNotFound or ErrConflict", name, err)
		}
	}
	if ctx.Err() != nil {
		t.Errorf("the calls took longer than their deadline: %v", ctx.Err())
	}
}

// assertionKey is a signing key for the calls that need one; its bytes are
// not a real key, which the store never parses.
func assertionKey(id string, created time.Time) assertion.Key {
	return assertion.Key{ID: id, PrivateKey: []byte{0x30, 0x00, 0xff}, CreatedAt: created}
}

// A lookup by a key PostgreSQL text cannot hold finds nothing, as a lookup
// by any other unknown key does; a write of such a key is refused.
func TestKeysTextCannotHold(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	for _, key := range []string{"ali\x00ce", "ali\xffce"} {
		lookups := map[string]func() error{
			"UserByName":       func() error { _, err := s.UserByName(ctx, key); return err },
			"UserByID":         func() error { _, err := s.UserByID(ctx, key); return err },
			"UserByCustomerID": func() error { _, err := s.UserByCustomerID(ctx, key); return err },
			"GetSession":       func() error { _, err := s.GetSession(ctx, key); return err },
			"GetSessionUser":   func() error { _, _, err := s.GetSessionUser(ctx, key); return err },
			"TakeRecord":       func() error { _, err := s.TakeRecord(ctx, "code", key, now); return err },
			"DeviceByID":       func() error { _, err := s.DeviceByID(ctx, key, now); return err },
		}
		for name, lookup := range lookups {
			if err := lookup(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s(%q): error = %v, want ErrNotFound", name, key, err)
			}
		}
		err := s.CreateUser(ctx, store.User{ID: "u1", Username: key})
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateUser with username %q: error = %v, want a refusal", key, err)
		}
	}
}

// Ping proves a write: on a database that takes reads only (a standby, a
// database set read-only), reads still answer and Ping fails, and so does
// Open, which cannot check the schema without its write lock.
func TestPingFailsWhenWritesFail(t *testing.T) {
	_, dsn := freshSchema(t)
	openDSN(t, dsn).Close() // the schema, migrated
	readOnly := withParam(dsn, "default_transaction_read_only", "on")
	if s, err := Open(t.Context(), readOnly); err == nil {
		s.Close()
		t.Error("Open of a read-only database succeeded")
	} else {
		t.Logf("Open: %v", err)
	}
	cfg, err := parseDSN(readOnly)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{pool: pool}
	defer s.Close()
	if _, err := s.UserByID(t.Context(), "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByID on the read-only database: error = %v, want ErrNotFound", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping of a read-only database succeeded")
	} else {
		t.Logf("Ping: %v", err)
	}
}
