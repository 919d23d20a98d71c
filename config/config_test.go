package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleIsValid(t *testing.T) {
	f, err := Load("../testdata/portcullis.yaml")
	if err != nil {
		t.Fatalf("testdata/portcullis.yaml: %v", err)
	}
	if len(f.Routes) != 3 || f.Routes[0].PathPrefix != "/" || f.Routes[1].PathPrefix != "/brokerage" {
		t.Fatalf("routes %+v", f.Routes)
	}
	if f.Session.IdleTimeout != 15*time.Minute || f.Identity.AssertionTTL != time.Minute {
		t.Fatalf("durations %+v %+v", f.Session, f.Identity)
	}
	if !filepath.IsAbs(f.DataDir) {
		t.Fatalf("data_dir %q not made absolute", f.DataDir)
	}
	g := f.Gateway()
	if len(g.TrustedProxies) != 2 || g.TrustedProxies[1].Bits() != 32 {
		t.Fatalf("trusted proxies %v", g.TrustedProxies)
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestMinimalConfigGetsDefaults(t *testing.T) {
	f, err := Parse([]byte("geoip: {allow_missing: true}\nroutes:\n  - {name: app, host: app.example, upstream: 'http://127.0.0.1:1'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.TLS.Mode != "internal" || f.Listen.HTTPS != ":443" || f.Listen.Admin != "127.0.0.1:9090" ||
		f.Issuer != "https://app.example" || f.Store.Driver != "sqlite" || f.Password.MemoryKiB != 19456 {
		t.Fatalf("defaults not applied: %+v", f)
	}
}

func TestEveryProblemReportedAtOnce(t *testing.T) {
	bad := `
listen:
  https: "nonsense"
  admin: "0.0.0.0:9090"
tls:
  mode: magic
store:
  driver: oracle
trusted_proxies: ["10.0.0.0/33", "not-an-ip"]
session:
  idle_timeout: 13h
  max_lifetime: 12h
identity:
  assertion_ttl: 5m
  headers: {"Bad Header": username, X-Ok: email}
log: {level: loud, format: xml}
policies: {dir: /nonexistent/policies}
routes:
  - {name: a, host: Bank.Example, upstream: "ftp://x"}
  - {name: a, host: b.example, path_prefix: /.portcullis/x, upstream: "http://127.0.0.1:1"}
`
	_, err := Parse([]byte(bad))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"listen.https", "listen.admin", "tls.mode", "store.driver", "trusted_proxies[0]", "trusted_proxies[1]",
		"idle_timeout must not exceed", "assertion_ttl", `"Bad Header"`, `field "email"`, "log.level", "log.format",
		"routes[0]: host", "routes[0]: upstream", `routes[1]: name "a" is used twice`, "routes[1]: path_prefix",
		"geoip.anonymous_ip is required", "policies.dir",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
}

func TestUnknownKeysAndTypesReported(t *testing.T) {
	_, err := Parse([]byte("listne: {}\nsession: {idle_timeout: soon}\nroutes: []\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"listne", "soon"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func TestACMERules(t *testing.T) {
	_, err := Parse([]byte("tls: {mode: acme, acme: {on_demand: true}}\nroutes:\n  - {name: a, host: a.example, upstream: 'http://127.0.0.1:1'}\n"))
	if err == nil || !strings.Contains(err.Error(), "email") || !strings.Contains(err.Error(), "ask") {
		t.Fatalf("acme without email or ask: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !os.IsNotExist(errorsUnwrapAll(err)) {
		t.Fatalf("missing file: %v", err)
	}
}

func errorsUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// FuzzParse: configuration is outside input; any bytes give a config or an
// error, never a panic, and an accepted config builds a valid gateway config.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../testdata/portcullis.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("geoip: {allow_missing: true}\nroutes: [{name: a, host: a.b, upstream: 'http://x'}]"))
	f.Add([]byte("session: {idle_timeout: -1s}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse(b)
		if err != nil {
			return
		}
		if err := cfg.Gateway().Validate(); err != nil {
			t.Fatalf("accepted config gives an invalid gateway config: %v", err)
		}
	})
}
