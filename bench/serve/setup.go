package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	// host is every proxy's public name; /etc/hosts resolves it for wrk.
	host     = "localhost"
	username = "alice"
	password = "harbour-lantern-7f3a-quill"
	phone    = "+12015550123"

	sessionCookie = "__Host-portcullis"
	deviceCookie  = "__Host-portcullis-device"
)

// build compiles the commands the benchmark runs into dir/bin.
func build(ctx context.Context, root, dir string, pkgs []string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", filepath.Join(dir, "bin") + "/"}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// moduleRoot is the directory of the go.mod the benchmark belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benchmark from inside the Portcullis module")
	}
	return filepath.Dir(gomod), nil
}

// writeCert writes a self-signed ECDSA P-256 certificate for host, the key
// type of the gateway's internal CA's leaves, for the proxies compared
// with it.
func writeCert(dir string) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, "proxy-cert.pem"), filepath.Join(dir, "proxy-key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// replicaFiles is where one gateway process keeps what is its own and
// finds what the replicas share.
type replicaFiles struct {
	dataDir     string
	decisionLog string
	// store is the store section's body.
	store string
	// outbox and codeKey are the shared outbox's and code key's paths, ""
	// for the defaults under dataDir; publicPort is listen.public_port, 0
	// for none.
	outbox, codeKey string
	publicPort      string
}

// sqliteFiles is the single gateway on SQLite in dir/data.
func sqliteFiles(dir string) replicaFiles {
	return replicaFiles{dataDir: dir + "/data", decisionLog: dir + "/decisions.jsonl",
		store: "  driver: sqlite\n  path: portcullis.db\n"}
}

// gatewayConfig is serve's configuration as an operator would run it:
// internal TLS, the shipped policies with the decision log on, the GeoIP
// databases, codes by text to an outbox, metrics on the admin listener.
func gatewayConfig(root string, f replicaFiles, listen, admin, upstream string, nice, hashers int, pprof bool) string {
	password := "password:\n  queue_timeout: 2s\n"
	if nice >= 0 {
		password += fmt.Sprintf("  nice: %d\n", nice)
	}
	if hashers > 0 {
		password += fmt.Sprintf("  max_concurrent: %d\n", hashers)
	}
	outbox, extra := "outbox.jsonl", ""
	if f.outbox != "" {
		outbox = f.outbox
	}
	if f.codeKey != "" {
		extra += fmt.Sprintf("codes:\n  key_file: %s\n", f.codeKey)
	}
	listenExtra := ""
	if f.publicPort != "" {
		listenExtra = "  public_port: " + f.publicPort + "\n"
	}
	return password + fmt.Sprintf(`data_dir: %[2]s
listen:
  https: %[3]q
  admin: %[4]q
  pprof: %[7]v
%[11]stls:
  mode: internal
routes:
  - name: bank
    host: %[6]s
    upstream: http://%[5]s
store:
%[9]ssession:
  idle_timeout: 15m
  max_lifetime: 12h
support_phone: 1-800-555-0100
delivery:
  sms: { outbox: { path: %[10]s } }
policies:
  decision_log: %[8]s
geoip:
  anonymous_ip: %[1]s/testdata/geoip/GeoIP2-Anonymous-IP-Test.mmdb
  country: %[1]s/testdata/geoip/GeoLite2-Country-Test.mmdb
log:
  level: info
  format: json
`, root, f.dataDir, listen, admin, upstream, host, pprof, f.decisionLog, f.store, outbox, listenExtra) + extra
}

// addUser creates the benchmark's customer with the admin command.
func addUser(ctx context.Context, bin, configPath string) error {
	cmd := exec.CommandContext(ctx, bin, "admin", "user", "add", "--config", configPath,
		"--username", username, "--name", "Alice Bench", "--products", "bank", "--phone", phone)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("admin user add: %w\n%s", err, out)
	}
	return nil
}

// gatewayClient trusts the gateway's local CA and keeps cookies.
func gatewayClient(caPath string) (*http.Client, error) {
	pemBytes, err := os.ReadFile(caPath)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s: no certificate", caPath)
	}
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host},
		MaxIdleConnsPerHost: 128, ForceAttemptHTTP2: false}
	return &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// postJSON posts body and decodes the answer's JSON into a map.
