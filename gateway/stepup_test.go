package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/pquerna/otp/totp"

	"github.com/portcullis/portcullis/gateway/device"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/plugins/phone"
)

// bobPhone is a US number libphonenumber types fixed_line_or_mobile, which
// the shipped data accepts for text and voice.
const bobPhone = "+12015550123"

// stepUpAnswer is a step-up call's answer.
type stepUpAnswer struct {
	Status           string   `json:"status"`
	Reason           string   `json:"reason"`
	Message          string   `json:"message"`
	StepUp           []string `json:"step_up"`
	Channel          string   `json:"channel"`
	To               string   `json:"to"`
	Redirect         string   `json:"redirect"`
	DeviceRegistered bool     `json:"device_registered"`
}

// postJSON posts v as JSON to path on host and decodes the answer.
func (b *browser) postJSON(host, path string, v any) (*http.Response, stepUpAnswer) {
	b.h.t.Helper()
	body, _ := json.Marshal(v)
	req := mustReq(b.h.t, http.MethodPost, b.h.url(host, path), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp := b.do(req)
	var a stepUpAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		b.h.t.Fatalf("%s: answer is not JSON: %v", path, err)
	}
	return resp, a
}

func (b *browser) login(username, password string) (*http.Response, stepUpAnswer) {
	b.h.t.Helper()
	return b.postJSON(loginHost, "/.portcullis/api/v1/login", map[string]string{"username": username, "password": password})
}

func (b *browser) sendCode(method string) (*http.Response, stepUpAnswer) {
	b.h.t.Helper()
	return b.postJSON(loginHost, "/.portcullis/api/v1/step-up/send", map[string]string{"method": method})
}

func (b *browser) verifyCode(code string, remember bool) (*http.Response, stepUpAnswer) {
	b.h.t.Helper()
	return b.postJSON(loginHost, "/.portcullis/api/v1/step-up/verify", map[string]any{"method": "code", "code": code, "remember_device": remember})
}

// addPhoneUser adds a customer with a security phone.
func (h *harness) addPhoneUser(name, password, phone string) string {
	h.t.Helper()
	u := h.addUser(name, password)
	if err := h.store.SetSecurityPhone(h.t.Context(), u.ID, phone, h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
	return u.ID
}

var codeInText = regexp.MustCompile(`\b(\d{6})\b`)

// lastCode is the code in the latest login message to userID.
func (h *harness) lastCode(userID string) (string, notify.Message) {
	h.t.Helper()
	return h.lastCodeFor(userID, notify.PurposeLogin)
}

// lastCodeFor is the code in the latest message to userID for purpose.
func (h *harness) lastCodeFor(userID, purpose string) (string, notify.Message) {
	h.t.Helper()
	msgs := h.outbox.messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.UserID != userID || m.Purpose != purpose {
			continue
		}
		if m.Channel == notify.Voice {
			return strings.Join(regexp.MustCompile(`\d`).FindAllString(strings.SplitN(m.Text, "Again", 2)[0], -1), ""), m
		}
		if c := codeInText.FindStringSubmatch(m.Text); c != nil {
			return c[1], m
		}
	}
	h.t.Fatalf("no code was sent to %s", userID)
	return "", notify.Message{}
}

// stepUpTo logs bob in from b and asks for a code by method; it returns the
// code.
func stepUpTo(t *testing.T, h *harness, b *browser, userID, method string) string {
	t.Helper()
	resp, a := b.login("bob", "builder-test-42")
	if resp.StatusCode != http.StatusForbidden || a.Status != "step_up_required" || strings.Join(a.StepUp, ",") != "sms,voice" {
		t.Fatalf("login from a new device: %d %+v, want step_up_required with sms,voice", resp.StatusCode, a)
	}
	resp, a = b.sendCode(method)
	if resp.StatusCode != http.StatusOK || a.Status != "code_sent" || a.Channel != method || !strings.HasSuffix(a.To, "23") || strings.Contains(a.To, "201555") {
		t.Fatalf("send %s: %d %+v", method, resp.StatusCode, a)
	}
	code, _ := h.lastCode(userID)
	return code
}

// An unknown device passes a text-message step-up, registers itself, and
// next time skips the step; once removed, it is asked again.
func TestStepUpRegistersTheDevice(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")

	// Half-way, nothing upstream is reachable.
	if resp := b.get(bankHost, "/whoami"); resp.StatusCode != http.StatusFound {
		t.Fatalf("upstream during the step-up: %d, want a redirect to sign in", resp.StatusCode)
	}
	if n := len(h.bank.requests()); n != 0 {
		t.Fatalf("upstream reached %d times before the step-up passed", n)
	}
	resp, a := b.verifyCode(code, true)
	if resp.StatusCode != http.StatusOK || a.Status != "authenticated" || !a.DeviceRegistered {
		t.Fatalf("verify: %d %+v", resp.StatusCode, a)
	}
	if !hasCookie(resp, device.Cookie) || !hasCookie(resp, "__Host-portcullis") {
		t.Fatal("verify set no device or session cookie")
	}
	for _, c := range b.Jar.Cookies(mustURL(t, h.url(loginHost, "/"))) {
		if c.Name == session.PendingCookie {
			t.Fatal("the pending cookie outlived the step-up")
		}
	}
	b.mustReach(bankHost)
	if got := h.bank.last(t).Header.Get("X-Portcullis-Auth-Methods"); got != "pwd,sms" {
		t.Fatalf("upstream sees methods %q, want pwd,sms", got)
	}
	if c := h.bank.last(t).Header.Get("Cookie"); strings.Contains(c, "portcullis") {
		t.Fatalf("the upstream sees the gateway's cookies: %q", c)
	}
	if !hasNotice(h, bobID, "device_registered") {
		t.Fatal("no notice of the new device")
	}

	// The registered device skips the step and sends nothing.
	sent := len(h.outbox.messages())
	b.logout()
	if resp, a := b.login("bob", "builder-test-42"); resp.StatusCode != http.StatusOK || a.Status != "authenticated" {
		t.Fatalf("login from the registered device: %d %+v", resp.StatusCode, a)
	}
	if n := len(h.outbox.messages()); n != sent {
		t.Fatalf("%d messages sent for a registered device", n-sent)
	}

	// Another browser is a new device.
	if resp, a := h.client(true).login("bob", "builder-test-42"); a.Status != "step_up_required" {
		t.Fatalf("login from another browser: %d %+v", resp.StatusCode, a)
	}

	// Removed, the device is unknown again at the next login.
	if n, err := h.store.DeleteDevices(t.Context(), bobID); err != nil || n != 1 {
		t.Fatalf("DeleteDevices: %d %v", n, err)
	}
	b.logout()
	if resp, a := b.login("bob", "builder-test-42"); a.Status != "step_up_required" {
		t.Fatalf("login after the device was removed: %d %+v", resp.StatusCode, a)
	}
}

