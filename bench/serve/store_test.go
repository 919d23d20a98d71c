package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/config"
)

// The single SQLite gateway's configuration is the one the measured
// figures in docs/performance.md were taken with.
const sqliteConfig = `password:
  queue_timeout: 2s
  nice: 5
  max_concurrent: 2
data_dir: /D/data
listen:
  https: "127.0.0.1:1"
  admin: "127.0.0.1:2"
  pprof: true
tls:
  mode: internal
routes:
  - name: bank
    host: localhost
    upstream: http://127.0.0.1:3
store:
  driver: sqlite
  path: portcullis.db
session:
  idle_timeout: 15m
  max_lifetime: 12h
support_phone: 1-800-555-0100
delivery:
  sms: { outbox: { path: outbox.jsonl } }
policies:
  decision_log: /D/decisions.jsonl
geoip:
  anonymous_ip: /R/testdata/geoip/GeoIP2-Anonymous-IP-Test.mmdb
  country: /R/testdata/geoip/GeoLite2-Country-Test.mmdb
log:
  level: info
  format: json
`

func TestSQLiteConfigIsUnchanged(t *testing.T) {
	got := gatewayConfig("/R", sqliteFiles("/D"), "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", 5, 2, true)
	if got != sqliteConfig {
		t.Errorf("gatewayConfig =\n%s\nwant\n%s", got, sqliteConfig)
	}
}

// loadReplicas writes and loads the configurations of n replicas on a
// store whose secret files exist, as serve would load them.
func loadReplicas(t *testing.T, n int) (dir string, st *sharedStore, cfgs []*config.File) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	st = &sharedStore{prefix: "portcullis-bench:0123456789abcdef:",
		DSNFile: filepath.Join(dir, "secrets", "postgres.dsn"), URLFile: filepath.Join(dir, "secrets", "redis.url")}
	if err := writeSecret(st.DSNFile, []byte("postgres://postgres@127.0.0.1:5432/test?search_path=pc_bench_x\n")); err != nil {
		t.Fatal(err)
	}
	if err := writeSecret(st.URLFile, []byte("redis://127.0.0.1:6379/0\n")); err != nil {
		t.Fatal(err)
	}
	for i, f := range sharedFiles(dir, st, n, "8443") {
		path := filepath.Join(dir, replicaName(i)+".yaml")
		yaml := gatewayConfig(root, f, fmt.Sprintf("127.0.0.1:%d", 10000+i), fmt.Sprintf("127.0.0.1:%d", 20000+i), "127.0.0.1:3000", -1, 0, false)
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("replica %d: %v\n%s", i+1, err, yaml)
		}
		cfgs = append(cfgs, cfg)
	}
	return dir, st, cfgs
}

func TestOneReplicaOnPostgresRedisDiffersOnlyInTheStore(t *testing.T) {
	dir, st, cfgs := loadReplicas(t, 1)
	c := cfgs[0]
	dsn, err1 := c.Store.PostgresDSN()
	url, err2 := c.Store.RedisURL()
	if err1 != nil || err2 != nil || !strings.Contains(dsn, "search_path=pc_bench_x") || url != "redis://127.0.0.1:6379/0" {
		t.Errorf("store secrets %q, %v; %q, %v", dsn, err1, url, err2)
	}
	if c.Store.Driver != "postgres" || c.Store.Redis.Prefix != st.prefix {
		t.Errorf("store %+v", c.Store)
	}
	if c.DataDir != dir+"/data" || c.Listen.PublicPort != 0 || c.CodeKeyPath() != dir+"/data/codes.key" {
		t.Errorf("data_dir %s, public_port %d, code key %s: want the SQLite gateway's", c.DataDir, c.Listen.PublicPort, c.CodeKeyPath())
	}
	// Apart from the store section, the text is the SQLite gateway's.
	f := sharedFiles(dir, st, 1, "")[0]
	f.store = sqliteFiles(dir).store
	if got, want := gatewayConfig("/R", f, "a:1", "a:2", "a:3", -1, 0, false),
		gatewayConfig("/R", sqliteFiles(dir), "a:1", "a:2", "a:3", -1, 0, false); got != want {
		t.Errorf("one replica's configuration differs beyond the store:\n%s\nwant\n%s", got, want)
	}
}

func TestReplicasShareWhatTheyMust(t *testing.T) {
	dir, st, cfgs := loadReplicas(t, 2)
	a, b := cfgs[0], cfgs[1]
	if a.DataDir == b.DataDir || a.Policies.DecisionLog == b.Policies.DecisionLog {
		t.Errorf("replicas share data_dir %s or decision log %s", a.DataDir, a.Policies.DecisionLog)
	}
	for _, c := range cfgs {
		if c.CodeKeyPath() != codeKeyPath(dir) {
			t.Errorf("%s: code key %s, want the shared %s", c.Source, c.CodeKeyPath(), codeKeyPath(dir))
		}
		if c.Listen.PublicPort != 8443 {
			t.Errorf("%s: public_port %d, want the front's 8443", c.Source, c.Listen.PublicPort)
		}
		if c.Delivery.SMS == nil || c.Delivery.SMS.Outbox == nil || c.DataPath(c.Delivery.SMS.Outbox.Path) != dir+"/data/outbox.jsonl" {
			t.Errorf("%s: sms %+v, want the shared outbox", c.Source, c.Delivery.SMS)
		}
		if c.Store.Driver != "postgres" || c.Store.Redis.Prefix != st.prefix || c.Store.Postgres.DSNFile != st.DSNFile {
			t.Errorf("%s: store %+v", c.Source, c.Store)
		}
	}
}

