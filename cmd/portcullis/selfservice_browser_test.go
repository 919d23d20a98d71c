package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/outbox"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// TestBrowserSelfService takes a customer of the demo's directory who has
// never signed in through the life of a profile, in a real Chromium on the
// demo's own pages:
//
//  1. creating a profile: identity, credentials with consent, a security
//     phone and the code texted to it;
//  2. signing in, the step-up by texted code with "register this device"
//     ticked, and the savings app showing who is signed in;
//  3. signing out, and in again from the registered browser with no step-up;
//  4. five wrong passwords, which lock the profile;
//  5. forgot password, which unlocks it with a new password;
//  6. forgot username;
//  7. a new security phone in the settings, after a fresh step-up;
//  8. a second enrolment for the same identity, which makes no second
//     profile.
//
// Every page visited is saved as a full-page PNG in the test's artifact
// directory (kept with go test -artifacts) and checked: no console error,
// no Content-Security-Policy violation, and a label for every visible form
// field. A step that fails names itself and the page, with its screenshot.
// Every step after the first two runs even when one before it failed; a
// failed step 5 leaves the profile locked, so the store unlocks it for the
// steps after it.
func TestBrowserSelfService(t *testing.T) {
	db := openDemoBrowser(t, 90*time.Second, nil)
	s := &selfService{db: db, shots: t.ArtifactDir(), outbox: filepath.Join(db.dir, "outbox.jsonl"),
		username: "dorothy", password: "silver shoes cross the deadly desert", phone: dorothyPhone}
	t.Logf("screenshots of every page: %s", s.shots)
	for i, step := range []struct {
		name string
		run  func(p *pageStep)
		// needed: the steps after this one build on it. afterFailure, when
		// set, puts right what they need after it failed.
		needed       bool
		afterFailure func(t *testing.T)
	}{
		{name: "creates_a_profile", run: s.enrol, needed: true},
		{name: "signs_in_and_registers_the_device", run: s.firstSignIn, needed: true},
		{name: "signs_in_again_without_a_step_up", run: s.registeredSignIn},
		{name: "five_wrong_passwords_lock_the_profile", run: s.lockOut},
		{name: "forgot_password_unlocks_the_profile", run: s.recoverPassword, afterFailure: s.unlockInStore},
		{name: "forgot_username_shows_it", run: s.recoverUsername},
		{name: "changes_the_security_phone", run: s.changePhone},
		{name: "a_second_enrolment_makes_no_profile", run: s.enrolAgain},
	} {
		num := i + 1
		if t.Run(fmt.Sprintf("%d_%s", num, step.name), func(t *testing.T) {
			step.run(&pageStep{t: t, s: s, num: num})
		}) {
			continue
		}
		if step.needed {
			t.Fatalf("step %d failed, and the steps after it build on it", num)
		}
		if step.afterFailure != nil {
			step.afterFailure(t)
		}
	}
	if !t.Failed() {
		s.probeChecks(t)
	}
}

// dorothy is the demo directory's customer with an account and no profile,
// as the demo's help text gives her.
var dorothy = identityAnswers{LastName: "Gale", TaxIDLast4: "0004", DateOfBirth: "08/25/1939", Account: "1000000004"}

const (
	dorothyCustomerID = "c1004"
	// dorothyPhone is the security phone she enrols with, and newPhone the
	// one she changes to: both in the fictional 555-01xx range, which the
	// number plan types fixed_line_or_mobile, so that codes go by text.
	dorothyPhone = "+12015550199"
	newPhone     = "+12015550188"
)

// identityAnswers are the answers of the identity forms.
type identityAnswers struct{ LastName, TaxIDLast4, DateOfBirth, Account string }

// selfService is what the suite's steps share: the browser on the demo,
// where screenshots go, and the profile as the steps have left it.
type selfService struct {
	db     *demoBrowser
	shots  string
	outbox string
	// username, password and phone are the profile's current ones; userID
	// is learnt from the first message about it.
	username, password, phone, userID string
}

func (s *selfService) login() string { return s.db.origin("login.localhost") }