func hasCookie(resp *http.Response, name string) bool {
	for _, c := range resp.Cookies() {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}

func hasNotice(h *harness, userID, event string) bool {
	text, _ := notify.Notice("Portcullis", event)
	for _, m := range h.outbox.messages() {
		if m.UserID == userID && m.Purpose == notify.PurposeNotice && m.Text == text {
			return true
		}
	}
	return false
}

func (b *browser) mustReach(host string) {
	b.h.t.Helper()
	if resp, visited := b.follow(b.h.url(host, "/whoami")); resp.StatusCode != http.StatusOK {
		b.h.t.Fatalf("upstream on %s: %d after %v", host, resp.StatusCode, visited)
	}
}

func (b *browser) logout() {
	b.h.t.Helper()
	req := mustReq(b.h.t, http.MethodPost, b.h.url(loginHost, "/.portcullis/api/v1/logout"), strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if resp := b.do(req); resp.StatusCode != http.StatusOK {
		b.h.t.Fatalf("logout: %d", resp.StatusCode)
	}
}

// A voice call reads the code digit by digit, twice, and the code works
// like a texted one; without registering, the device stays unknown.
func TestStepUpByVoice(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "voice")
	_, m := h.lastCode(bobID)
	spoken := strings.Join(strings.Split(code, ""), ", ")
	if strings.Count(m.Text, spoken) != 2 || m.To != bobPhone {
		t.Fatalf("voice script %q does not read %s twice to %s", m.Text, spoken, bobPhone)
	}
	if resp, a := b.verifyCode(code, false); resp.StatusCode != http.StatusOK || a.DeviceRegistered {
		t.Fatalf("verify: %d %+v", resp.StatusCode, a)
	}
	b.mustReach(bankHost)
	b.logout()
	if _, a := b.login("bob", "builder-test-42"); a.Status != "step_up_required" {
		t.Fatalf("an unregistered device skipped the step-up: %+v", a)
	}
}

// A code is used once, and only by the login it was sent for.
func TestSecurityCodeIsSingleUseAndBound(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b1, b2 := h.client(true), h.client(true)
	code1 := stepUpTo(t, h, b1, bobID, "sms")
	code2 := stepUpTo(t, h, b2, bobID, "sms")
	if code1 == code2 {
		t.Skip("two random codes collided; rerun")
	}
	if _, a := b2.verifyCode(code1, false); a.Status == "authenticated" {
		t.Fatal("a code sent for one login signed in another")
	}
	if _, a := b1.verifyCode(code1, false); a.Status != "authenticated" {
		t.Fatalf("the right code: %+v", a)
	}
	b1.logout()
	b1.login("bob", "builder-test-42")
	if _, a := b1.verifyCode(code1, false); a.Status == "authenticated" {
		t.Fatal("a used code signed in again")
	}
}

// 50 concurrent wrong guesses use up the code's tries exactly: the right
// code is refused after them.
func TestCodeAttemptLimitHoldsUnderConcurrency(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	reasons := map[string]int{}
	for range 50 {
		wg.Go(func() {
			_, a := b.verifyCode(wrong, false)
			mu.Lock()
			reasons[a.Reason]++
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("50 concurrent wrong guesses: %v", reasons)
	if reasons["bad_code"] > 5 || reasons["bad_code"] == 0 {
		t.Fatalf("50 wrong guesses: %v, want at most 5 judged as wrong codes", reasons)
	}
	if _, a := b.verifyCode(code, false); a.Status == "authenticated" {
		t.Fatalf("the right code passed after the tries were used up: %v", reasons)
	}
}

// A resend replaces the code and keeps the tries already used.
func TestResendReplacesTheCodeAndKeepsTheBudget(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	first := stepUpTo(t, h, b, bobID, "sms")
	wrong := "000000"
	for range 3 {
		if _, a := b.verifyCode(wrong, false); a.Reason != "bad_code" {
			t.Fatalf("wrong code: %+v", a)
		}
	}
	if resp, a := b.sendCode("sms"); a.Reason != "code_resend_too_soon" {
		t.Fatalf("an immediate resend: %d %+v", resp.StatusCode, a)
	}
	h.clock.Add(31 * time.Second)
	if resp, a := b.sendCode("sms"); resp.StatusCode != http.StatusOK {
		t.Fatalf("resend: %d %+v", resp.StatusCode, a)
	}
	second, _ := h.lastCode(bobID)
	if second != first {
		if _, a := b.verifyCode(first, false); a.Status == "authenticated" {
			t.Fatal("the replaced code still works")
		}
	}
	// Three tries used before, one on the old code just now: one left.
	if _, a := b.verifyCode(wrong, false); a.Reason != "bad_code" {
		t.Fatalf("fifth try: %+v", a)
	}
	if _, a := b.verifyCode(second, false); a.Status == "authenticated" {
		t.Fatal("the resend refilled the tries")
	}
}

// A code expires at the policy's lifetime (20 minutes after sending).
func TestCodeExpires(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	h.clock.Add(20 * time.Minute)
	if _, a := b.verifyCode(code, false); a.Status == "authenticated" || a.Reason != "code_expired" {
		t.Fatalf("a 20-minute-old code: %+v, want code_expired", a)
	}

	b2 := h.client(true)
	code = stepUpTo(t, h, b2, bobID, "sms")
	h.clock.Add(20*time.Minute - time.Second)
	if _, a := b2.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("a code a second before its end: %+v", a)
	}
}

// Codes never reach the logs, the decision log or an answer.
func TestCodesStayOutOfLogsAndAnswers(t *testing.T) {
	var decisions lockedBuffer
	h := newHarness(t, withDecisionLog(&decisions))
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	resp, _ := b.verifyCode(code, false)
	if !strings.Contains(h.logs.String(), "code sent") || decisions.decisions(t, "verify_code") == 0 {
		t.Fatal("the logs this test searches are empty")
	}
	for where, text := range map[string]string{"log": h.logs.String(), "decision log": decisions.String()} {
		if strings.Contains(text, code) {
			t.Errorf("the code %s is in the %s", code, where)
		}
		if strings.Contains(text, bobPhone) || strings.Contains(text, "2015550123") {
			t.Errorf("the full security phone is in the %s", where)
		}
	}
	if resp.Header.Get("Set-Cookie") != "" && strings.Contains(resp.Header.Get("Set-Cookie"), code) {
		t.Error("the code is in a cookie")
	}
}

// A failed delivery tells the person and uses nothing up.
func TestFailedDeliveryLosesNothing(t *testing.T) {
	fail := &failingSender{}
	h := newHarness(t, func(s *setup) { s.sender = fail })
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	b.login("bob", "builder-test-42")
	fail.set(true)
	resp, a := b.sendCode("sms")
	if resp.StatusCode != http.StatusBadGateway || a.Reason != "code_not_sent" || !strings.Contains(a.Message, "couldn't send your code") {
		t.Fatalf("send with the provider down: %d %+v", resp.StatusCode, a)
	}
	fail.set(false)
	if resp, a := b.sendCode("voice"); resp.StatusCode != http.StatusOK {
		t.Fatalf("send after the provider recovered: %d %+v", resp.StatusCode, a)
	}
	code, _ := h.lastCode(bobID)
	if _, a := b.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("verify: %+v", a)
	}
}

type failingSender struct {
	mu   sync.Mutex
	fail bool
}

func (f *failingSender) set(v bool) { f.mu.Lock(); f.fail = v; f.mu.Unlock() }

func (f *failingSender) Send(_ context.Context, _ notify.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errDown
	}
	return nil
}

// The pending login is bound to its host and cannot be used twice.
func TestPendingLoginIsNotASession(t *testing.T) {
	h := newHarness(t)
	h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	b.login("bob", "builder-test-42")
	if resp := b.get(loginHost, "/.portcullis/api/v1/session"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session during the step-up: %d, want 401", resp.StatusCode)
	}
	if !strings.Contains(session.PendingCookie, "__Host-") {
		t.Fatal("the pending cookie is not a __Host- cookie")
	}
}

// The HTML pages mirror the API: the form login leads to the step-up page,
// the code page offers the device checkbox unchecked with the advice, and
// the verified form goes on to where the person was going.
func TestStepUpPages(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	resp := b.formLogin(h.url(loginHost, "/.portcullis/login?rd=/welcome"), "bob", "builder-test-42")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.portcullis/step-up" {
		t.Fatalf("form login from a new device: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	page := b.get(loginHost, "/.portcullis/step-up")
	body := readAll(t, page)
	if page.StatusCode != http.StatusOK || !strings.Contains(body, `value="sms"`) || !strings.Contains(body, `value="voice"`) {
		t.Fatalf("step-up page: %d\n%s", page.StatusCode, body)
	}
	form := url.Values{"csrf": {hiddenValue(body, "csrf")}, "method": {"sms"}}
	req := mustReq(t, http.MethodPost, h.url(loginHost, "/.portcullis/step-up/send"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	codePage := b.do(req)
	body = readAll(t, codePage)
	if codePage.StatusCode != http.StatusOK || !strings.Contains(body, `name="remember_device" value="true">`) ||
		strings.Contains(body, "checked") || !strings.Contains(body, "shared or public device") {
		t.Fatalf("code page: %d\n%s", codePage.StatusCode, body)
	}
	code, _ := h.lastCode(bobID)
	form = url.Values{"csrf": {hiddenValue(body, "csrf")}, "method": {"code"}, "code": {code}, "remember_device": {"true"}}
	req = mustReq(t, http.MethodPost, h.url(loginHost, "/.portcullis/step-up/verify"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := b.do(req)
	if done.StatusCode != http.StatusSeeOther || done.Header.Get("Location") != "/welcome" || !hasCookie(done, device.Cookie) {
		t.Fatalf("verify form: %d %s", done.StatusCode, done.Header.Get("Location"))
	}
	// A wrong code shows the code page again with the message.
	b2 := h.client(true)
	b2.formLogin(h.url(loginHost, "/.portcullis/login"), "bob", "builder-test-42")
	body = readAll(t, b2.get(loginHost, "/.portcullis/step-up"))
	form = url.Values{"csrf": {hiddenValue(body, "csrf")}, "method": {"code"}, "code": {"000000"}}
	req = mustReq(t, http.MethodPost, h.url(loginHost, "/.portcullis/step-up/verify"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wrong := b2.do(req)
	if body := readAll(t, wrong); wrong.StatusCode != http.StatusForbidden || !strings.Contains(body, "expired") && !strings.Contains(body, "isn") {
		t.Fatalf("wrong code form: %d\n%s", wrong.StatusCode, body)
	}
}

type devicesAnswer struct {
	Status  string `json:"status"`
	Devices []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"devices"`
}

func (b *browser) devices() devicesAnswer {
	b.h.t.Helper()
	resp := b.get(loginHost, "/.portcullis/api/v1/devices")
	var a devicesAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusOK {
		b.h.t.Fatalf("devices: %d %v", resp.StatusCode, err)
	}
	return a
}

// Devices are listed and removed in a session; removing one needs a fresh
// step-up, which the session passes in place and comes out of under a new
// session ID.
func TestDevicesAreListedAndRemoved(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	if _, a := b.verifyCode(code, true); !a.DeviceRegistered {
		t.Fatalf("verify: %+v", a)
	}
	list := b.devices()
	if len(list.Devices) != 1 || list.Devices[0].Name == "" {
		t.Fatalf("devices after registering: %+v", list)
	}
	devID := list.Devices[0].ID

	// Later, from the registered device: no step-up at login, so removing
	// a device asks for one.
	b.logout()
	h.clock.Add(time.Hour)
	if _, a := b.login("bob", "builder-test-42"); a.Status != "authenticated" {
		t.Fatalf("login from the registered device: %+v", a)
	}
	before := sessionCookie(t, b, h)
	resp, a := b.postJSON(loginHost, "/.portcullis/api/v1/devices/remove", map[string]string{"id": devID})
	if resp.StatusCode != http.StatusForbidden || a.Status != "step_up_required" || len(a.StepUp) == 0 {
		t.Fatalf("remove without a fresh step-up: %d %+v", resp.StatusCode, a)
	}
	if resp, a := b.sendCode("sms"); resp.StatusCode != http.StatusOK {
		t.Fatalf("send in the session: %d %+v", resp.StatusCode, a)
	}
	code, _ = h.lastCodeFor(bobID, notify.PurposeSettings)
	if resp, a := b.verifyCode(code, false); resp.StatusCode != http.StatusOK {
		t.Fatalf("verify in the session: %d %+v", resp.StatusCode, a)
	}
	if after := sessionCookie(t, b, h); after == before || after == "" {
		t.Fatal("the session ID did not change when the step-up passed")
	}
	old := h.client(false)
	req := mustReq(t, http.MethodGet, h.url(loginHost, "/.portcullis/api/v1/session"), nil)
	req.AddCookie(&http.Cookie{Name: "__Host-portcullis", Value: before})
	if resp := old.do(req); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the session from before the step-up: %d, want 401", resp.StatusCode)
	}

	// Bob is signed in elsewhere too, from a device he did not register.
	elsewhere := h.client(true)
	if _, a := elsewhere.verifyCode(stepUpTo(t, h, elsewhere, bobID, "sms"), false); a.Status != "authenticated" {
		t.Fatalf("the other sign-in: %+v", a)
	}
	if resp := elsewhere.get(loginHost, "/.portcullis/api/v1/session"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the other session before the removal: %d", resp.StatusCode)
	}

	// Someone else's device is not theirs to remove.
	if resp, _ := b.postJSON(loginHost, "/.portcullis/api/v1/devices/remove", map[string]string{"id": "not-a-device"}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("remove an unknown device: %d", resp.StatusCode)
	}
	if resp, a := b.postJSON(loginHost, "/.portcullis/api/v1/devices/remove", map[string]string{"id": devID}); resp.StatusCode != http.StatusOK {
		t.Fatalf("remove after the step-up: %d %+v", resp.StatusCode, a)
	}
	if !hasNotice(h, bobID, "device_removed") {
		t.Fatal("no notice of the removed device")
	}
	// The removal signs out what was signed in from the device: here the
	// session that made it, which is that device's own; bob's other
	// session goes on.
	if resp := b.get(loginHost, "/.portcullis/api/v1/session"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the removed device's session after the removal: %d, want 401", resp.StatusCode)
	}
	if list := elsewhere.devices(); len(list.Devices) != 0 {
		t.Fatalf("devices after removing: %+v", list)
	}
	// Removal works at once: the next login from it asks again.
	b.logout()
	if _, a := b.login("bob", "builder-test-42"); a.Status != "step_up_required" {
		t.Fatalf("login from a removed device: %+v", a)
	}
}

// sessionCookie is the browser's session cookie on the login host.
func sessionCookie(t *testing.T, b *browser, h *harness) string {
	t.Helper()
	for _, c := range b.Jar.Cookies(mustURL(t, h.url(loginHost, "/"))) {
		if c.Name == "__Host-portcullis" {
			return c.Value
		}
	}
	return ""
}

// An authenticator app is added in a fresh session, then steps up a login
// from a new device; a code is never accepted twice for the account.
func TestAuthenticatorApp(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	if _, a := b.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("verify: %+v", a)
	}
	body, _ := json.Marshal(map[string]string{})
	req := mustReq(t, http.MethodPost, h.url(loginHost, "/.portcullis/api/v1/factors/totp"), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp := b.do(req)
	var begin struct {
		Status, Secret, OTPAuthURL, QRCode string
	}
	json.NewDecoder(resp.Body).Decode(&struct {
		Status     *string `json:"status"`
		Secret     *string `json:"secret"`
		OTPAuthURL *string `json:"otpauth_url"`
		QRCode     *string `json:"qr_code"`
	}{&begin.Status, &begin.Secret, &begin.OTPAuthURL, &begin.QRCode})
	if resp.StatusCode != http.StatusOK || begin.Secret == "" || !strings.HasPrefix(begin.OTPAuthURL, "otpauth://totp/") ||
		!strings.HasPrefix(begin.QRCode, "data:image/png;base64,") {
		t.Fatalf("begin: %d %+v", resp.StatusCode, begin)
	}
	totpCode := func() string {
		c, err := totp.GenerateCode(begin.Secret, h.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if resp, a := b.postJSON(loginHost, "/.portcullis/api/v1/factors/totp/confirm", map[string]string{"code": totpCode()}); resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d %+v", resp.StatusCode, a)
	}
	if !hasNotice(h, bobID, "two_factor_changed") {
		t.Fatal("no notice of the new second factor")
	}

	h.clock.Add(31 * time.Second)
	fresh := totpCode()
	b2 := h.client(true)
	if _, a := b2.login("bob", "builder-test-42"); strings.Join(a.StepUp, ",") != "sms,voice,totp" {
		t.Fatalf("methods offered: %v", a.StepUp)
	}
	if resp, a := b2.postJSON(loginHost, "/.portcullis/api/v1/step-up/verify", map[string]any{"method": "totp", "code": fresh}); resp.StatusCode != http.StatusOK {
		t.Fatalf("verify with the app: %d %+v", resp.StatusCode, a)
	}
	b2.mustReach(bankHost)
	if got := h.bank.last(t).Header.Get("X-Portcullis-Auth-Methods"); got != "pwd,totp" {
		t.Fatalf("methods upstream: %q", got)
	}
	// The same code again, from another new device, within its window.
	b3 := h.client(true)
	b3.login("bob", "builder-test-42")
	if _, a := b3.postJSON(loginHost, "/.portcullis/api/v1/step-up/verify", map[string]any{"method": "totp", "code": fresh}); a.Status == "authenticated" {
		t.Fatal("a replayed authenticator code was accepted")
	}
	// Listed without its secret, and removable (with a notice).
	var listed struct {
		Factors []map[string]any `json:"factors"`
	}
	if err := json.NewDecoder(b2.get(loginHost, "/.portcullis/api/v1/factors").Body).Decode(&listed); err != nil || len(listed.Factors) != 1 ||
		listed.Factors[0]["kind"] != "totp" || listed.Factors[0]["secret"] != nil {
		t.Fatalf("factors: %+v %v", listed, err)
	}
	// Wrong codes use up the step-up's tries like texted codes do.
	for range 5 {
		b3.postJSON(loginHost, "/.portcullis/api/v1/step-up/verify", map[string]any{"method": "totp", "code": "000000"})
	}
	h.clock.Add(31 * time.Second)
	if _, a := b3.postJSON(loginHost, "/.portcullis/api/v1/step-up/verify", map[string]any{"method": "totp", "code": totpCode()}); a.Status == "authenticated" {
		t.Fatal("the right code passed after the tries were used up")
	}
	notices := len(h.outbox.messages())
	if resp, a := b2.postJSON(loginHost, "/.portcullis/api/v1/factors/remove", map[string]string{"id": listed.Factors[0]["id"].(string)}); resp.StatusCode != http.StatusOK {
		t.Fatalf("remove the app: %d %+v", resp.StatusCode, a)
	}
	if len(h.outbox.messages()) != notices+1 {
		t.Fatal("no notice of the removed factor")
	}
	if _, a := h.client(true).login("bob", "builder-test-42"); strings.Join(a.StepUp, ",") != "sms,voice" {
		t.Fatalf("methods after removing the app: %v", a.StepUp)
	}
}

// Challenge questions are set in a fresh session and offered after codes;
// a right answer passes the step-up, and wrong answers count toward the
// five-strike lock like wrong passwords.
func TestChallengeQuestions(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	if _, a := b.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("verify: %+v", a)
	}
	var list struct {
		Questions []struct {
			ID string `json:"id"`
		} `json:"questions"`
	}
	if err := json.NewDecoder(b.get(loginHost, "/.portcullis/api/v1/factors/questions").Body).Decode(&list); err != nil || len(list.Questions) < 3 {
		t.Fatalf("questions: %+v %v", list, err)
	}
	answers := map[string]string{}
	for i, q := range list.Questions[:3] {
		answers[q.ID] = []string{"  Rover ", "Springfield", "Mrs. Krabappel"}[i]
	}
	if resp, a := b.postJSON(loginHost, "/.portcullis/api/v1/factors/questions", map[string]any{"answers": map[string]string{list.Questions[0].ID: "one"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("one answer: %d %+v", resp.StatusCode, a)
	}
	if resp, a := b.postJSON(loginHost, "/.portcullis/api/v1/factors/questions", map[string]any{"answers": answers}); resp.StatusCode != http.StatusOK {
		t.Fatalf("set questions: %d %+v", resp.StatusCode, a)
	}

	asked := func(b *browser) string {
		t.Helper()
		var q struct {
			QuestionID string `json:"question_id"`
		}
		resp := b.get(loginHost, "/.portcullis/api/v1/step-up/question")
		if err := json.NewDecoder(resp.Body).Decode(&q); err != nil || q.QuestionID == "" {
			t.Fatalf("question: %d %v", resp.StatusCode, err)
		}
		return q.QuestionID
	}
	b2 := h.client(true)
	if _, a := b2.login("bob", "builder-test-42"); strings.Join(a.StepUp, ",") != "sms,voice,questions" {
		t.Fatalf("methods offered: %v", a.StepUp)
	}
	q := asked(b2)
	if again := asked(b2); again != q {
		t.Fatal("asking again changed the question")
	}
	// Case, spaces and punctuation do not matter.
	if resp, a := b2.postJSON(loginHost, "/.portcullis/api/v1/step-up/verify", map[string]any{"method": "question", "answer": strings.ToUpper(strings.TrimSpace(answers[q])) + "!"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("right answer: %d %+v", resp.StatusCode, a)
	}

	b3 := h.client(true)
	b3.login("bob", "builder-test-42")
	var last stepUpAnswer
	for range 5 {
		_, last = b3.postJSON(loginHost, "/.portcullis/api/v1/step-up/verify", map[string]any{"method": "question", "answer": "wrong answer"})
	}
	if last.Reason != "account_locked" {
		t.Fatalf("fifth wrong answer: %+v, want account_locked", last)
	}
	u, err := h.store.UserByID(t.Context(), bobID)
	if err != nil || !u.Locked {
		t.Fatalf("after five wrong answers the profile is not locked: %+v %v", u, err)
	}
	if _, a := h.client(true).login("bob", "builder-test-42"); a.Reason != "account_locked" {
		t.Fatalf("login after the lock: %+v", a)
	}
}

// exampleNumber is libphonenumber's own example of a line type in a region,
// in E.164.
// The first of the regions (comma-separated) that has one is used.
func exampleNumber(t *testing.T, regions string, typ phonenumbers.PhoneNumberType) string {
	t.Helper()
	for _, region := range strings.Split(regions, ",") {
		if n := phonenumbers.GetExampleNumberForType(region, typ); n != nil {
			return phonenumbers.Format(n, phonenumbers.E164)
		}
	}
	t.Fatalf("no example %v number for %s", typ, regions)
	return ""
}

// The security phone changes only in a fresh session, never to a number
// that is not a specific phone in the person's possession, and only once a
// code sent to the new number is typed; the old number is told.
func TestSecurityPhoneChange(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	if _, a := b.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("verify: %+v", a)
	}
	for _, tc := range []struct {
		region string
		typ    phonenumbers.PhoneNumberType
		reason string
	}{
		{"GB", phonenumbers.VOIP, "phone_voip"},
		{"US", phonenumbers.TOLL_FREE, "phone_toll_free"},
		{"GB", phonenumbers.PREMIUM_RATE, "phone_premium_rate"},
		{"GB,FR,BE,HK,MY", phonenumbers.SHARED_COST, "phone_unsupported"},
		{"GB", phonenumbers.PERSONAL_NUMBER, "phone_unsupported"},
		{"GB", phonenumbers.PAGER, "phone_unsupported"},
	} {
		num := exampleNumber(t, tc.region, tc.typ)
		resp, a := b.postJSON(loginHost, "/.portcullis/api/v1/security-phone", map[string]string{"phone": num})
		if resp.StatusCode != http.StatusForbidden || a.Reason != tc.reason {
			t.Errorf("%s %v (%s): %d %+v, want %s", tc.region, tc.typ, num, resp.StatusCode, a, tc.reason)
		}
		if tc.reason == "phone_voip" && !strings.Contains(a.Message, "specific phone in your possession") {
			t.Errorf("VoIP refusal says %q", a.Message)
		}
	}
	if resp, a := b.postJSON(loginHost, "/.portcullis/api/v1/security-phone", map[string]string{"phone": "12"}); resp.StatusCode != http.StatusForbidden || a.Reason != "phone_invalid" {
		t.Errorf("an invalid number: %d %+v", resp.StatusCode, a)
	}

	newPhone := exampleNumber(t, "GB", phonenumbers.MOBILE)
	resp, a := b.postJSON(loginHost, "/.portcullis/api/v1/security-phone", map[string]string{"phone": newPhone})
	if resp.StatusCode != http.StatusAccepted || a.Status != "confirm_phone" {
		t.Fatalf("a mobile number: %d %+v", resp.StatusCode, a)
	}
	if u, _ := h.store.UserByID(t.Context(), bobID); u.SecurityPhone != bobPhone {
		t.Fatal("the phone changed before it was confirmed")
	}
	if resp, a := b.sendCode("sms"); resp.StatusCode != http.StatusOK {
		t.Fatalf("send to the new number: %d %+v", resp.StatusCode, a)
	}
	code, m := h.lastCodeFor(bobID, notify.PurposePhoneChange)
	if m.To != newPhone {
		t.Fatalf("the confirmation went to %s, want the new number %s", m.To, newPhone)
	}
	if resp, a := b.verifyCode(code, false); resp.StatusCode != http.StatusOK || a.Status != "phone_changed" {
		t.Fatalf("confirm: %d %+v", resp.StatusCode, a)
	}
	if u, _ := h.store.UserByID(t.Context(), bobID); u.SecurityPhone != newPhone {
		t.Fatalf("security phone after the confirmation: %s", u.SecurityPhone)
	}
	told := false
	for _, m := range h.outbox.messages() {
		if m.Purpose == notify.PurposeNotice && m.To == bobPhone && strings.Contains(m.Text, "security phone") {
			told = true
		}
	}
	if !told {
		t.Fatal("the old number was not told of the change")
	}
}

// With the shipped data, a profile with no usable way to step up, such as
// one whose only phone is VoIP, cannot sign in from an unknown device and
// is told to call support; nothing is sent.
func TestNoUsableStepUpCallsSupport(t *testing.T) {
	h := newHarness(t)
	h.addPhoneUser("dora", "explorer-test-42", exampleNumber(t, "GB", phonenumbers.VOIP))
	h.addUser("eve", "eavesdrop-test-42")
	for _, name := range []string{"dora", "eve"} {
		resp, a := h.client(true).login(name, map[string]string{"dora": "explorer-test-42", "eve": "eavesdrop-test-42"}[name])
		if resp.StatusCode != http.StatusForbidden || a.Reason != "step_up_unavailable" || !strings.Contains(a.Message, "1-800-555-0100") {
			t.Errorf("%s: %d %+v, want step_up_unavailable with the support number", name, resp.StatusCode, a)
		}
	}
	if n := len(h.outbox.messages()); n != 0 {
		t.Fatalf("%d messages sent", n)
	}
}

// What a login from an unknown device is offered follows the security
// phone's line type, read from libphonenumber's own example numbers.
func TestStepUpFollowsTheLineType(t *testing.T) {
	h := newHarness(t)
	for i, tc := range []struct {
		regions string
		typ     phonenumbers.PhoneNumberType
		want    string // methods offered, or the refusal
	}{
		{"GB", phonenumbers.MOBILE, "sms,voice"},
		{"DE", phonenumbers.MOBILE, "sms,voice"},
		{"IN", phonenumbers.MOBILE, "sms,voice"},
		{"GB", phonenumbers.FIXED_LINE, "voice"},
		{"FR", phonenumbers.FIXED_LINE, "voice"},
		{"US", phonenumbers.FIXED_LINE_OR_MOBILE, "sms,voice"},
		{"GB", phonenumbers.VOIP, "step_up_unavailable"},
		{"NL,SE,AU", phonenumbers.VOIP, "step_up_unavailable"},
		{"US", phonenumbers.TOLL_FREE, "step_up_unavailable"},
		{"GB", phonenumbers.PREMIUM_RATE, "step_up_unavailable"},
		{"GB,FR,BE,HK,MY", phonenumbers.SHARED_COST, "step_up_unavailable"},
	} {
		name := fmt.Sprintf("cust%d", i)
		num := exampleNumber(t, tc.regions, tc.typ)
		h.addPhoneUser(name, "customer-test-42", num)
		_, a := h.client(true).login(name, "customer-test-42")
		got := strings.Join(a.StepUp, ",")
		if a.Reason != "step_up_required" {
			got = a.Reason
		}
		if got != tc.want {
			t.Errorf("%s %v (%s): %s, want %s", tc.regions, tc.typ, num, got, tc.want)
		}
	}
}

// carrierAPI is a carrier-data provider's HTTP API answering lineType for
// every number after delay, or 503 when lineType is empty.
func carrierAPI(t *testing.T, lineType string, delay time.Duration) phone.CarrierLookup {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		if lineType == "" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"line_type":%q}`, lineType)
	}))
	t.Cleanup(srv.Close)
	l, err := phone.NewHTTPCarrierLookup(phone.HTTPCarrierConfig{URL: srv.URL + "/v1/{e164}", Field: "line_type", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// With a carrier lookup, a US number the number plan cannot type is refused
// when the carrier says VoIP, and when the lookup is down or too slow: it
// never fails open.
func TestCarrierLookupRefusesVoIPAndFailsClosed(t *testing.T) {
	for name, tc := range map[string]struct {
		lineType string
		delay    time.Duration
		want     string
	}{
		"carrier says voip":   {"voip", 0, "step_up_unavailable"},
		"lookup down":         {"", 0, "step_up_unavailable"},
		"lookup too slow":     {"mobile", 2 * time.Second, "step_up_unavailable"},
		"carrier says mobile": {"mobile", 0, "sms,voice"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, func(s *setup) { s.carrier = carrierAPI(t, tc.lineType, tc.delay) })
			h.addPhoneUser("bob", "builder-test-42", bobPhone)
			_, a := h.client(true).login("bob", "builder-test-42")
			got := strings.Join(a.StepUp, ",")
			if a.Reason != "step_up_required" {
				got = a.Reason
			}
			if got != tc.want {
				t.Fatalf("login: %+v, want %s", a, tc.want)
			}
		})
	}
}

// Sends are limited per account, per number, per source address and per
// country calling code (SMS pumping), as policy data; a refused send uses
// none of the quota.
func TestSendLimits(t *testing.T) {
	opt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			limits := cfg["codes"].(map[string]any)["send_limits"].(map[string]any)
			for k, max := range map[string]float64{"per_user": 3, "per_number": 4, "per_address": 6, "per_calling_code": 8} {
				limits[k].(map[string]any)["max"] = max
			}
		})
	})
	h := newHarness(t, opt)
	n1, n2, n3, n4 := "+12015550123", "+12015550124", "+12015550125", "+12015550126"
	for name, num := range map[string]string{"ann": n1, "ben": n1, "cat": n2, "dan": n3, "eva": n4} {
		h.addPhoneUser(name, "customer-test-42", num)
	}
	send := func(name, source string) string {
		t.Helper()
		b := h.clientFrom(source, true)
		if _, a := b.login(name, "customer-test-42"); a.Status != "step_up_required" {
			t.Fatalf("%s: login: %+v", name, a)
		}
		resp, a := b.sendCode("sms")
		if resp.StatusCode == http.StatusOK {
			return "sent"
		}
		return a.Reason
	}
	steps := []struct{ name, source, want string }{
		{"ann", "", "sent"}, {"ann", "", "sent"}, {"ann", "", "sent"},
		{"ann", "", "code_send_limit_user"}, // three for ann
		{"ben", "", "sent"},                 // the fourth to n1
		{"ben", "", "code_send_limit_number"},
		{"cat", "", "sent"}, {"cat", "", "sent"}, // six from this address
		{"cat", "", "code_send_limit_address"},
		{"dan", "127.0.0.16", "sent"}, {"eva", "127.0.0.17", "sent"}, // eight to +1
		{"eva", "127.0.0.18", "code_send_limit_calling_code"},
	}
	for i, s := range steps {
		if got := send(s.name, s.source); got != s.want {
			t.Fatalf("step %d (%s from %q): %s, want %s", i, s.name, s.source, got, s.want)
		}
	}
	sent := 0
	for _, m := range h.outbox.messages() {
		if m.Purpose == notify.PurposeLogin {
			sent++
		}
	}
	if sent != 8 {
		t.Fatalf("%d codes sent, want 8 (refused sends send nothing)", sent)
	}
	// The windows pass: an hour later ann may have a code again.
	h.clock.Add(time.Hour)
	if got := send("ann", "127.0.0.19"); got != "sent" {
		t.Fatalf("an hour later: %s", got)
	}
}

// The send limit holds under concurrency: of 20 sends at once for one
// account, exactly the limit go out.
func TestSendLimitUnderConcurrency(t *testing.T) {
	opt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["codes"].(map[string]any)["send_limits"].(map[string]any)["per_user"].(map[string]any)["max"] = 3.0
		})
	})
	h := newHarness(t, opt)
	h.addPhoneUser("ann", "customer-test-42", bobPhone)
	browsers := make([]*browser, 20)
	for i := range browsers {
		browsers[i] = h.client(true)
		if _, a := browsers[i].login("ann", "customer-test-42"); a.Status != "step_up_required" {
			t.Fatalf("login: %+v", a)
		}
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for _, b := range browsers {
		wg.Go(func() {
			resp, a := b.sendCode("sms")
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode == http.StatusOK {
				got["sent"]++
			} else {
				got[a.Reason]++
			}
		})
	}
	wg.Wait()
	t.Logf("20 concurrent sends: %v", got)
	// The limit is never passed. Every send reserves a place on each of
	// its counters before it is judged, so while refused sends still hold
	// theirs, a send can be refused by another counter it would have
	// passed a moment later: under a burst the counting errs towards
	// refusing, never towards sending.
	refused := 0
	for reason, n := range got {
		if strings.HasPrefix(reason, "code_send_limit_") {
			refused += n
		}
	}
	if got["sent"] < 1 || got["sent"] > 3 || got["sent"]+refused != 20 || len(h.outbox.messages()) != got["sent"] {
		t.Fatalf("20 concurrent sends with a limit of 3: %v, %d messages", got, len(h.outbox.messages()))
	}
}

