package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// The stores the gateway can be measured on.
const (
	storeSQLite        = "sqlite"
	storePostgresRedis = "postgres-redis"
)

// The servers -store postgres-redis uses when neither flag nor environment
// names one: those of the repository's continuous integration.
const (
	postgresEnv     = "PORTCULLIS_TEST_POSTGRES"
	redisEnv        = "PORTCULLIS_TEST_REDIS"
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultRedis    = "redis://127.0.0.1:6379/0"
)

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// checkStore refuses a store and replica count the harness cannot run.
func checkStore(o options) error {
	switch o.store {
	case storeSQLite:
		if o.replicas != 1 {
			return fmt.Errorf("-replicas %d needs -store %s: replicas share their state in PostgreSQL and Redis, and SQLite is one instance's store", o.replicas, storePostgresRedis)
		}
	case storePostgresRedis:
		if o.replicas < 1 {
			return fmt.Errorf("-replicas %d: want 1 or more", o.replicas)
		}
		if _, err := redis.ParseURL(o.redis); err != nil {
			// go-redis's error does not repeat the URL, which may hold a password.
			return fmt.Errorf("-redis: %w", err)
		}
	default:
		return fmt.Errorf("-store %q: want %s or %s", o.store, storeSQLite, storePostgresRedis)
	}
	if o.replicas > 1 && o.profile != "" {
		return errors.New("-cpuprofile profiles one gateway: use it with -replicas 1")
	}
	return nil
}

// sharedStore is the PostgreSQL schema and Redis key prefix of one run,
// made for it and emptied after it, so that runs and tests can share the
// servers.
type sharedStore struct {
	baseDSN  string // the DSN the schema was created with
	schema   string
	redisURL string
	prefix   string
	// DSNFile and URLFile hold the gateway's DSN (its search_path the
	// schema) and the Redis URL, mode 0600.
	DSNFile, URLFile string
}

// newSharedStore creates a fresh schema on the PostgreSQL server and picks
// a key prefix no other run uses, writing the gateway's secret files into
// dir/secrets. The schema is made last: on an error nothing is left on
// either server.
func newSharedStore(ctx context.Context, dir, dsn, redisURL string) (*sharedStore, error) {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	tag := hex.EncodeToString(id)
	gwDSN, err := dsnWithSearchPath(dsn, "pc_bench_"+tag)
	if err != nil {
		return nil, err
	}
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return nil, err
	}
	s := &sharedStore{baseDSN: dsn, redisURL: redisURL, prefix: "portcullis-bench:" + tag + ":",
		DSNFile: filepath.Join(secrets, "postgres.dsn"), URLFile: filepath.Join(secrets, "redis.url")}
	if err := errors.Join(writeSecret(s.DSNFile, []byte(gwDSN+"\n")), writeSecret(s.URLFile, []byte(redisURL+"\n"))); err != nil {
		return nil, err
	}
	if err := s.pingRedis(ctx); err != nil {
		return nil, err
	}
	if err := s.exec(ctx, "CREATE SCHEMA "+pgx.Identifier{"pc_bench_" + tag}.Sanitize()); err != nil {
		return nil, err
	}
	s.schema = "pc_bench_" + tag
	return s, nil
}

// writeSecret writes a secret file, mode 0600 whatever the umask.
func writeSecret(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	return errors.Join(err, f.Close())
}

// dsnWithSearchPath returns dsn with its search_path set to schema,
// overriding any the DSN names: a query parameter of a postgres:// URL, a
// trailing key=value pair otherwise (the last of a key wins).
func dsnWithSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// url's error repeats the DSN, which may hold a password.
			return "", errors.New("-postgres is not a URL that can be parsed")
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return "", errors.New("-postgres is neither a postgres:// URL nor key=value settings pgx can parse")
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema, nil
}

// exec runs one statement on the server outside any gateway.
func (s *sharedStore) exec(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, s.baseDSN)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("postgres: %s: %w", stmt, err)
	}
	return nil
}

func (s *sharedStore) client() (*redis.Client, error) {
	opts, err := redis.ParseURL(s.redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	return redis.NewClient(opts), nil
}

func (s *sharedStore) pingRedis(ctx context.Context) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// deleteKeys deletes the run's keys in Redis, a batch at a time, and
// returns how many it deleted.
func (s *sharedStore) deleteKeys(ctx context.Context, c *redis.Client) (int64, error) {
	var n int64
	batch := make([]string, 0, 500)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		d, err := c.Del(ctx, batch...).Result()
		n, batch = n+d, batch[:0]
		return err
	}
	iter := c.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// close drops the schema and deletes the prefix's keys; it runs after the
// gateways have stopped, and even when the run was interrupted.
func (s *sharedStore) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	if s.schema != "" {
		errs = append(errs, s.exec(ctx, "DROP SCHEMA "+pgx.Identifier{s.schema}.Sanitize()+" CASCADE"))
	}
	c, err := s.client()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer c.Close()
	if _, err := s.deleteKeys(ctx, c); err != nil {
		errs = append(errs, fmt.Errorf("redis: delete the run's keys: %w", err))
	}
	return errors.Join(errs...)
}
