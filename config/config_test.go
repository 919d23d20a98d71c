package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway"
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
		"3:3: listen.https", "4:3: listen.admin", "6:3: tls.mode", "8:3: store.driver", "trusted_proxies[0]", "trusted_proxies[1]",
		"session.idle_timeout: 13h0m0s must not exceed", "14:3: identity.assertion_ttl", `"Bad Header" is not a header name`,
		`identity.headers.X-Ok: field "email"`, "log.level", "log.format",
		"19:15: routes[0].host", "routes[0].upstream", `routes[1].name: "a" is the name of an earlier route too`, "routes[1].path_prefix",
		"geoip.anonymous_ip: is required", "policies.dir",
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
	f.Add([]byte("geoip: {allow_missing: true}\nroutes: [{name: a, host: a.b, upstream: 'http://x'}]\n" +
		"delivery: {sms: {outbox: {path: o.jsonl}, twilio: {}}, email: {smtp: {host: h, from: a@b}}, voice: {}}"))
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

// TestProblemsArePlaced: each problem once, on the line (and column) of its
// key, or of its value when the value has the wrong type.
func TestProblemsArePlaced(t *testing.T) {
	const ok = "geoip: {allow_missing: true}\n"
	tests := []struct{ name, yaml, want string }{
		{"syntax error on its own line, not where the list began",
			ok + "routes:\n  - name: a\n    host: a.example\n   upstream: http://x\n",
			"5: not valid YAML: did not find expected '-' indicator"},
		{"a value that does not decode is not also broken by the rules",
			ok + "routes: none\n",
			`2:9: routes: "none" is not a list`},
		{"unknown keys at any depth",
			ok + "routes:\n  - {name: a, host: a.example, upstream: 'http://x', prefix: /a}\nlisten: {htps: ':443'}\n",
			"3:54: routes[0].prefix: unknown key\n4:10: listen.htps: unknown key"},
		{"a repeated key",
			ok + "routes:\n  - {name: a, host: a.example, upstream: 'http://x', name: b}\n",
			"3:54: routes[0].name: repeats the key of line 3"},
		{"rules name list items by their place in the file, after an item that did not decode",
			ok + "routes:\n  - nonsense\n  - {name: b, host: B.example, upstream: 'http://x'}\n",
			"3:5: routes[0]: \"nonsense\" is not a mapping\n4:15: routes[1].host: \"B.example\" must be a lowercase host name without port"},
		{"a map key with a dot",
			ok + "routes: [{name: a, host: a.example, upstream: 'http://x'}]\nidentity:\n  headers:\n    X-Ok: username\n    X.User: username\n",
			`6:5: identity.headers.X.User: "X.User" is not a header name`},
		{"a missing key is placed on its parent",
			ok + "routes: [{name: a, host: a.example, upstream: 'http://x'}]\ntls:\n  mode: files\n  files: {cert: c.pem}\n",
			"5:3: tls.files.key: is required in files mode"},
		{"a missing top-level key has no line",
			ok,
			"routes: at least one route is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Error() != tc.want {
				t.Fatalf("problems:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestGatewayProblemsInStableOrder: gateway.Config.Validate keeps its
// identity headers in a map; the order of its problems must not follow the
// map's.
func TestGatewayProblemsInStableOrder(t *testing.T) {
	headers := map[string]string{}
	for _, h := range []string{"A B", "C D", "E F", "G H", "I J", "K L", "M N", "O P"} {
		headers[h] = "email"
	}
	first := gateway.Config{IdentityHeaders: headers}.Validate()
	var fes gateway.FieldErrors
	if !errors.As(first, &fes) || len(fes) == 0 || fes[0].Path == "" {
		t.Fatalf("Validate = %v, want gateway.FieldErrors with paths", first)
	}
	for range 20 {
		if again := (gateway.Config{IdentityHeaders: headers}.Validate()); again.Error() != first.Error() {
			t.Fatalf("Validate changed its order:\n%v\nthen:\n%v", first, again)
		}
	}
}

func TestPolicyBundleRules(t *testing.T) {
	dir := t.TempDir()
	bundle, key := filepath.Join(dir, "bundle.tar.gz"), filepath.Join(dir, "key.pem")
	for _, f := range []string{bundle, key} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := "geoip: {allow_missing: true}\nroutes: [{name: a, host: a.example, upstream: 'http://127.0.0.1:1'}]\n"
	for _, tc := range []struct {
		policies string
		want     string // "" accepted
	}{
		{"{bundle: " + bundle + ", bundle_public_key: " + key + "}", ""},
		{"{bundle: " + bundle + ", bundle_unsigned: true}", ""},
		{"{bundle: " + bundle + "}", "policies.bundle_public_key: is required"},
		{"{bundle: " + bundle + ", bundle_public_key: " + key + ", dir: " + dir + "}", "policies.bundle: and policies.dir"},
		{"{bundle_public_key: " + key + "}", "policies.bundle: is required"},
		{"{bundle: " + bundle + ", bundle_public_key: " + key + ", bundle_unsigned: true}", "policies.bundle_unsigned: cannot"},
		{"{bundle: " + filepath.Join(dir, "none.tar.gz") + ", bundle_public_key: " + key + "}", "policies.bundle:"},
		{"{bundle: " + bundle + ", bundle_public_key: " + filepath.Join(dir, "none.pem") + "}", "policies.bundle_public_key:"},
	} {
		t.Run(tc.policies, func(t *testing.T) {
			f, err := Parse([]byte(base + "policies: " + tc.policies + "\n"))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && f.Policies.Bundle != bundle:
				t.Fatalf("bundle %q", f.Policies.Bundle)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
