package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreChoice(t *testing.T) {
	const base = "geoip: {allow_missing: true}\nroutes:\n  - {name: app, host: app.example, upstream: 'http://127.0.0.1:1'}\n"
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const password = "pa55-w0rd-in-the-url"
	dsn := write("dsn", "postgres://portcullis:"+password+"@db.internal:5432/portcullis?sslmode=verify-full\n")
	redisURL := write("redis", "rediss://:"+password+"@cache.internal:6380/2\n")
	empty := write("empty", "\n")
	badScheme := write("bad-scheme", "http://:"+password+"@cache.internal:6380/2\n")
	unparsable := write("unparsable", "redis://:"+password+"%zz@cache.internal/0\n")
	noHost := write("no-host", "redis:///0\n")
	missing := filepath.Join(dir, "missing")

	t.Run("the default is sqlite without redis", func(t *testing.T) {
		f, err := Parse([]byte(base))
		if err != nil {
			t.Fatal(err)
		}
		if f.Store.Driver != "sqlite" {
			t.Errorf("store.driver = %q, want sqlite", f.Store.Driver)
		}
		if u, err := f.Store.RedisURL(); u != "" || err != nil {
			t.Errorf("RedisURL = %q, %v; want none", u, err)
		}
	})
	t.Run("postgres and redis read their files", func(t *testing.T) {
		f, err := Parse([]byte(base + "store:\n  driver: postgres\n  postgres: {dsn_file: '" + dsn + "'}\n  redis: {url_file: '" + redisURL + "', prefix: 'bank-a:'}\n"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Store.PostgresDSN()
		if err != nil || !strings.HasPrefix(got, "postgres://portcullis:") || strings.HasSuffix(got, "\n") {
			t.Errorf("PostgresDSN = %q, %v", got, err)
		}
		got, err = f.Store.RedisURL()
		if err != nil || got != "rediss://:"+password+"@cache.internal:6380/2" {
			t.Errorf("RedisURL = %q, %v", got, err)
		}
		if f.Store.Redis.Prefix != "bank-a:" {
			t.Errorf("store.redis.prefix = %q", f.Store.Redis.Prefix)
		}
	})
	t.Run("relative files are relative to the configuration", func(t *testing.T) {
		path := filepath.Join(dir, "portcullis.yaml")
		if err := os.WriteFile(path, []byte(base+"store: {redis: {url_file: redis}}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if f.Store.Redis.URLFile != redisURL {
			t.Errorf("store.redis.url_file = %q, want %q", f.Store.Redis.URLFile, redisURL)
		}
	})
	// Every problem at once, none repeating a password.
	for _, tc := range []struct {
		name, store string
		want        []string
	}{
		{"an unknown driver", "store: {driver: mysql}", []string{`store.driver: "mysql" is not supported (sqlite or postgres)`}},
		{"postgres without its file", "store: {driver: postgres}", []string{"store.postgres.dsn_file: is required with store.driver: postgres"}},
		{"a dsn file with sqlite", "store: {postgres: {dsn_file: '" + dsn + "'}}", []string{"store.postgres.dsn_file: needs store.driver: postgres"}},
		{"missing and empty files", "store: {driver: postgres, postgres: {dsn_file: '" + empty + "'}, redis: {url_file: '" + missing + "'}}",
			[]string{"store.postgres.dsn_file: " + empty + " is empty", "store.redis.url_file: open " + missing}},
		{"a URL of another scheme", "store: {redis: {url_file: '" + badScheme + "'}}", []string{`scheme "http" is not redis, rediss or unix`}},
		{"an unparsable URL", "store: {redis: {url_file: '" + unparsable + "'}}", []string{"store.redis.url_file: " + unparsable + " holds a URL that cannot be parsed"}},
		{"a URL without a host", "store: {redis: {url_file: '" + noHost + "'}}", []string{"a URL without a host"}},
		{"a prefix without redis", "store: {redis: {prefix: 'x:'}}", []string{"store.redis.prefix: needs store.redis.url_file"}},
		{"a prefix with a space", "store: {redis: {url_file: '" + redisURL + "', prefix: 'a b'}}", []string{"store.redis.prefix: must not contain spaces"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tc.store + "\n"))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error does not say %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, password) {
				t.Errorf("error repeats the password:\n%s", msg)
			}
		})
	}
}
