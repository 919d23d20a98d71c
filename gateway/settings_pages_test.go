package gateway_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/pquerna/otp/totp"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
)

const settingsPath = "/.portcullis/settings"

// submit posts a form to path on the login host.
func (b *browser) submit(path string, form url.Values) *http.Response {
	b.h.t.Helper()
	req := mustReq(b.h.t, http.MethodPost, b.h.url(loginHost, path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// page GETs path on the login host and returns its body, failing unless it
// answers 200 with a page that keeps to the CSP (no script, no inline
// style).
func (b *browser) page(path string) string {
	b.h.t.Helper()
	resp := b.get(loginHost, path)
	body := readAll(b.h.t, resp)
	if resp.StatusCode != http.StatusOK {
		b.h.t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
	}
	checkPage(b.h.t, body)
	return body
}

// checkPage fails when a page has what its CSP would block: any script but
// the gateway's own file, inline styles, javascript: links.
func checkPage(t *testing.T, body string) {
	t.Helper()
	body = strings.ReplaceAll(body, `<script src="/.portcullis/passkeys/passkey.js" defer></script>`, "")
	for _, bad := range []string{"<script", "style=", "<style", "javascript:"} {
		if strings.Contains(body, bad) {
			t.Fatalf("the page has %q:\n%s", bad, body)
		}
	}
}

// wantRedirect fails unless resp is a 303 to location.
func wantRedirect(t *testing.T, what string, resp *http.Response, location string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != location {
		t.Fatalf("%s: %d to %q, want 303 to %q\n%s", what, resp.StatusCode, resp.Header.Get("Location"), location, readAll(t, resp))
	}
}

// freshBob signs bob in from b with a texted code, so that the settings
// point sees a fresh step-up; remember registers b as a device.
func freshBob(t *testing.T, h *harness, b *browser, remember bool) string {
	t.Helper()
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	code := stepUpTo(t, h, b, bobID, "sms")
	if _, a := b.verifyCode(code, remember); a.Status != "authenticated" || a.DeviceRegistered != remember {
		t.Fatalf("verify: %+v", a)
	}
	return bobID
}

// stepUpPages passes the step-up pages by text message, as a person would:
// the choice, the code page and its form. It returns the verify answer.
func stepUpPages(t *testing.T, h *harness, b *browser, userID, purpose string) *http.Response {
	t.Helper()
	body := b.page("/.portcullis/step-up")
	if !strings.Contains(body, "Text me a code") || !strings.Contains(body, "Call me with a code") {
		t.Fatalf("step-up page:\n%s", body)
	}
	sent := b.submit("/.portcullis/step-up/send", url.Values{"csrf": {hiddenValue(body, "csrf")}, "method": {"sms"}})
	body = readAll(t, sent)
	if sent.StatusCode != http.StatusOK {
		t.Fatalf("send form: %d\n%s", sent.StatusCode, body)
	}
	code, _ := h.lastCodeFor(userID, purpose)
	return b.submit("/.portcullis/step-up/verify", url.Values{"csrf": {hiddenValue(body, "csrf")}, "method": {"code"}, "code": {code}})
}

func devicesOf(t *testing.T, h *harness, userID string) []store.Device {
	t.Helper()
	ds, err := h.store.ListDevices(t.Context(), userID, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// The settings page lists the devices, escaped and with readable dates,
// and removes one through its form after a fresh step-up.
func TestSettingsPageRemovesADevice(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, true)
	// A device whose name is markup shows as text.
	now := h.clock.Now()
	if err := h.store.AddDevice(t.Context(), store.Device{ID: web.TokenID("other-device"), UserID: bobID, Name: `Bob's <b>tablet</b>`,
		CreatedAt: now.Add(-48 * time.Hour), LastUsedAt: now.Add(-time.Hour), ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	body := b.page(settingsPath)
	for _, want := range []string{"Bob&#39;s &lt;b&gt;tablet&lt;/b&gt;", "First used 27 February 2026, 09:00 UTC",
		"Last used 1 March 2026, 08:00 UTC"} {
		if !strings.Contains(body, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
	if strings.Contains(body, "<b>tablet") {
		t.Error("a device name was not escaped")
	}
	// Masked by the phone plugin: only the last digits show.
	if !strings.Contains(body, "••23.") || strings.Contains(body, "2015550123") || strings.Contains(body, "201-555") ||
		strings.Contains(body, "201 555") || strings.Contains(body, "(201)") {
		t.Errorf("the security phone is not shown masked:\n%s", body)
	}
	if len(devicesOf(t, h, bobID)) != 2 {
		t.Fatal("bob does not have two devices")
	}
	resp := b.submit(settingsPath+"/devices/remove", url.Values{"csrf": {hiddenValue(body, "csrf")}, "id": {web.TokenID("other-device")}})
	wantRedirect(t, "remove form", resp, settingsPath+"?done=device_removed")
	body = b.page(settingsPath + "?done=device_removed")
	if !strings.Contains(body, "The device was removed and signed out.") || strings.Contains(body, "tablet") {
		t.Fatalf("settings page after removing:\n%s", body)
	}
	if ds := devicesOf(t, h, bobID); len(ds) != 1 || ds[0].ID == web.TokenID("other-device") {
		t.Fatalf("devices after removing: %+v", ds)
	}
	if !hasNotice(h, bobID, "device_removed") {
		t.Fatal("no notice of the removed device")
	}
	// Not one of bob's: the refusal is shown on the page.
	resp = b.submit(settingsPath+"/devices/remove", url.Values{"csrf": {hiddenValue(body, "csrf")}, "id": {"not-a-device"}})
	if body := readAll(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "not registered to your profile") ||
		!strings.Contains(body, "Security settings") {
		t.Fatalf("remove an unknown device: %d\n%s", resp.StatusCode, body)
	}
}

// Without a fresh step-up, a removal sends the browser to the step-up
// pages, which bring it back to the settings page once passed; the removal
// then goes through.
func TestSettingsPageStepUpReturnsToSettings(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, true)
	b.logout()
	h.clock.Add(time.Hour)
	if _, a := b.login("bob", "builder-test-42"); a.Status != "authenticated" {
		t.Fatalf("login from the registered device: %+v", a)
	}
	body := b.page(settingsPath)
	devID := hiddenValue(body, "id")
	resp := b.submit(settingsPath+"/devices/remove", url.Values{"csrf": {hiddenValue(body, "csrf")}, "id": {devID}})
	wantRedirect(t, "remove without a fresh step-up", resp, "/.portcullis/step-up")
	if len(devicesOf(t, h, bobID)) != 1 {
		t.Fatal("the device was removed without a fresh step-up")
	}
	before := sessionCookie(t, b, h)
	wantRedirect(t, "verify form", stepUpPages(t, h, b, bobID, notify.PurposeSettings), settingsPath+"?done=verified")
	if after := sessionCookie(t, b, h); after == before || after == "" {
		t.Fatal("the session ID did not change when the step-up passed")
	}
	body = b.page(settingsPath + "?done=verified")
	if !strings.Contains(body, "make your change again") {
		t.Fatalf("settings page after the step-up:\n%s", body)
	}
	resp = b.submit(settingsPath+"/devices/remove", url.Values{"csrf": {hiddenValue(body, "csrf")}, "id": {devID}})
	wantRedirect(t, "remove after the step-up", resp, settingsPath+"?done=device_removed")
	if n := len(devicesOf(t, h, bobID)); n != 0 {
		t.Fatalf("%d devices after removing", n)
	}
}

var secretOnPage = regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`)

// An authenticator app is added through the pages: the QR code and the key
// are shown, and the app's first code adds it; it is then listed and
// removed through the page.
func TestSettingsPageAddsAnAuthenticatorApp(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, false)
	body := b.page(settingsPath)
	resp := b.submit(settingsPath+"/totp", url.Values{"csrf": {hiddenValue(body, "csrf")}})
	body = readAll(t, resp)
	checkPage(t, body)
	m := secretOnPage.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(body, `<img class="qr" src="data:image/png;base64,`) {
		t.Fatalf("authenticator page: %d\n%s", resp.StatusCode, body)
	}
	code, err := totp.GenerateCode(m[1], h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp = b.submit(settingsPath+"/totp/confirm", url.Values{"csrf": {hiddenValue(body, "csrf")}, "code": {code}, "name": {"Bob's phone"}})
	wantRedirect(t, "confirm form", resp, settingsPath+"?done=totp_added")
	body = b.page(settingsPath + "?done=totp_added")
	if !strings.Contains(body, "Your authenticator app is set up.") || !strings.Contains(body, "Authenticator app") ||
		!strings.Contains(body, "Bob&#39;s phone") || !strings.Contains(body, "Added 1 March 2026, 09:00 UTC") {
		t.Fatalf("settings page after adding the app:\n%s", body)
	}
	fs, err := h.store.FactorsOf(t.Context(), bobID)
	if err != nil || len(fs) != 1 || fs[0].Kind != "totp" {
		t.Fatalf("factors: %+v %v", fs, err)
	}
	if !hasNotice(h, bobID, "two_factor_changed") {
		t.Fatal("no notice of the new second factor")
	}
	// The enrolment was used: confirming again starts over.
	resp = b.submit(settingsPath+"/totp/confirm", url.Values{"csrf": {hiddenValue(body, "csrf")}, "code": {code}})
	if body := readAll(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Start adding the authenticator app again.") {
		t.Fatalf("confirm again: %d\n%s", resp.StatusCode, body)
	}
	// The factor list's form removes it.
	marker := `action="/.portcullis/settings/factors/remove"`
	form := body[strings.Index(body, marker):]
	resp = b.submit(settingsPath+"/factors/remove", url.Values{"csrf": {hiddenValue(form, "csrf")}, "id": {hiddenValue(form, "id")}})
	wantRedirect(t, "remove the app", resp, settingsPath+"?done=factor_removed")
	if fs, _ := h.store.FactorsOf(t.Context(), bobID); len(fs) != 0 {
		t.Fatalf("factors after removing: %+v", fs)
	}
}

// Challenge questions are chosen on their page: too few answers are asked
// for again on it, three are saved.
func TestSettingsPageSetsChallengeQuestions(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, false)
	body := b.page(settingsPath + "/questions")
	if !strings.Contains(body, "at least 3 questions") || !strings.Contains(body, `name="answer_first_pet"`) {
		t.Fatalf("questions page:\n%s", body)
	}
	csrf := hiddenValue(body, "csrf")
	resp := b.submit(settingsPath+"/questions", url.Values{"csrf": {csrf}, "answer_first_pet": {"Rover"}, "answer_birth_city": {"  "}})
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Answer at least 3 questions.") ||
		!strings.Contains(body, `name="answer_first_pet"`) {
		t.Fatalf("one answer: %d\n%s", resp.StatusCode, body)
	}
	resp = b.submit(settingsPath+"/questions", url.Values{"csrf": {csrf}, "answer_first_pet": {"Rover"},
		"answer_birth_city": {"Springfield"}, "answer_first_car": {"Plymouth Valiant"}})
	wantRedirect(t, "three answers", resp, settingsPath+"?done=questions_saved")
	fs, err := h.store.FactorsOf(t.Context(), bobID)
	if err != nil || len(fs) != 1 || fs[0].Kind != "questions" {
		t.Fatalf("factors: %+v %v", fs, err)
	}
	if body := b.page(settingsPath + "?done=questions_saved"); !strings.Contains(body, "Your challenge questions are saved.") {
		t.Fatalf("settings page after saving:\n%s", body)
	}
}

// The security phone changes through the pages: a number that is not a
// specific phone in the person's possession is refused on the page; a
// mobile is confirmed on the step-up pages with a code sent to it, which
// bring the person back to the settings page.
func TestSettingsPageChangesThePhone(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, false)
	body := b.page(settingsPath)

	resp := b.submit(settingsPath+"/security-phone", url.Values{"csrf": {hiddenValue(body, "csrf")}, "phone": {exampleNumber(t, "GB", phonenumbers.VOIP)}})
	refused := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(refused, "specific phone in your possession") ||
		!strings.Contains(refused, `action="/.portcullis/settings/security-phone"`) {
		t.Fatalf("a VoIP number: %d\n%s", resp.StatusCode, refused)
	}
	checkPage(t, refused)

	newPhone := exampleNumber(t, "GB", phonenumbers.MOBILE)
	resp = b.submit(settingsPath+"/security-phone", url.Values{"csrf": {hiddenValue(body, "csrf")}, "phone": {newPhone}})
	wantRedirect(t, "a mobile number", resp, "/.portcullis/step-up")
	if u, _ := h.store.UserByID(t.Context(), bobID); u.SecurityPhone != bobPhone {
		t.Fatal("the phone changed before it was confirmed")
	}
	done := stepUpPages(t, h, b, bobID, notify.PurposePhoneChange)
	if _, m := h.lastCodeFor(bobID, notify.PurposePhoneChange); m.To != newPhone {
		t.Fatalf("the confirmation went to %s, want the new number %s", m.To, newPhone)
	}
	wantRedirect(t, "confirm form", done, settingsPath+"?done=phone_changed")
	if u, _ := h.store.UserByID(t.Context(), bobID); u.SecurityPhone != newPhone {
		t.Fatalf("security phone after the confirmation: %s", u.SecurityPhone)
	}
	if body := b.page(settingsPath + "?done=phone_changed"); !strings.Contains(body, "Your security phone is changed.") {
		t.Fatalf("settings page after the change:\n%s", body)
	}
}

// Every settings form needs the CSRF token, and every settings page a
// session: without one the browser is sent to sign in, and comes back.
func TestSettingsPagesNeedTokenAndSession(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, true)
	body := b.page(settingsPath)
	devID := hiddenValue(body, "id")
	token := hiddenValue(body, "csrf")
	wrong := "A" + token[1:]
	if wrong == token {
		wrong = "B" + token[1:]
	}
	for name, csrf := range map[string][]string{"no token": nil, "wrong token": {wrong}} {
		resp := b.submit(settingsPath+"/devices/remove", url.Values{"csrf": csrf, "id": {devID}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
	if len(devicesOf(t, h, bobID)) != 1 {
		t.Fatal("a form without its token removed the device")
	}

	anon := h.client(true)
	for _, path := range []string{settingsPath, settingsPath + "/questions"} {
		resp := anon.get(loginHost, path)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.portcullis/login?rd=/.portcullis/settings" {
			t.Errorf("GET %s without a session: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	login := readAll(t, anon.get(loginHost, "/.portcullis/login?rd=/.portcullis/settings"))
	for _, path := range []string{"/devices/remove", "/factors/remove", "/security-phone", "/totp", "/totp/confirm", "/questions"} {
		resp := anon.submit(settingsPath+path, url.Values{"csrf": {hiddenValue(login, "csrf")}, "id": {devID}})
		wantRedirect(t, "POST "+path+" without a session", resp, "/.portcullis/login?rd=/.portcullis/settings")
	}
	if hiddenValue(login, "rd") != settingsPath {
		t.Fatalf("the login page does not return to the settings: %q", hiddenValue(login, "rd"))
	}
}
