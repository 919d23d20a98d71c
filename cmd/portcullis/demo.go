package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/directory"
	"github.com/portcullis/portcullis/plugins/geoip/geoiptest"
	"github.com/portcullis/portcullis/sampleapp"
)

// demoCustomers are the sample customers the demo creates. Alice and
// carol have US numbers from the range kept for fiction (555-0100 to
// 555-0199), which the number plan types fixed_line_or_mobile: codes go by
// text and call. Bob's is libphonenumber's example UK VoIP number (+44 56),
// which the policies send no code to.
var demoCustomers = []newUser{
	{username: "alice", name: "Alice Liddell", password: "wonderland-demo-42", products: []string{"savings", "carloans"},
		phone: "+1 201-555-0123", customerID: "c1001"},
	{username: "bob", name: "Bob Cratchit", password: "counting-house-42", products: []string{"savings"},
		phone: "+44 56 1234 5678", customerID: "c1002"},
	{username: "carol", name: "Carol Danvers", password: "higher-further-42", products: []string{"carloans"},
		phone: "+1 201-555-0147", customerID: "c1003"},
}

// demoApps are the sample legacy apps, each on its own host.
var demoApps = []struct{ route, host, title string }{
	{"savings", "bank.localhost", "Savings"},
	{"carloans", "auto.localhost", "Car loans"},
}

const demoLoginHost = "login.localhost"

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "portcullis-demo", "directory for the demo's state")
	addr := fs.String("addr", "127.0.0.1:8443", "HTTPS listen address")
	admin := fs.String("admin", "127.0.0.1:9090", "admin listen address (metrics, health)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo data dir: %w", err)
	}
	// The sample apps listen on loopback ports of their own; only the
	// gateway reaches them.
	appLns := make([]net.Listener, len(demoApps))
	for i := range demoApps {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("sample app: %w", err)
		}
		defer ln.Close()
		appLns[i] = ln
	}
	// The demo's Anonymous-IP database flags 127.0.0.2 as an anonymous VPN
	// and 127.0.0.3 as a Tor exit, so `curl --interface 127.0.0.2` shows
	// the block.
	if err := geoiptest.Generate(dir); err != nil {
		return fmt.Errorf("demo geoip database: %w", err)
	}
	if err := writeDemoFiles(dir); err != nil {
		return err
	}
	cfg, err := config.Parse([]byte(demoConfig(dir, *addr, *admin, appLns)))
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return serve(ctx, cfg, logger, func(a *app) error {
		if err := seedCustomers(ctx, a, logger); err != nil {
			return err
		}
		client, err := pinnedClient(a.rootPEM, *addr)
		if err != nil {
			return err
		}
		jwks := assertion.RemoteJWKS("https://"+demoLoginHost+portOf(*addr)+"/.portcullis/jwks.json", client)
		for i, da := range demoApps {
			v, err := assertion.NewVerifier(assertion.VerifierConfig{Issuer: cfg.Issuer, Audience: da.route, Keys: jwks})
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: sampleapp.New(sampleapp.Config{Name: da.route, Title: da.title, Verifier: v}),
				ReadHeaderTimeout: 10 * time.Second}
			go func() {
				if err := srv.Serve(appLns[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
					logger.Error("sample app stopped", "app", da.route, "error", err)
				}
			}()
			context.AfterFunc(ctx, func() { srv.Close() })
		}
		printDemoHelp(stdout, dir, *addr)
		return nil
	})
}

func demoConfig(dir, addr, admin string, appLns []net.Listener) string {
	c := fmt.Sprintf(`data_dir: %q
listen:
  https: %q
  admin: %q
tls:
  mode: internal
login_host: %s
support_phone: 1-800-555-0100
organisation: Example Bank
directory:
  file: %q
brand:
  name: Example Bank
  logo: %q
  colors: { accent: "#0b5d3b", page: "#eef3f0" }
geoip:
  anonymous_ip: %q
  country: %q
policies:
  decision_log: %q
delivery:
  sms:   { outbox: { path: outbox.jsonl } }
  voice: { outbox: { path: outbox.jsonl } }
  email: { outbox: { path: outbox.jsonl } }
log:
  level: info
  format: text
routes:
`, dir, addr, admin, demoLoginHost, filepath.Join(dir, demoCustomersFile), filepath.Join(dir, demoLogoFile), filepath.Join(dir, geoiptest.AnonymousIPFile), filepath.Join(dir, geoiptest.CountryFile),
		filepath.Join(dir, "decisions.jsonl"))
	for i, da := range demoApps {
		c += fmt.Sprintf("  - name: %s\n    host: %s\n    upstream: http://%s\n", da.route, da.host, appLns[i].Addr())
	}
	return c
}

// The demo's customer records (the directory's sample file) and logo, written
// into the data directory so that an operator can read and edit them.
const (
	demoCustomersFile = "customers.json"
	demoLogoFile      = "logo.svg"
)

// demoLogo is the sample bank's logo.
const demoLogo = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" width="32" height="32">` +
	`<rect width="32" height="32" rx="6" fill="#0b5d3b"/>` +
	`<path d="M6 13h20L16 6zM8 15h3v9H8zm6.5 0h3v9h-3zM21 15h3v9h-3zM6 26h20v2H6z" fill="#fff"/></svg>
`

