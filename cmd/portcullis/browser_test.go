package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// findChromium returns the Chromium binary to drive: $PORTCULLIS_CHROMIUM,
// then /usr/bin/chromium, then chromium on the PATH; "" when there is none.
func findChromium() string {
	if p := os.Getenv("PORTCULLIS_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// startBrowserDemo runs the demo on a free port until the test ends and
// returns its address and data directory.
func startBrowserDemo(t *testing.T, ctx context.Context) (addr, dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "portcullis-demo")
	addr = freeAddr(t)
	ctx, cancel := context.WithCancel(ctx)
	var out, errs syncBuffer
	done := make(chan struct{})
	var demoErr error
	go func() {
		defer close(done)
		demoErr = run(ctx, []string{"demo", "--data", dir, "--addr", addr, "--admin", freeAddr(t)}, nil, &out, &errs)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if demoErr != nil {
			t.Errorf("demo: %v", demoErr)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", errs.String())
		}
	})
	for !strings.Contains(out.String(), "demo is running") {
		select {
		case <-done:
			t.Fatalf("demo stopped:\n%s", errs.String())
		case <-ctx.Done():
			t.Fatalf("demo did not start:\n%s", errs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return addr, dir
}

// demoLeafKeys connects to each host as a client that trusts only the demo's
// ca.pem, so the handshake fails unless the served chain verifies, and returns
// the base64 SHA-256 of each verified leaf's SubjectPublicKeyInfo.
func demoLeafKeys(t *testing.T, ctx context.Context, addr string, caPEM []byte, hosts ...string) []string {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	var keys []string
	for _, host := range hosts {
		d := &tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatalf("TLS to %s with only ca.pem trusted: %v", host, err)
		}
		leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
		conn.Close()
		sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		keys = append(keys, base64.StdEncoding.EncodeToString(sum[:]))
	}
	return keys
}

// browserLog collects what the browser reports while the test drives it.
type browserLog struct {
	mu        sync.Mutex
	csp       []string // console messages about Content-Security-Policy violations
	console   []string // every other warning or error on the console
	documents []string // document requests in order, redirects included
}

func (b *browserLog) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var text string
	switch ev := ev.(type) {
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError && ev.Entry.Level != log.EntryLevelWarning {
			return
		}
		text = string(ev.Entry.Source) + " " + string(ev.Entry.Level) + ": " + ev.Entry.Text
		if ev.Entry.URL != "" {
			text += " (" + ev.Entry.URL + ")"
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeWarning {
			return
		}
		text = "console." + string(ev.Type) + ":"
		for _, arg := range ev.Args {
			text += " " + string(arg.Value) + arg.Description
		}
	case *network.EventRequestWillBeSent:
		if ev.Type == network.ResourceTypeDocument {
			b.documents = append(b.documents, ev.Request.Method+" "+ev.Request.URL)
		}
		return
	default:
		return
	}
	if strings.Contains(strings.ToLower(text), "content security policy") {
		b.csp = append(b.csp, text)
	} else {
		b.console = append(b.console, text)
	}
}

// take returns and forgets the document requests seen so far.
func (b *browserLog) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.documents
	b.documents = nil
	return d
}

func (b *browserLog) cspMessages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.csp...)
}