func TestCheckStore(t *testing.T) {
	ok := options{store: storeSQLite, replicas: 1, postgres: defaultPostgres, redis: defaultRedis}
	if err := checkStore(ok); err != nil {
		t.Errorf("sqlite, 1 replica: %v", err)
	}
	pr := ok
	pr.store, pr.replicas = storePostgresRedis, 2
	if err := checkStore(pr); err != nil {
		t.Errorf("postgres-redis, 2 replicas: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*options)
		want string
	}{
		{"sqlite replicas", func(o *options) { o.replicas = 2 }, "-replicas 2 needs -store postgres-redis"},
		{"unknown store", func(o *options) { o.store = "mysql" }, `-store "mysql"`},
		{"no replica", func(o *options) { o.store, o.replicas = storePostgresRedis, 0 }, "-replicas 0"},
		{"profile of replicas", func(o *options) { o.store, o.replicas, o.profile = storePostgresRedis, 2, "gw.prof" }, "-cpuprofile"},
		{"redis url", func(o *options) { o.store, o.redis = storePostgresRedis, "http://user:s3cret@host/" }, "-redis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			err := checkStore(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkStore = %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

func TestDSNWithSearchPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/test?search_path=pc_x&sslmode=disable"},
		{"postgresql://u:p@db/test?search_path=public", "postgresql://u:p@db/test?search_path=pc_x"},
		{"host=db user=u dbname=test search_path=public ", "host=db user=u dbname=test search_path=public search_path=pc_x"},
	} {
		got, err := dsnWithSearchPath(tc.in, "pc_x")
		if err != nil || got != tc.want {
			t.Errorf("dsnWithSearchPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if !strings.HasPrefix(tc.in, "postgres") {
			cfg, err := pgx.ParseConfig(got)
			if err != nil || cfg.RuntimeParams["search_path"] != "pc_x" {
				t.Errorf("%q: search_path %q, %v; the last setting must win", got, cfg.RuntimeParams["search_path"], err)
			}
		}
	}
	for _, in := range []string{"postgres://u:s3cret@db:notaport/x", "host=db password=s3cret port=notaport"} {
		_, err := dsnWithSearchPath(in, "pc_x")
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("dsnWithSearchPath(%q) = %v, want an error without the password", in, err)
		}
	}
}

func TestWriteSecretIs0600WhateverTheUmask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	if err := writeSecret(path, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := writeSecret(path, []byte("y")); err == nil {
		t.Error("writeSecret replaced an existing file")
	}
}

func TestCopyCA(t *testing.T) {
	from, to := t.TempDir(), filepath.Join(t.TempDir(), "data-2")
	if err := os.Mkdir(filepath.Join(from, "ca"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"root.key": "KEY", "root.crt": "CRT"} {
		if err := os.WriteFile(filepath.Join(from, "ca", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyCA(from, to); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"root.key": 0o600, "root.crt": 0o644, "": 0o700} {
		p := filepath.Join(to, "ca", name)
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", p, fi.Mode().Perm(), err, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(to, "ca", "root.key")); string(b) != "KEY" {
		t.Errorf("root.key holds %q", b)
	}
	if err := copyCA(t.TempDir(), filepath.Join(t.TempDir(), "x")); err == nil {
		t.Error("copyCA from a data directory without a CA = nil error")
	}
}

// TestSharedStoreLeavesNothingBehind runs against the servers of the
// repository's tests: the schema exists while the run does, and afterwards
// neither it nor any key under the run's prefix is left.
func TestSharedStoreLeavesNothingBehind(t *testing.T) {
	dsn, url := os.Getenv(postgresEnv), os.Getenv(redisEnv)
	if dsn == "" || url == "" {
		t.Skip(postgresEnv + " and " + redisEnv + " are not both set; skipping a test that needs PostgreSQL and Redis")
	}
	ctx := t.Context()
	st, err := newSharedStore(ctx, t.TempDir(), dsn, url)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			st.close()
		}
	})
	for _, p := range []string{st.DSNFile, st.URLFile} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", p, fi.Mode().Perm(), err)
		}
	}
	gwDSN, err := os.ReadFile(st.DSNFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, string(bytes.TrimSpace(gwDSN)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil || schema != st.schema {
		t.Fatalf("the gateway's DSN resolves to schema %q (%v), want %q", schema, err, st.schema)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE bench_probe (n int)"); err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	// More keys than one deletion batch, and one outside the prefix.
	for i := range 1203 {
		if err := c.Set(ctx, fmt.Sprintf("%sk%d", st.prefix, i), "v", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	other := "portcullis-bench-other:" + st.schema
	if err := c.Set(ctx, other, "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	defer c.Del(context.WithoutCancel(ctx), other)

	closed = true
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", st.schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s: %d left (%v)", st.schema, n, err)
	}
	if keys, err := c.Keys(ctx, st.prefix+"*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("%d keys left under the prefix (%v)", len(keys), err)
	}
	if v, err := c.Get(ctx, other).Result(); err != nil || v != "v" {
		t.Errorf("a key outside the prefix: %q, %v; want it kept", v, err)
	}
}