// A signed-in browser opening the login host's own "/" is told it is signed
// in rather than sent round in a loop.
func TestLoginHostRootWhenSignedIn(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	b.mustLogin(loginHost)
	resp, visited := b.follow(h.url(loginHost, "/"))
	if resp.StatusCode != http.StatusOK || len(visited) > 3 || !strings.Contains(readAll(t, resp), "signed in") {
		t.Fatalf("login host / when signed in: %d after %v", resp.StatusCode, visited)
	}
}

// Email is a code channel only where the policy data enables it: off in the
// shipped data, offered (last) and sent when enabled and an address is on
// file.
func TestCodeByEmailWhereEnabled(t *testing.T) {
	h := newHarness(t)
	id := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	if err := h.store.SetEmail(t.Context(), id, "bob@example.com", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, a := h.client(true).login("bob", "builder-test-42"); strings.Join(a.StepUp, ",") != "sms,voice" {
		t.Fatalf("shipped data offers %v, want no email", a.StepUp)
	}

	opt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["codes"].(map[string]any)["email"].(map[string]any)["enabled"] = true
		})
	})
	h = newHarness(t, opt)
	id = h.addPhoneUser("bob", "builder-test-42", bobPhone)
	if err := h.store.SetEmail(t.Context(), id, "bob@example.com", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b := h.client(true)
	if _, a := b.login("bob", "builder-test-42"); strings.Join(a.StepUp, ",") != "sms,voice,email" {
		t.Fatalf("with email enabled: %v", a.StepUp)
	}
	resp, a := b.sendCode("email")
	if resp.StatusCode != http.StatusOK || a.To != "b•••@example.com" {
		t.Fatalf("send by email: %d %+v", resp.StatusCode, a)
	}
	code, m := h.lastCode(id)
	if m.Channel != notify.Email || m.To != "bob@example.com" || m.Subject == "" {
		t.Fatalf("email message: %+v", m)
	}
	if _, a := b.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("verify the emailed code: %+v", a)
	}
}

// Wrong answers count per account over all its step-ups: logging in again
// for fresh tries does not make guessing pay, and concurrent guesses from
// many pending step-ups all count.
func TestStepUpFailuresCountPerAccount(t *testing.T) {
	opt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["step_up"].(map[string]any)["failures"].(map[string]any)["max"] = 6.0
			// The cap in a row stays out of the way of the throttle.
			cfg["step_up"].(map[string]any)["max_consecutive_failures"] = 20.0
		})
	})
	h := newHarness(t, opt)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	var wg sync.WaitGroup
	for range 3 {
		b := h.client(true)
		stepUpTo(t, h, b, bobID, "sms")
		for range 4 {
			wg.Go(func() { b.verifyCode("000000", false) })
		}
	}
	wg.Wait()
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	if _, a := b.verifyCode(code, false); a.Status == "authenticated" || a.Reason != "code_attempts_exceeded" {
		t.Fatalf("the right code after 12 wrong ones over three logins: %+v, want code_attempts_exceeded", a)
	}
	h.clock.Add(time.Hour)
	b = h.client(true)
	code = stepUpTo(t, h, b, bobID, "sms")
	if _, a := b.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("an hour later: %+v", a)
	}
}