// home is the savings app's home page, which Dorothy's savings account
// reaches.
func (s *selfService) home() string { return s.db.origin("bank.localhost") + "/" }

// pageStep is one step of the suite in the browser: it saves and checks
// every page the step visits, and names the step and the page in failures.
type pageStep struct {
	t    *testing.T
	s    *selfService
	num  int
	n    int    // pages saved so far
	page string // the page the browser shows, as the step named it
}

func (p *pageStep) ctx() context.Context { return p.s.db.ctx }

// fatalf stops the step, naming it and the page, with a screenshot of the
// page the browser shows.
func (p *pageStep) fatalf(format string, args ...any) {
	p.t.Helper()
	shot, err := p.save("failed-" + p.page)
	if err != nil {
		shot = err.Error()
	}
	var console []string
	for _, m := range p.s.db.log.takeFresh() {
		console = append(console, m.text)
	}
	p.t.Fatalf("step %d, on the %q page: %s\nscreenshot of the failing page: %s\ndocument requests: %q\nbrowser console since the page before:\n%s",
		p.num, p.page, fmt.Sprintf(format, args...), shot, p.s.db.log.takeDocuments(), strings.Join(console, "\n"))
}

// save writes a full-page screenshot named by the step, the page's place in
// it and name, and returns its path.
func (p *pageStep) save(name string) (string, error) {
	p.n++
	path := filepath.Join(p.s.shots, fmt.Sprintf("%d-%02d-%s.png", p.num, p.n, name))
	ctx, cancel := context.WithTimeout(p.ctx(), 10*time.Second)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", fmt.Errorf("no screenshot of %s: %w", name, err)
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// at records that the browser shows the page name, reached with resp. The
// page is saved and checked: every visible field has a label, and nothing
// on the console is an error or a CSP violation, apart from the browser's
// own favicon request and the page's document when the gateway served it
// with a refusal's status (which the step checks).
func (p *pageStep) at(name string, resp *network.Response) {
	p.t.Helper()
	p.page = name
	shot, err := p.save(name)
	if err != nil {
		p.fatalf("%v", err)
	}
	unlabeled, err := chromedp.Run(p.ctx(), chromedp.Evaluate[[]string](unlabeledFields))
	if err != nil {
		p.fatalf("look for fields without a label: %v", err)
	}
	for _, f := range unlabeled {
		p.t.Errorf("step %d, %s page (%s): the field %s has no label", p.num, name, shot, f)
	}
	for _, m := range p.s.db.log.takeFresh() {
		switch {
		case m.csp:
			p.t.Errorf("step %d, %s page (%s): Content-Security-Policy violation: %s", p.num, name, shot, m.text)
		case !m.error:
			p.t.Logf("step %d, %s page: console warning: %s", p.num, name, m.text)
		case strings.HasSuffix(m.url, "/favicon.ico"),
			resp != nil && resp.Status >= 400 && m.url == resp.URL && strings.Contains(m.text, "Failed to load resource"):
			p.t.Logf("step %d, %s page: %s", p.num, name, m.text)
		default:
			p.t.Errorf("step %d, %s page (%s): console error: %s", p.num, name, shot, m.text)
		}
	}
}

// unlabeledFields lists the visible input, select and textarea elements
// (other than hidden inputs and submit buttons) without a label: a <label
// for=id>, a wrapping <label>, aria-label or aria-labelledby, each with
// text.
const unlabeledFields = `(() => {
	const named = el => (el.textContent || "").trim() !== "";
	const out = [];
	for (const el of document.querySelectorAll("input, select, textarea")) {
		const type = (el.getAttribute("type") || "").toLowerCase();
		if (el.tagName === "INPUT" && (type === "hidden" || type === "submit")) continue;
		if (el.getClientRects().length === 0 || getComputedStyle(el).visibility === "hidden") continue;
		const ids = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean);
		if ([...(el.labels || [])].some(named) ||
			(el.getAttribute("aria-label") || "").trim() !== "" ||
			(ids.length > 0 && ids.every(id => document.getElementById(id) && named(document.getElementById(id))))) continue;
		let d = el.tagName.toLowerCase();
		if (el.id) d += "#" + el.id;
		if (el.name) d += '[name="' + el.name + '"]';
		if (type) d += '[type="' + type + '"]';
		out.push(d);
	}
	return out;
})()`

// q is the JavaScript for the first element a CSS selector matches.
func q(selector string) string { return "document.querySelector(" + jsString(selector) + ")" }

// button is the JavaScript for the first button whose text is text.
func button(text string) string {
	return `[...document.querySelectorAll("button")].find(b => b.textContent.trim() === ` + jsString(text) + `)`
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// has reports whether the JavaScript el gives an element on the page.
func (p *pageStep) has(el string) bool {
	p.t.Helper()
	ok, err := chromedp.Run(p.ctx(), chromedp.Evaluate[bool]("!!("+el+")"))
	if err != nil {
		p.fatalf("look for %s: %v", el, err)
	}
	return ok
}

// need fails the step unless the page has the element el: a query for a
// missing element would wait until the test's time is up.
func (p *pageStep) need(what, el string) {
	p.t.Helper()
	if !p.has(el) {
		p.fatalf("the page has no %s", what)
	}
}

// fill types value into the field named name, replacing what it held.
// Failures name the field, never the value.
func (p *pageStep) fill(name, value string) {
	p.t.Helper()
	sel := `[name="` + name + `"]`
	p.need("field "+name, q(sel))
	if err := chromedp.Do(p.ctx(), chromedp.Evaluate[chromedp.Void](q(sel)+`.value = ""`), chromedp.SendKeys(chromedp.CSS(sel), value)); err != nil {
		p.fatalf("type into the field %s: %v", name, err)
	}
}

// submit clicks what el gives and returns the response of the page that
// loads.
func (p *pageStep) submit(what, el string) *network.Response {
	p.t.Helper()
	p.need(what, el)
	ctx, cancel := context.WithTimeout(p.ctx(), 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.JSPath(el)))
	if err != nil {
		p.fatalf("%s: %v", what, err)
	}
	return resp
}

// open goes to u and returns the response of the page it ends on.
func (p *pageStep) open(u string) *network.Response {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx(), 20*time.Second)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		p.fatalf("open %s: %v", u, err)
	}
	return resp
}

