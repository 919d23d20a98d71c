package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
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

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/compose/composetest"
	"github.com/portcullis/portcullis/plugins/delivery/outbox"
)

// TestBrowserSignInAcrossHosts signs in to the demo with a real Chromium: the
// HTML form on the login host, the step-up by a code read from the demo's
// outbox with the device checkbox (unticked by default) ticked, the redirect
// chain back to the app under the gateway's page CSP and its __Host-
// cookies, single sign-on to the second app, a sign-out that ends the login
// on every host, and a second sign-in from the now registered browser that
// skips the step-up and sends nothing.
//
// It needs Chromium ($PORTCULLIS_CHROMIUM, /usr/bin/chromium or chromium on
// the PATH). Without one it is skipped, except under CI, where it fails.
// $PORTCULLIS_SCREENSHOTS names a directory for a screenshot of the login
// page.
func TestBrowserSignInAcrossHosts(t *testing.T) {
	db := openDemoBrowser(t, 90*time.Second, nil)
	bctx, blog, dir, fail := db.ctx, db.log, db.dir, db.fail
	loginOrigin := db.origin("login.localhost")
	autoWhoami := db.origin("auto.localhost") + "/whoami"
	bankWhoami := db.origin("bank.localhost") + "/whoami"
	origin := db.origin

	// 1. An app page without a session leads to the sign-in form on the
	// login host.
	if err := chromedp.Do(bctx, chromedp.Navigate(autoWhoami)); err != nil {
		fail("open %s: %v", autoWhoami, err)
	}
	t.Logf("document requests: %q", blog.takeDocuments())
	if err := atLoginPage(bctx, loginOrigin, autoWhoami); err != nil {
		fail("%v", err)
	}
	shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		fail("screenshot: %v", err)
	}
	shotDir := os.Getenv("PORTCULLIS_SCREENSHOTS")
	if shotDir == "" {
		shotDir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(shotDir, "login.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the login page: %s", filepath.Join(shotDir, "login.png"))

	// 2. Signing in with the form from this new device asks for a security
	// code. The one texted (written to the demo's outbox) ends on the page
	// asked for, on the app's host: the POST, the step-up, authorize,
	// callback and the app, all in the browser.
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "wonderland-demo-42"),
	); err != nil {
		fail("fill in the sign-in form: %v", err)
	}
	resp, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	if err != nil {
		fail("submit the sign-in form: %v", err)
	}
	t.Logf("document requests: %q", blog.takeDocuments())
	if want := loginOrigin + "/.portcullis/step-up"; resp.URL != want || resp.Status != 200 {
		fail("after the password: %d %s, want 200 %s", resp.Status, resp.URL, want)
	}
	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`button[name="method"][value="sms"]`)))
	if err != nil {
		fail("ask for a code by text: %v", err)
	}
	if resp.Status != 200 {
		fail("after asking for a code: %d %s", resp.Status, resp.URL)
	}
	msg, err := outbox.Last(filepath.Join(dir, "outbox.jsonl"), outbox.Filter{Purpose: notify.PurposeLogin, Channel: notify.SMS})
	if err != nil {
		fail("read the code: %v", err)
	}
	code, _, _ := strings.Cut(msg.Text, " ")
	if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.ID("code"), code)); err != nil {
		fail("type the code: %v", err)
	}
	// The device checkbox is unticked by default, with the advice about
	// shared devices; alice ticks it.
	ticked, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('input[name="remember_device"]').checked`))
	if err != nil || ticked {
		fail("the device checkbox: ticked %v (%v), want unticked", ticked, err)
	}
	hints, err := chromedp.Run(bctx, chromedp.Evaluate[string](`[...document.querySelectorAll("p.hint")].map(p => p.textContent).join(" ")`))
	if err != nil || !strings.Contains(hints, "Don't register a shared or public device") {
		fail("the code page lacks the advice on shared devices: %q %v", hints, err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`input[name="remember_device"]`))); err != nil {
		fail("tick the device checkbox: %v", err)
	}
	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`form[action="/.portcullis/step-up/verify"] button[type="submit"]`)))
	if err != nil {
		fail("submit the code: %v", err)
	}
	t.Logf("document requests: %q", blog.takeDocuments())
	if resp.URL != autoWhoami || resp.Status != 200 {
		fail("after the code: %d %s, want 200 %s", resp.Status, resp.URL, autoWhoami)
	}
	who, err := whoamiAt(bctx, autoWhoami)
	if err != nil {
		fail("%v", err)
	}
	if who.App != "carloans" || who.User != "alice" || !who.Assertion.Verified {
		fail("car loans /whoami after signing in: %+v", who)
	}

	// 3. The other app knows alice at once: the login host's session is
	// exchanged for one on the bank host, with no sign-in form on the way.
	if err := chromedp.Do(bctx, chromedp.Navigate(bankWhoami)); err != nil {
		fail("open %s: %v", bankWhoami, err)
	}
	docs := blog.takeDocuments()
	t.Logf("document requests: %q", docs)
	for _, d := range docs {
		if strings.Contains(d, "/.portcullis/login") {
			t.Errorf("single sign-on went through the sign-in page: %q", docs)
		}
	}
	who, err = whoamiAt(bctx, bankWhoami)
	if err != nil {
		fail("%v", err)
	}
	if who.App != "savings" || who.User != "alice" || !who.Assertion.Verified {
		fail("savings /whoami through single sign-on: %+v", who)
	}

	// 4. Signing out on one app's host ends the login on every host.
	if err := chromedp.Do(bctx, chromedp.Navigate(origin("bank.localhost")+"/.portcullis/logout")); err != nil {
		fail("open the sign-out page: %v", err)
	}
	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	if err != nil {
		fail("submit the sign-out form: %v", err)
	}
	heading, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("h1")))
	if err != nil || resp.Status != 200 || heading != "Signed out" {
		fail("after signing out: %d %q %v", resp.Status, heading, err)
	}
	blog.takeDocuments()
	if err := chromedp.Do(bctx, chromedp.Navigate(autoWhoami)); err != nil {
		fail("open %s after signing out: %v", autoWhoami, err)
	}
	t.Logf("document requests: %q", blog.takeDocuments())
	if err := atLoginPage(bctx, loginOrigin, autoWhoami); err != nil {
		fail("after signing out on the bank host: %v", err)
	}

	// 5. No page broke the Content-Security-Policy it was served with. A
	// deliberate violation on the login page comes first: once the console
	// has reported it, it has reported any earlier one, and it shows that
	// this check can see a violation at all.
	if err := chromedp.Do(bctx, chromedp.Evaluate[chromedp.Void](`new Image().src = "https://csp-probe.invalid/x.png"`)); err != nil {
		fail("load an image the CSP forbids: %v", err)
	}
	if !blog.waitCSP(10*time.Second, "csp-probe.invalid") {
		fail("a deliberate CSP violation was not reported on the console, so the CSP check sees nothing")
	}
	var violations []string
	for _, m := range blog.cspMessages() {
		if !strings.Contains(m, "csp-probe.invalid") {
			violations = append(violations, m)
		}
	}
	if len(violations) > 0 {
		t.Errorf("Content-Security-Policy violations in the browser:\n%s", strings.Join(violations, "\n"))
	}
	// 6. The registered browser signs in again with the password alone:
	// no step-up page, and no code is sent.
	sent, err := outbox.Messages(filepath.Join(dir, "outbox.jsonl"))
	if err != nil {
		fail("read the outbox: %v", err)
	}
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "wonderland-demo-42"),
	); err != nil {
		fail("fill in the sign-in form again: %v", err)
	}
	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	if err != nil {
		fail("submit the sign-in form again: %v", err)
	}
	docs = blog.takeDocuments()
	t.Logf("document requests: %q", docs)
	if resp.URL != autoWhoami || resp.Status != 200 {
		fail("the registered browser signing in again: %d %s, want 200 %s", resp.Status, resp.URL, autoWhoami)
	}
	for _, d := range docs {
		if strings.Contains(d, "/.portcullis/step-up") {
			t.Errorf("the registered browser was asked for a step-up: %q", docs)
		}
	}
	if after, err := outbox.Messages(filepath.Join(dir, "outbox.jsonl")); err != nil || len(after) != len(sent) {
		fail("messages sent for the registered browser: %d before, %d after (%v)", len(sent), len(after), err)
	}
	t.Logf("browser console:\n%s", blog.consoleText())
}

// demoBrowser is the demo with a headless Chromium pointed at it.
type demoBrowser struct {
	// ctx is the browser tab's context.
	ctx  context.Context
	log  *browserLog
	dir  string // the demo's data directory
	addr string // where the demo listens
	port string
	// fail stops the test with what the browser reported. Chromium puts a
	// blocked form submission on the console a moment after the
	// navigation fails, so it waits briefly for a CSP message first.
	fail func(format string, args ...any)
}

// origin is the https origin of one of the demo's hosts.
func (d *demoBrowser) origin(host string) string { return "https://" + host + ":" + d.port }

// openDemoBrowser starts the demo and a headless Chromium that trusts
// exactly the demo's certificates, for at most timeout. before, when set,
// runs once the demo is up and before the browser starts (a test may skip
// there). Without Chromium the test is skipped, except under CI, where it
// fails.
//
// Chromium takes its trust anchors from the NSS database, not from a flag.
// Rather than --ignore-certificate-errors, it is told to accept exactly the
// leaf keys that Go has just verified against ca.pem; any other
// certificate still fails.
func openDemoBrowser(t *testing.T, timeout time.Duration, before func(ctx context.Context, addr string, caPEM []byte)) *demoBrowser {
	t.Helper()
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
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	addr, dir := startDemo(t, ctx)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(ctx, addr, caPEM)
	}
	leafKeys := demoLeafKeys(t, ctx, addr, caPEM, "login.localhost", "bank.localhost", "auto.localhost")

	var browserOut composetest.LogBuffer
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
	blog := newBrowserLog()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(blog.listen))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			t.Logf("browser output:\n%s", browserOut.String())
		}
	})
	// The first action starts the browser and ties it to its context: it
	// must be bctx, not a shorter-lived context a test derives for one
	// action.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &demoBrowser{ctx: bctx, log: blog, dir: dir, addr: addr, port: port,
		fail: func(format string, args ...any) {
			t.Helper()
			blog.waitCSP(2*time.Second, "")
			t.Fatalf("%s\ndocument requests: %q\nbrowser console:\n%s",
				fmt.Sprintf(format, args...), blog.takeDocuments(), blog.consoleText())
		}}
}

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
			t.Fatalf("TLS to %s trusting only ca.pem: %v", host, err)
		}
		leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
		conn.Close()
		sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		keys = append(keys, base64.StdEncoding.EncodeToString(sum[:]))
	}
	return keys
}

// atLoginPage reports whether the browser shows the sign-in form on the
// login host, set to return to rd.
func atLoginPage(ctx context.Context, loginOrigin, rd string) error {
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return err
	}
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	if "https://"+u.Host != loginOrigin || u.Path != "/.portcullis/login" || u.Query().Get("rd") != rd {
		return fmt.Errorf("at %s, want the sign-in page on %s returning to %s", loc, loginOrigin, rd)
	}
	form, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(() => {
		const f = document.querySelector('form[method="post"][action="/.portcullis/login"]');
		if (!f) return {};
		return {rd: f.elements.rd.value, csrf: f.elements.csrf.value,
			username: f.elements.username.type, password: f.elements.password.type};
	})()`))
	if err != nil {
		return err
	}
	if form["rd"] != rd || form["csrf"] == "" || form["username"] != "text" || form["password"] != "password" {
		return fmt.Errorf("sign-in form at %s: %v", loc, form)
	}
	return nil
}