func postJSON(client *http.Client, url string, body any, headers ...string) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s answered %d %q", url, resp.StatusCode, raw)
	}
	return resp.StatusCode, m, nil
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// signIn signs the customer in on the gateway through the JSON API, with
// the step-up by text message an unknown device needs (the code read from
// the outbox), and registers the device. It returns the session and
// device cookies' values.
func signIn(client *http.Client, base, outbox string) (sessionValue, deviceValue string, err error) {
	status, m, err := postJSON(client, base+"/.portcullis/api/v1/login", map[string]string{"username": username, "password": password})
	if err != nil {
		return "", "", err
	}
	if status != http.StatusForbidden || m["status"] != "step_up_required" {
		return "", "", fmt.Errorf("login answered %d %v, want 403 step_up_required", status, m)
	}
	if status, m, err = postJSON(client, base+"/.portcullis/api/v1/step-up/send", map[string]string{"method": "sms"}); err != nil {
		return "", "", err
	} else if m["status"] != "code_sent" {
		return "", "", fmt.Errorf("step-up/send answered %d %v", status, m)
	}
	code, err := lastCode(outbox)
	if err != nil {
		return "", "", err
	}
	status, m, err = postJSON(client, base+"/.portcullis/api/v1/step-up/verify",
		map[string]any{"method": "code", "code": code, "remember_device": true})
	if err != nil {
		return "", "", err
	}
	if m["status"] != "authenticated" {
		return "", "", fmt.Errorf("step-up/verify answered %d %v", status, m)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	for _, c := range client.Jar.Cookies(req.URL) {
		switch c.Name {
		case sessionCookie:
			sessionValue = c.Value
		case deviceCookie:
			deviceValue = c.Value
		}
	}
	if sessionValue == "" || deviceValue == "" {
		return "", "", fmt.Errorf("signed in (%v), but the session or device cookie is missing: %v", m, client.Jar.Cookies(req.URL))
	}
	return sessionValue, deviceValue, nil
}

// lastCode reads the six-digit code of the outbox's last message.
func lastCode(outbox string) (string, error) {
	f, err := os.Open(outbox)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		last = sc.Text()
	}
	var msg struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal([]byte(last), &msg); err != nil {
		return "", fmt.Errorf("outbox %s: last line: %w", outbox, err)
	}
	code := sixDigits.FindString(msg.Text)
	if code == "" {
		return "", fmt.Errorf("outbox %s: no code in the last message", outbox)
	}
	return code, nil
}

// caddyfile puts Debian's Caddy in front of the upstream with the same
// certificate as the bare proxy, no admin endpoint, no automatic HTTPS and
// an idle pool above the load's concurrency.
func caddyfile(listen, upstream, cert, key string) string {
	return fmt.Sprintf(`{
	admin off
	auto_https off
}
https://%[5]s:%[1]s {
	tls %[3]s %[4]s
	reverse_proxy %[2]s {
		transport http {
			keepalive 90s
			keepalive_idle_conns 1024
			keepalive_idle_conns_per_host 256
		}
	}
}
`, portOf(listen), upstream, cert, key, host)
}

func portOf(addr string) string {
	return addr[strings.LastIndexByte(addr, ':')+1:]
}

// oauth2ProxyArgs runs oauth2-proxy in front of the upstream with its
// htpasswd sign-in and cookie sessions; request logging is off, as the
// other proxies log no line per request.
func oauth2ProxyArgs(dir, listen, httpListen, upstream, cert, key string) ([]string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(username+":"+string(hash)+"\n"), 0o600); err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	return []string{
		"--https-address=" + listen, "--http-address=" + httpListen,
		"--tls-cert-file=" + cert, "--tls-key-file=" + key, "--tls-min-version=TLS1.2",
		"--upstream=http://" + upstream + "/",
		"--htpasswd-file=" + htpasswd, "--email-domain=*",
		"--client-id=bench", "--client-secret=bench",
		"--cookie-secret=" + base64.RawURLEncoding.EncodeToString(secret),
		"--cookie-secure=true", "--request-logging=false", "--redirect-url=https://" + host + ":" + portOf(listen) + "/oauth2/callback",
	}, nil
}

// oauth2ProxySignIn signs in through oauth2-proxy's htpasswd form and
// returns the Cookie header its session needs.
func oauth2ProxySignIn(client *http.Client, base string) (string, error) {
	form := strings.NewReader("username=" + username + "&password=" + password + "&rd=/")
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/sign_in", form)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var pairs []string
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "_oauth2_proxy") {
			pairs = append(pairs, c.Name+"="+c.Value)
		}
	}
	if len(pairs) == 0 {
		return "", fmt.Errorf("oauth2-proxy sign-in answered %d without a session cookie", resp.StatusCode)
	}
	return strings.Join(pairs, "; "), nil
}
