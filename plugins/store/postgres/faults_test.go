package postgres

import (
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/store/faultproxy"
)

// newProxy starts a fault proxy to the test database's host and port,
// stopped when the test ends.
func newProxy(t *testing.T) *testProxy {
	t.Helper()
	cfg, err := pgx.ParseConfig(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	return &testProxy{faultproxy.New(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))}
}

// testProxy is a fault proxy to the test database.
type testProxy struct{ *faultproxy.Proxy }

// cutOff closes every connection through the proxy and turns new ones
// away: the database is gone.
func (p *testProxy) cutOff() { p.Cut() }

// dsn is the DSN of the test schema through the proxy.
func (p *testProxy) dsn(dsn string) string {
	return withParam(withParam(dsn, "host", p.Host()), "port", p.Port())
}

// A store whose database goes away while it is open fails every call, with
// errors that are not ErrNotFound or ErrConflict, so the gateway denies.
func TestDatabaseGoneFailsEveryMethod(t *testing.T) {
	_, dsn := freshSchema(t)
	p := newProxy(t)
	s := openDSN(t, p.dsn(dsn))
	if err := s.CreateUser(t.Context(), store.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddLoginFailure(t.Context(), "u1"); err != nil {
		t.Fatal(err)
	}
	p.cutOff()
	everyMethodFails(t, s)

	// Reopening through the dead proxy fails as well.
	if s2, err := Open(t.Context(), p.dsn(dsn)); err == nil {
		s2.Close()
		t.Error("Open through a cut connection succeeded")
	} else if errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open: %v", err)
	}
}