// browserWhoami is the part of the sample apps' /whoami document the test
// reads.
type browserWhoami struct {
	App       string
	User      string
	Assertion struct {
		Verified bool
		Error    string
	}
}

// whoamiAt checks that the browser is at want and decodes the JSON the
// sample app shows there.
func whoamiAt(ctx context.Context, want string) (browserWhoami, error) {
	var who browserWhoami
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return who, err
	}
	if loc != want {
		return who, fmt.Errorf("at %s, want %s", loc, want)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return who, err
	}
	start, end := strings.Index(text, "{"), strings.LastIndex(text, "}")
	if start < 0 || end < start {
		return who, fmt.Errorf("%s shows no JSON: %q", want, text)
	}
	if err := json.Unmarshal([]byte(text[start:end+1]), &who); err != nil {
		return who, fmt.Errorf("%s: %w in %q", want, err, text)
	}
	return who, nil
}

// browserLog collects what the browser reports while the test drives it. Its
// listen method runs in chromedp's event loop.
type browserLog struct {
	mu        sync.Mutex
	csp       []string // console messages about Content-Security-Policy violations
	console   []string // every other warning or error on the console
	documents []string // document requests in order, redirects included
	cspAdded  chan struct{}
	// fresh is every message since takeFresh, CSP ones included.
	fresh []consoleEntry
}

