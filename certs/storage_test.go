package certs

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/plugins/store/postgres"
)

// postgresSchema creates a schema of its own in the database that
// PORTCULLIS_TEST_POSTGRES names, dropped when the test ends, and returns a
// DSN whose search_path is it; without the variable the test is skipped.
func postgresSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("PORTCULLIS_TEST_POSTGRES")
	u, err := url.Parse(dsn)
	switch {
	case dsn == "":
		t.Skip("PORTCULLIS_TEST_POSTGRES not set: set it to a postgres:// URL of a database the tests may create schemas in")
	case err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql"):
		t.Fatal("PORTCULLIS_TEST_POSTGRES is not a postgres:// URL")
	}
	schema := "pc_test_certs_" + strings.ToLower(rand.Text()[:12])
	exec := func(sql string) {
		ctx := context.WithoutCancel(t.Context())
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect to the test database: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	t.Cleanup(func() { exec("DROP SCHEMA " + schema + " CASCADE") })
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Two replicas sharing the PostgreSQL store's certificate storage, started
// together, obtain the certificate from the ACME CA once: the one that takes
// the lock obtains it, the other waits and loads it from the storage, and
// both serve the same certificate. Neither writes to its data directory.
func TestReplicasSharingStorageObtainOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an ACME CA in process")
	}
	dsn := postgresSchema(t)
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	httpPort, tlsPort := freePort(t), freePort(t)
	pebble := startPebble(t, startDNS(t), httpPort, tlsPort)

	const replicas = 2
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	stores := make([]*postgres.Store, replicas)
	for i := range stores {
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	acme := ACMEConfig{CA: pebble.directory, Email: "ops@portcullis.test", TrustedRoots: pebble.serverRoots,
		AltHTTPPort: httpPort, AltTLSALPNPort: tlsPort}
	dirs := make([]string, replicas)
	managers := make([]*Manager, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	began := time.Now()
	for i := range replicas {
		dirs[i] = t.TempDir()
		wg.Go(func() {
			<-start
			managers[i], errs[i] = New(ctx, Config{
				Mode:    ModeACME,
				DataDir: dirs[i],
				Hosts:   []string{"acme.localhost"},
				ACME:    acme,
				Storage: stores[i].CertStorage(),
			}, testLogger(t))
		})
	}
	close(start)
	wg.Wait()
	for _, m := range managers {
		if m != nil {
			t.Cleanup(m.Close)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Logf("both replicas ready in %s", time.Since(began).Round(time.Millisecond))

	var serials []string
	for i, m := range managers {
		addr := serveTLS(t, m.TLSConfig(), okHandler)
		state, err := handshake(t, addr, &tls.Config{ServerName: "acme.localhost", RootCAs: pebble.issuingRoots})
		if err != nil {
			t.Fatalf("handshake with replica %d: %v", i, err)
		}
		serials = append(serials, state.PeerCertificates[0].SerialNumber.String())
	}
	if serials[0] != serials[1] {
		t.Errorf("the replicas serve certificates of serials %s and %s: each obtained its own", serials[0], serials[1])
	}

	storage := stores[0].CertStorage()
	for prefix, suffix := range map[string]string{"certificates": ".crt", "acme": ".key"} {
		keys, err := storage.List(ctx, prefix, true)
		if err != nil {
			t.Fatalf("List %s: %v", prefix, err)
		}
		var n int
		for _, k := range keys {
			if strings.HasSuffix(k, suffix) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the shared storage holds %d %s files under %s, want 1: %q", n, suffix, prefix, keys)
		}
	}
	for i, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "certmagic")); !os.IsNotExist(err) {
			t.Errorf("replica %d wrote certmagic's files under its data directory: %v", i, err)
		}
	}
}