// reached fails the step unless resp is the page want (a URL, or a path on
// the login host) answered with status, and then records the page name (see
// at).
func (p *pageStep) reached(name string, resp *network.Response, status int, want string) {
	p.t.Helper()
	p.page = name
	if strings.HasPrefix(want, "/") {
		want = p.s.login() + want
	}
	if resp.URL != want || resp.Status != int64(status) {
		p.fatalf("the browser got %d %s, want %d %s", resp.Status, resp.URL, status, want)
	}
	p.at(name, resp)
}

// text is what the page's main part reads.
func (p *pageStep) text() string {
	p.t.Helper()
	text, err := chromedp.Run(p.ctx(), chromedp.Evaluate[string](`(document.querySelector("main") || document.body).innerText`))
	if err != nil {
		p.fatalf("read the page: %v", err)
	}
	return text
}

// says fails the step unless the page's text holds every one of parts.
func (p *pageStep) says(parts ...string) {
	p.t.Helper()
	text := p.text()
	for _, part := range parts {
		if !strings.Contains(text, part) {
			p.fatalf("the page does not say %q; it reads:\n%s", part, text)
		}
	}
}

// sent is the number of messages in the outbox.
func (p *pageStep) sent() int {
	p.t.Helper()
	msgs, err := outbox.Messages(p.s.outbox)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		p.fatalf("read the outbox: %v", err)
	}
	return len(msgs)
}