// consoleEntry is one warning or error the browser reported.
type consoleEntry struct {
	text  string
	url   string // the resource it is about, when the browser names one
	error bool   // an error rather than a warning
	csp   bool   // a Content-Security-Policy violation
}

func newBrowserLog() *browserLog {
	return &browserLog{cspAdded: make(chan struct{}, 1)}
}

func (b *browserLog) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var text string
	var entry consoleEntry
	switch ev := ev.(type) {
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError && ev.Entry.Level != log.EntryLevelWarning {
			return
		}
		text = string(ev.Entry.Source) + " " + string(ev.Entry.Level) + ": " + ev.Entry.Text
		if ev.Entry.URL != "" {
			text += " (" + ev.Entry.URL + ")"
		}
		entry = consoleEntry{url: ev.Entry.URL, error: ev.Entry.Level == log.EntryLevelError}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeWarning {
			return
		}
		text = "console." + string(ev.Type) + ":"
		for _, arg := range ev.Args {
			text += " " + string(arg.Value) + arg.Description
		}
		entry.error = ev.Type == runtime.ConsoleAPICalledTypeError
	case *network.EventRequestWillBeSent:
		if ev.Type == network.ResourceTypeDocument {
			b.documents = append(b.documents, ev.Request.Method+" "+ev.Request.URL)
		}
		return
	default:
		return
	}
	entry.text = text
	entry.csp = strings.Contains(strings.ToLower(text), "content security policy")
	b.fresh = append(b.fresh, entry)
	if !entry.csp {
		b.console = append(b.console, text)
		return
	}
	b.csp = append(b.csp, text)
	select {
	case b.cspAdded <- struct{}{}:
	default:
	}
}

// takeDocuments returns and forgets the document requests seen so far.
func (b *browserLog) takeDocuments() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.documents
	b.documents = nil
	return d
}

// takeFresh returns and forgets the warnings and errors reported since it
// was last called.
func (b *browserLog) takeFresh() []consoleEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.fresh
	b.fresh = nil
	return f
}

func (b *browserLog) cspMessages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.csp...)
}

// consoleText is every console warning and error, CSP messages first.
func (b *browserLog) consoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(append(append([]string(nil), b.csp...), b.console...), "\n")
}

// waitCSP waits up to d for a CSP message containing sub ("" for any) and
// reports whether one came.
func (b *browserLog) waitCSP(d time.Duration, sub string) bool {
	timeout := time.After(d)
	for {
		for _, m := range b.cspMessages() {
			if strings.Contains(m, sub) {
				return true
			}
		}
		select {
		case <-b.cspAdded:
		case <-timeout:
			return false
		}
	}
}