// writeDemoFiles writes the sample customer file and logo into dir when
// they are not there, leaving an operator's edits alone.
func writeDemoFiles(dir string) error {
	for _, f := range []struct {
		name string
		data []byte
	}{{demoCustomersFile, directory.SampleJSON()}, {demoLogoFile, []byte(demoLogo)}} {
		path := filepath.Join(dir, f.name)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		// The customer file holds identity data, fake as it is here: owner
		// only, as a real one must be.
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}

func seedCustomers(ctx context.Context, a *app, logger *slog.Logger) error {
	for _, c := range demoCustomers {
		_, err := a.store.UserByName(ctx, c.username)
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if _, err := addUser(ctx, a.store, a.server.Hasher(), a.policy.PasswordRules(), a.server.PasswordChecker(), a.phones, c, time.Now()); err != nil {
			return fmt.Errorf("demo customer %s: %w", c.username, err)
		}
		logger.Info("demo customer created", "username", c.username)
	}
	return nil
}

// pinnedClient is an HTTPS client that trusts only the demo's CA and
// reaches every host at the gateway's address.
func pinnedClient(rootPEM []byte, addr string) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		return nil, errors.New("demo: no local CA root")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}, nil
}

func portOf(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil && p != "443" {
		return ":" + p
	}
	return ""
}

// displayPath is dir as the person should type it: relative to the working
// directory when dir is inside it (as the README's portcullis-demo/ is),
// otherwise as given.
func displayPath(dir string) string {
	wd, err := os.Getwd()
	if err != nil {
		return dir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return dir
	}
	return rel
}

func printDemoHelp(w io.Writer, dir, addr string) {
	rel := displayPath(dir)
	port := portOf(addr)
	_, p, _ := net.SplitHostPort(addr)
	fmt.Fprintf(w, `
Portcullis demo is running.

  Open in a browser (trust %[1]s/ca.pem, or accept the warning):
    Savings     https://bank.localhost%[2]s/
    Car loans   https://auto.localhost%[2]s/
  Sign in as alice / wonderland-demo-42   (also bob / counting-house-42, carol / higher-further-42)

  A new device is asked for a security code. Texts, calls and emails are not sent: they are
  written to %[1]s/outbox.jsonl, so read the code with
    tail -1 %[1]s/outbox.jsonl

  From a terminal:
    curl --cacert %[1]s/ca.pem --resolve bank.localhost:%[3]s:127.0.0.1 https://bank.localhost%[2]s/whoami
    curl --cacert %[1]s/ca.pem --resolve bank.localhost:%[3]s:127.0.0.1 -c jar -b jar \
         -H 'Content-Type: application/json' -d '{"username":"alice","password":"wonderland-demo-42"}' \
         https://bank.localhost%[2]s/.portcullis/api/v1/login          # step_up_required
    curl --cacert %[1]s/ca.pem --resolve bank.localhost:%[3]s:127.0.0.1 -c jar -b jar \
         -H 'Content-Type: application/json' -d '{"method":"sms"}' \
         https://bank.localhost%[2]s/.portcullis/api/v1/step-up/send    # code_sent
    code=$(tail -1 %[1]s/outbox.jsonl | sed 's/.*"text":"\([0-9]*\).*/\1/')
    curl --cacert %[1]s/ca.pem --resolve bank.localhost:%[3]s:127.0.0.1 -c jar -b jar \
         -H 'Content-Type: application/json' -d '{"method":"code","code":"'$code'","remember_device":true}' \
         https://bank.localhost%[2]s/.portcullis/api/v1/step-up/verify  # authenticated
    curl --cacert %[1]s/ca.pem --resolve bank.localhost:%[3]s:127.0.0.1 -b jar https://bank.localhost%[2]s/whoami
  With remember_device the next login from this jar skips the code. Bob's security phone is a
  VoIP number, which gets no codes, so he has no step-up: his login answers step_up_unavailable
  (call us), as the policy data's step_up.allow_without_second_factor is false.

  Logins over a VPN or Tor are refused (the demo database flags 127.0.0.2 and 127.0.0.3):
    curl --interface 127.0.0.2 --cacert %[1]s/ca.pem --resolve bank.localhost:%[3]s:127.0.0.1 \
         -H 'Content-Type: application/json' -d '{"username":"alice","password":"wonderland-demo-42"}' \
         https://bank.localhost%[2]s/.portcullis/api/v1/login

  Create a profile for a customer who holds an account but has never signed in: open
    https://login.localhost%[2]s/.portcullis/enroll   (or "Create a profile" on the sign-in page)
  and give Dorothy Gale's details from %[1]s/customers.json: last name Gale, last 4 of SSN 0004,
  date of birth 08/25/1939, account 1000000004; then a username, a password and a security
  phone such as +1 201-555-0199, and the code from the outbox. Jay Gatsby's car loan (Gatsby,
  0007, 04/10/1922, VIN 1FAKE000000000007) is paid in full, so it can't make a profile.
  Forgot username and Forgot password on the sign-in page work the same way, with codes in the
  outbox; a password recovery also unlocks a profile locked by five wrong passwords.

  State (SQLite store, local CA, customers.json, outbox.jsonl, decisions.jsonl) is kept in
  %[1]s/. Ctrl-C stops.
`, rel, port, p)
}