// TestBrowserSignInAcrossHosts signs in to the demo with a real Chromium: the
// HTML form on the login host, the redirect chain back to the app under the
// gateway's page CSP, single sign-on to the second app, and a sign-out that
// ends the login on every host.
func TestBrowserSignInAcrossHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo and a browser")
	}
	chromium := findChromium()
	if chromium == "" {
		const msg = "no Chromium found (set PORTCULLIS_CHROMIUM, or install the chromium package)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI must run the browser test")
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	addr, dir := startBrowserDemo(t, ctx)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	origin := func(host string) string { return "https://" + host + ":" + port }
	autoWhoami := origin("auto.localhost") + "/whoami"
	bankWhoami := origin("bank.localhost") + "/whoami"

	// Chromium takes its trust anchors from the NSS database, not from a
	// flag. Instead of --ignore-certificate-errors, it is told to accept
	// exactly the leaf keys that Go has just verified against ca.pem, so
	// the browser still rejects any other certificate.
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leafKeys := demoLeafKeys(t, ctx, addr, caPEM, "login.localhost", "bank.localhost", "auto.localhost")

	var browserOut syncBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
		chromedp.Flag("host-resolver-rules", "MAP *.localhost 127.0.0.1"),
		chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(leafKeys, ",")),
		chromedp.CombinedOutput(&browserOut),
	)
	var blog browserLog
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(blog.listen))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			blog.mu.Lock()
			defer blog.mu.Unlock()
			t.Logf("browser console:\n%s", strings.Join(append(blog.csp, blog.console...), "\n"))
			t.Logf("browser output:\n%s", browserOut.String())
		}
	})

	// 1. An app page without a session leads to the sign-in form on the
	// login host.
	if err := chromedp.Do(bctx, chromedp.Navigate(autoWhoami)); err != nil {
		t.Fatalf("open %s: %v", autoWhoami, err)
	}
	t.Logf("documents: %q", blog.take())
	requireLoginPage(t, bctx, origin("login.localhost"), autoWhoami)
	shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shotDir := os.Getenv("PORTCULLIS_SCREENSHOTS")
	if shotDir == "" {
		shotDir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(shotDir, "login.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the login page: %s", filepath.Join(shotDir, "login.png"))

	// 2. Signing in with the form ends on the page asked for, on the app's
	// host: POST login, authorize, callback and the app, all in the browser.
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "wonderland-demo-42"),
	); err != nil {
		t.Fatalf("fill in the form: %v", err)
	}
	resp, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	if err != nil {
		t.Fatalf("submit the sign-in form: %v (documents %q)", err, blog.take())
	}
	t.Logf("documents: %q", blog.take())
	if resp.URL != autoWhoami || resp.Status != 200 {
		t.Fatalf("after signing in: %d %s, want 200 %s", resp.Status, resp.URL, autoWhoami)
	}
	who := readWhoami(t, bctx, autoWhoami)
	if who.App != "carloans" || who.User != "alice" || !who.Assertion.Verified {
		t.Fatalf("car loans whoami after signing in: %+v", who)
	}

	// 3. The other app knows alice at once: the login host's session is
	// exchanged for one on the bank host, with no sign-in form on the way.
	if err := chromedp.Do(bctx, chromedp.Navigate(bankWhoami)); err != nil {
		t.Fatalf("open %s: %v", bankWhoami, err)
	}
	docs := blog.take()
	t.Logf("documents: %q", docs)
	for _, d := range docs {
		if strings.Contains(d, "/.portcullis/login") {
			t.Errorf("single sign-on showed the sign-in page: %q", docs)
		}
	}
	who = readWhoami(t, bctx, bankWhoami)
	if who.App != "savings" || who.User != "alice" || !who.Assertion.Verified {
		t.Fatalf("savings whoami through single sign-on: %+v", who)
	}

	// 4. Signing out on one app's host ends the login everywhere.
	if err := chromedp.Do(bctx, chromedp.Navigate(origin("bank.localhost")+"/.portcullis/logout")); err != nil {
		t.Fatalf("open the sign-out page: %v", err)
	}
	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	if err != nil {
		t.Fatalf("submit the sign-out form: %v", err)
	}
	title, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("h1")))
	if err != nil || resp.Status != 200 || title != "Signed out" {
		t.Fatalf("after signing out: %d %q %v", resp.Status, title, err)
	}
	blog.take()
	if err := chromedp.Do(bctx, chromedp.Navigate(autoWhoami)); err != nil {
		t.Fatalf("open %s after signing out: %v", autoWhoami, err)
	}
	t.Logf("documents: %q", blog.take())
	requireLoginPage(t, bctx, origin("login.localhost"), autoWhoami)

	// 5. No page the gateway served broke its own Content-Security-Policy.
	if msgs := blog.cspMessages(); len(msgs) > 0 {
		t.Errorf("Content-Security-Policy violations in the browser:\n%s", strings.Join(msgs, "\n"))
	}
	if len(blog.console) > 0 {
		t.Logf("other console messages:\n%s", strings.Join(blog.console, "\n"))
	}
	// A deliberate violation on the login page shows that the check above
	// would have seen one.
	if err := chromedp.Do(bctx, chromedp.Evaluate[chromedp.Void](`new Image().src = "https://csp-probe.invalid/x.png"`)); err != nil {
		t.Fatal(err)
	}
	for !slicesContain(blog.cspMessages(), "csp-probe.invalid") {
		select {
		case <-ctx.Done():
			t.Fatal("a deliberate CSP violation was not reported on the console: the CSP check sees nothing")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// requireLoginPage checks that the browser shows the sign-in form on the
// login host, set to return to rd.
func requireLoginPage(t *testing.T, ctx context.Context, loginOrigin, rd string) {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if "https://"+u.Host != loginOrigin || u.Path != "/.portcullis/login" || u.Query().Get("rd") != rd {
		t.Fatalf("at %s, want the sign-in page on %s returning to %s", loc, loginOrigin, rd)
	}
	form, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(() => {
		const f = document.querySelector('form[method="post"][action="/.portcullis/login"]');
		if (!f) return {};
		return {rd: f.elements.rd.value, csrf: f.elements.csrf.value,
			username: f.elements.username.type, password: f.elements.password.type};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if form["rd"] != rd || form["csrf"] == "" || form["username"] != "text" || form["password"] != "password" {
		t.Fatalf("sign-in form at %s: %v", loc, form)
	}
}

type browserWhoami struct {
	App       string
	User      string
	Assertion struct {
		Verified bool
		Error    string
	}
}

// readWhoami checks that the browser is at want and decodes the JSON the
// sample app shows there.
func readWhoami(t *testing.T, ctx context.Context, want string) browserWhoami {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if loc != want {
		t.Fatalf("at %s, want %s", loc, want)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	var who browserWhoami
	start, end := strings.Index(text, "{"), strings.LastIndex(text, "}")
	if start < 0 || end < start {
		t.Fatalf("%s shows no JSON: %q", want, text)
	}
	if err := json.Unmarshal([]byte(text[start:end+1]), &who); err != nil {
		t.Fatalf("%s: %v in %q", want, err, text)
	}
	return who
}

func slicesContain(msgs []string, sub string) bool {
	for _, m := range msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}