// message waits for the first message f selects, with text in its text,
// after the outbox's first after messages (some are sent in the
// background), for at most 10 s.
func (p *pageStep) message(after int, f outbox.Filter, text, what string) outbox.Record {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs, err := outbox.Messages(p.s.outbox)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			p.fatalf("read the outbox: %v", err)
		}
		for _, m := range msgs[min(after, len(msgs)):] {
			if f.Match(m) && strings.Contains(m.Text, text) {
				return m
			}
		}
		if time.Now().After(deadline) {
			p.fatalf("no %s in the outbox (%+v) after its first %d messages", what, f, after)
		}
		select {
		case <-p.ctx().Done():
			p.fatalf("no %s in the outbox: %v", what, p.ctx().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var securityCode = regexp.MustCompile(`^[0-9]{6}$`)

// code is the security code that a text message texted to phone after the
// outbox's first after messages begins with, for purpose.
func (p *pageStep) code(after int, purpose, phone string) string {
	p.t.Helper()
	m := p.message(after, outbox.Filter{Purpose: purpose, Channel: notify.SMS, To: phone}, "", "security code for "+purpose)
	code, _, _ := strings.Cut(m.Text, " ")
	if !securityCode.MatchString(code) {
		p.fatalf("the %s text does not begin with a 6-digit code", purpose)
	}
	if p.s.userID == "" {
		p.s.userID = m.UserID
	}
	return code
}

// notice waits for the notice of event to the profile after the outbox's
// first after messages, by email or to the phone to (when set).
func (p *pageStep) notice(after int, event, to string) {
	p.t.Helper()
	want, ok := notify.Notice("Example Bank", event)
	if !ok {
		p.fatalf("no notice is named %s", event)
	}
	p.message(after, outbox.Filter{UserID: p.s.userID, Purpose: notify.PurposeNotice, To: to}, want, event+" notice")
}

// identify fills in an identity form with id; the account number only where
// the form asks for one.
func (p *pageStep) identify(id identityAnswers) {
	p.t.Helper()
	p.fill("last_name", id.LastName)
	p.fill("tax_id_last4", id.TaxIDLast4)
	p.fill("date_of_birth", id.DateOfBirth)
	if id.Account != "" {
		p.fill("account_number", id.Account)
	}
}

// signIn opens the savings app, which sends the browser to the sign-in form
// on the login host, and signs in there with the profile's username and
// password; it returns the response of the page the form leads to.
func (p *pageStep) signIn(password string) *network.Response {
	p.t.Helper()
	resp := p.open(p.s.home())
	if err := atLoginPage(p.ctx(), p.s.login(), p.s.home()); err != nil {
		p.fatalf("%v", err)
	}
	p.at("sign-in", resp)
	p.fill("username", p.s.username)
	p.fill("password", password)
	return p.submit("the sign-in button", q(`form[action="/.portcullis/login"] button[type="submit"]`))
}

// atApp checks that the browser is on the savings app's home page, signed
// in as the profile, and that the app's /whoami has a verified assertion.
func (p *pageStep) atApp(resp *network.Response) {
	p.t.Helper()
	p.reached("savings-app", resp, 200, p.s.home())
	heading, err := chromedp.Run(p.ctx(), chromedp.Text(chromedp.CSS("h1")))
	if err != nil || heading != "Savings — welcome, "+p.s.username {
		p.fatalf("the savings app's heading is %q (%v), want it to welcome %s", heading, err, p.s.username)
	}
	whoami := p.s.db.origin("bank.localhost") + "/whoami"
	p.at("savings-whoami", p.open(whoami))
	who, err := whoamiAt(p.ctx(), whoami)
	if err != nil {
		p.fatalf("%v", err)
	}
	if who.App != "savings" || who.User != p.s.username || !who.Assertion.Verified {
		p.fatalf("savings /whoami: %+v, want %s with a verified assertion", who, p.s.username)
	}
}

// signOut signs out with the form on the login host.
func (p *pageStep) signOut() {
	p.t.Helper()
	p.at("sign-out", p.open(p.s.login()+"/.portcullis/logout"))
	resp := p.submit("the sign-out button", q(`form[action="/.portcullis/logout"] button[type="submit"]`))
	p.reached("signed-out", resp, 200, "/.portcullis/logout")
	p.says("Signed out")
}

// verifyCode asks for a code by text on the step-up page, types the one
// texted to phone for purpose (ticking "register this device" when
// remember), and returns the response to the code.
func (p *pageStep) verifyCode(purpose, phone string, remember bool) *network.Response {
	p.t.Helper()
	before := p.sent()
	resp := p.submit("the Text me a code button", q(`button[name="method"][value="sms"]`))
	p.reached("step-up-code", resp, 200, "/.portcullis/step-up/send")
	p.fill("code", p.code(before, purpose, phone))
	box := q(`input[name="remember_device"]`)
	p.need("Register this device checkbox", box)
	ticked, err := chromedp.Run(p.ctx(), chromedp.Evaluate[bool](box+".checked"))
	if err != nil || ticked {
		p.fatalf("the Register this device checkbox is ticked (%v), want it unticked by default", err)
	}
	if remember {
		if err := chromedp.Do(p.ctx(), chromedp.Click(chromedp.JSPath(box))); err != nil {
			p.fatalf("tick Register this device: %v", err)
		}
	}
	return p.submit("the Verify button", q(`form[action="/.portcullis/step-up/verify"] button[type="submit"]`))
}

// 1. Dorothy creates her profile from the sign-in page's link.
func (s *selfService) enrol(p *pageStep) {
	resp := p.open(s.login() + "/.portcullis/login")
	p.at("sign-in", resp)
	resp = p.submit("the Create a profile link", q(`a[href="/.portcullis/enroll"]`))
	p.reached("enrol-identify", resp, 200, "/.portcullis/enroll")

	// A date typed another way gets the message naming the format, beside
	// the field, and keeps the name.
	wrongDate := dorothy
	wrongDate.DateOfBirth = "1939-08-25"
	p.identify(wrongDate)
	resp = p.submit("the Continue button", button("Continue"))
	p.reached("enrol-identify-date-format", resp, 400, "/.portcullis/enroll/identify")
	p.says("Enter your date of birth as mm/dd/yyyy, with forward slashes")
	kept, err := chromedp.Run(p.ctx(), chromedp.Evaluate[[]string](
		`["last_name", "tax_id_last4", "date_of_birth", "account_number"].map(n => document.querySelector('[name="' + n + '"]').value)`))
	if err != nil || len(kept) != 4 || kept[0] != dorothy.LastName || kept[1]+kept[2]+kept[3] != "" {
		p.fatalf("after a refused date the form should keep the last name only, and show no identity secret again (%v)", err)
	}

	p.identify(dorothy)
	resp = p.submit("the Continue button", button("Continue"))
	p.reached("enrol-credentials", resp, 200, "/.portcullis/enroll/credentials")
	p.says("I agree to receive statements, notices and other documents about my accounts electronically")
	p.fill("username", s.username)
	p.fill("password", s.password)
	if err := chromedp.Do(p.ctx(), chromedp.Click(chromedp.JSPath(q(`input[name="consent"]`)))); err != nil {
		p.fatalf("tick the consent: %v", err)
	}
	resp = p.submit("the Continue button", button("Continue"))
	p.reached("enrol-phone", resp, 200, "/.portcullis/enroll/phone")

	p.fill("phone", "+1 201-555-0199")
	before := p.sent()
	resp = p.submit("the Text me a code button", q(`button[name="method"][value="sms"]`))
	p.reached("enrol-code", resp, 200, "/.portcullis/enroll/code")
	p.fill("code", p.code(before, "enrol", dorothyPhone))
	resp = p.submit("the Create my profile button", button("Create my profile"))
	p.reached("sign-in-enrolled", resp, 200, "/.portcullis/login?done=enrolled")
	p.says("Your profile is created. Sign in with your new username and password.")
}

// 2. Her first sign-in, from a browser the gateway does not know, asks for
// a code; she registers the browser and reaches the savings app.
func (s *selfService) firstSignIn(p *pageStep) {
	resp := p.signIn(s.password)
	p.reached("step-up", resp, 200, "/.portcullis/step-up")
	p.says("We don't recognise this device")
	before := p.sent()
	resp = p.verifyCode(notify.PurposeLogin, s.phone, true)
	p.atApp(resp)
	p.notice(before, "device_registered", "")
}

// 3. Signed out and in again, the registered browser needs only the
// password: no step-up page, and no code is sent.
func (s *selfService) registeredSignIn(p *pageStep) {
	p.signOut()
	before := p.sent()
	p.s.db.log.takeDocuments()
	resp := p.signIn(s.password)
	for _, d := range p.s.db.log.takeDocuments() {
		if strings.Contains(d, "/.portcullis/step-up") {
			p.fatalf("the registered browser was sent to a step-up: %s", d)
		}
	}
	p.atApp(resp)
	if after := p.sent(); after != before {
		p.fatalf("%d messages sent for a sign-in from the registered browser", after-before)
	}
}

// 4. Five wrong passwords in a row lock the profile, each answered as a
// username no profile has is; then the right password is told the profile
// is locked, with the way to unlock it.
func (s *selfService) lockOut(p *pageStep) {
	p.signOut()
	resp := p.open(s.login() + "/.portcullis/login")
	p.at("sign-in", resp)
	attempt := func(username, password, page string) (int64, string) {
		p.fill("username", username)
		p.fill("password", password)
		resp := p.submit("the sign-in button", q(`form[action="/.portcullis/login"] button[type="submit"]`))
		p.at(page, resp)
		msg, err := chromedp.Run(p.ctx(), chromedp.Evaluate[string](`(document.querySelector("p.error") || {}).textContent || ""`))
		if err != nil {
			p.fatalf("read the refusal: %v", err)
		}
		if !strings.HasPrefix(resp.URL, s.login()+"/.portcullis/login") {
			p.fatalf("a refused sign-in went to %s", resp.URL)
		}
		return resp.Status, msg
	}
	wantStatus, wantMsg := attempt("nobody-has-this-name", "not the password at all", "sign-in-unknown-username")
	if wantStatus < 400 || wantMsg == "" {
		p.fatalf("an unknown username got %d %q, want a refusal", wantStatus, wantMsg)
	}
	before := p.sent()
	for i := 1; i <= 5; i++ {
		status, msg := attempt(s.username, fmt.Sprintf("not the password at all %d", i), fmt.Sprintf("sign-in-wrong-password-%d", i))
		if status != wantStatus || msg != wantMsg {
			p.fatalf("wrong password %d got %d %q; an unknown username got %d %q", i, status, msg, wantStatus, wantMsg)
		}
	}
	p.notice(before, "account_locked", "")
	status, msg := attempt(s.username, s.password, "sign-in-locked")
	if status < 400 || !strings.Contains(msg, "locked") {
		p.fatalf("the right password on a locked profile got %d %q, want the locked message", status, msg)
	}
	links, err := chromedp.Run(p.ctx(), chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("main a")].filter(a => a.textContent.includes("Forgot password")).map(a => new URL(a.href).pathname)`))
	if err != nil || len(links) == 0 || links[0] != "/.portcullis/recover/password" {
		p.fatalf("the locked message has no Forgot password link to /.portcullis/recover/password (links %q, %v)", links, err)
	}
}

// 5. Forgot password: her name, username and identity, a texted code and a
// new password, which unlocks the profile; she signs in with it.
func (s *selfService) recoverPassword(p *pageStep) {
	p.signOut()
	resp := p.open(s.login() + "/.portcullis/recover/password")
	p.reached("recover-password", resp, 200, "/.portcullis/recover/password")
	p.fill("last_name", dorothy.LastName)
	p.fill("username", s.username)
	if p.has(q(`[name="tax_id_last4"]`)) {
		p.fill("tax_id_last4", dorothy.TaxIDLast4)
	}
	if p.has(q(`[name="date_of_birth"]`)) {
		p.fill("date_of_birth", dorothy.DateOfBirth)
	}
	p.recoveryCode("recover-password")
	p.need("new password field", q(`[name="confirm_password"]`))
	password := "yellow brick road winds past poppies"
	p.fill("new_password", password)
	p.fill("confirm_password", password)
	before := p.sent()
	resp = p.submit("the Change password button", button("Change password"))
	p.shown("sign-in-password-changed", resp)
	if u, err := url.Parse(resp.URL); err != nil || "https://"+u.Host != s.login() || u.Path != "/.portcullis/login" {
		p.fatalf("after the new password: %s, want the sign-in page", resp.URL)
	}
	s.password = password
	p.notice(before, "password_changed", "")
	if text := strings.ToLower(p.text()); !strings.Contains(text, "password") || !strings.Contains(text, "changed") {
		p.fatalf("the sign-in page does not say the password changed:\n%s", text)
	}
	p.atApp(p.signIn(s.password))
}

// recoveryCode continues a recovery form whose identity is filled in, asks
// for the code by text and types it: the browser ends on the page after
// Verify.
func (p *pageStep) recoveryCode(page string) {
	p.t.Helper()
	p.shown(page+"-method", p.submit("the Continue button", button("Continue")))
	before := p.sent()
	p.shown(page+"-code", p.submit("the text message choice", q(`button[name="method"][value="sms"]`)))
	p.fill("code", p.code(before, notify.PurposeRecover, p.s.phone))
	p.shown(page+"-verified", p.submit("the Verify button", button("Verify")))
}

// shown records the page name (see at) and fails the step unless the page
// was answered 200, wherever it is.
func (p *pageStep) shown(name string, resp *network.Response) {
	p.t.Helper()
	p.at(name, resp)
	if resp.Status != 200 {
		p.fatalf("the browser got %d %s, want 200", resp.Status, resp.URL)
	}
}

// unlockInStore unlocks the profile in the demo's store, as an
// administrator would, when forgot password did not.
func (s *selfService) unlockInStore(t *testing.T) {
	db, err := sqlite.Open(s.db.ctx, filepath.Join(s.db.dir, "portcullis.db"))
	if err != nil {
		t.Fatalf("open the demo's store to unlock the profile: %v", err)
	}
	defer db.Close()
	u, err := db.UserByName(s.db.ctx, s.username)
	if err == nil {
		_, err = db.UnlockUser(s.db.ctx, u.ID, time.Now())
	}
	if err != nil {
		t.Fatalf("unlock %s in the store: %v", s.username, err)
	}
	t.Logf("forgot password failed, so %s is unlocked in the store for the steps after it", s.username)
}

// 6. Forgot username: her identity and a texted code show the username.
func (s *selfService) recoverUsername(p *pageStep) {
	p.signOut()
	resp := p.open(s.login() + "/.portcullis/recover/username")
	p.reached("recover-username", resp, 200, "/.portcullis/recover/username")
	p.identify(identityAnswers{LastName: dorothy.LastName, TaxIDLast4: dorothy.TaxIDLast4, DateOfBirth: dorothy.DateOfBirth})
	p.recoveryCode("recover-username")
	p.need("#recovered-username", q("#recovered-username"))
	shown, err := chromedp.Run(p.ctx(), chromedp.Evaluate[string](q("#recovered-username")+".textContent.trim()"))
	if err != nil || shown != s.username {
		p.fatalf("the recovered username reads %q (%v), want %q", shown, err, s.username)
	}
}

// 7. In the settings, a new security phone wants a fresh step-up (a code to
// the phone on file), then a code to the new number; the old number is
// told of the change.
func (s *selfService) changePhone(p *pageStep) {
	p.signOut()
	p.atApp(p.signIn(s.password))
	resp := p.open(s.login() + "/.portcullis/settings")
	p.reached("settings", resp, 200, "/.portcullis/settings")
	p.says("Codes go to", maskedEnd(s.phone))
	form := q(`form[action="/.portcullis/settings/security-phone"] button[type="submit"]`)
	p.fill("phone", "+1 201-555-0188")
	resp = p.submit("the Change security phone button", form)
	p.reached("settings-step-up", resp, 200, "/.portcullis/step-up")
	p.says("To change your login security, we need to verify it's you.")
	resp = p.verifyCode(notify.PurposeSettings, s.phone, false)
	p.reached("settings-verified", resp, 200, "/.portcullis/settings?done=verified")
	p.says("Thanks, you're verified. Please make your change again.")

	p.fill("phone", "+1 201-555-0188")
	resp = p.submit("the Change security phone button", form)
	p.reached("confirm-new-phone", resp, 200, "/.portcullis/step-up")
	p.says("To confirm your new security phone, we'll send a code to it.")
	before := p.sent()
	resp = p.verifyCode(notify.PurposePhoneChange, newPhone, false)
	p.reached("settings-phone-changed", resp, 200, "/.portcullis/settings?done=phone_changed")
	p.says("Your security phone is changed.", "Codes go to", maskedEnd(newPhone))
	p.notice(before, "security_phone_changed", s.phone)
	s.phone = newPhone
}

// maskedEnd is how the settings page ends a masked phone number: its last
// two digits.
func maskedEnd(phone string) string { return "••" + phone[len(phone)-2:] }

// 8. Enrolling again with her identity makes no second profile: the page
// answers as it answers details that match no customer, pointing to sign
// in and Forgot username without showing the username, which goes to her
// security phone instead.
func (s *selfService) enrolAgain(p *pageStep) {
	p.signOut()
	refusal := func(id identityAnswers, page string) string {
		resp := p.open(s.login() + "/.portcullis/enroll")
		p.at("enrol-identify", resp)
		p.identify(id)
		resp = p.submit("the Continue button", button("Continue"))
		p.reached(page, resp, 403, "/.portcullis/enroll/identify")
		return p.text()
	}
	nobody := dorothy
	nobody.TaxIDLast4 = "0009"
	noMatch := refusal(nobody, "enrol-no-match")
	before := p.sent()
	again := refusal(dorothy, "enrol-existing-profile")
	if again != noMatch {
		p.fatalf("an identity with a profile reads\n%s\nand one matching no customer\n%s", again, noMatch)
	}
	for _, want := range []string{"sign in with your username", "Forgot username"} {
		if !strings.Contains(again, want) {
			p.fatalf("the refusal does not point to %q:\n%s", want, again)
		}
	}
	if strings.Contains(again, s.username) {
		p.fatalf("the refusal shows the username:\n%s", again)
	}
	p.message(before, outbox.Filter{UserID: s.userID, Purpose: notify.PurposeRecover, Channel: notify.SMS, To: s.phone},
		"Your username is "+s.username+".", "text with her username")

	db, err := sqlite.Open(p.ctx(), filepath.Join(s.db.dir, "portcullis.db"))
	if err != nil {
		p.fatalf("open the demo's store: %v", err)
	}
	defer db.Close()
	users, err := db.ListUsers(p.ctx())
	if err != nil {
		p.fatalf("list the profiles: %v", err)
	}
	var hers []string
	for _, u := range users {
		if u.CustomerID == dorothyCustomerID {
			hers = append(hers, u.Username)
		}
	}
	if len(hers) != 1 || hers[0] != s.username {
		p.fatalf("profiles of customer %s: %q, want only %s", dorothyCustomerID, hers, s.username)
	}
}

// probeChecks shows that the checks every page passed can fail: a field
// without a label added to the page is reported, and so is an image the
// page's CSP forbids (which also flushes the console: once it is reported,
// anything the last pages logged before it has been too).
func (s *selfService) probeChecks(t *testing.T) {
	p := &pageStep{t: t, s: s, num: 9}
	p.at("sign-in", p.open(s.login()+"/.portcullis/login"))
	unlabeled, err := chromedp.Run(s.db.ctx, chromedp.Evaluate[[]string](
		`document.querySelector("form").append(Object.assign(document.createElement("input"), {name: "probe"})), `+unlabeledFields))
	if err != nil || len(unlabeled) != 1 || unlabeled[0] != `input[name="probe"]` {
		t.Errorf("a field without a label added to the page: reported %q (%v), want exactly it", unlabeled, err)
	}
	if err := chromedp.Do(s.db.ctx, chromedp.Evaluate[chromedp.Void](`new Image().src = "https://csp-probe.invalid/x.png"`)); err != nil {
		t.Fatalf("load an image the CSP forbids: %v", err)
	}
	if !s.db.log.waitCSP(10*time.Second, "csp-probe.invalid") {
		t.Error("a deliberate CSP violation was not reported on the console, so the CSP check sees nothing")
	}
	for _, m := range s.db.log.takeFresh() {
		if m.error && !strings.Contains(m.text, "csp-probe.invalid") && !strings.HasSuffix(m.url, "/favicon.ico") {
			t.Errorf("console after the last page: %s", m.text)
		}
	}
}
