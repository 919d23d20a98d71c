// Package postgrestest gives tests outside plugins/store/postgres a schema
// of their own on the PostgreSQL server named by PORTCULLIS_TEST_POSTGRES,
// dropped when the test ends. A test that needs PostgreSQL skips, saying
// why, when the variable is not set.
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the environment variable that holds the test database's DSN.
const EnvVar = "PORTCULLIS_TEST_POSTGRES"

// Schema creates a fresh schema and returns a DSN whose search_path is
// it; it skips the test when EnvVar is not set.
func Schema(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvVar)
	if dsn == "" {
		t.Skip(EnvVar + " is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable); skipping a test that needs PostgreSQL")
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "pc_test_" + hex.EncodeToString(b)
	Exec(t, dsn, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { Exec(t, dsn, `DROP SCHEMA `+schema+` CASCADE`) })
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Exec runs statements on the database at dsn outside any store, failing
// the test on an error.
func Exec(t testing.TB, dsn string, sqls ...string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	for _, q := range sqls {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
