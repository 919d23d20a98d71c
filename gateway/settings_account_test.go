package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/policies"
)

// testPasswords measures new passwords as the gateway's checker would for
// the rules the tests meet: the length as the policies count it, and
// whether the password holds the username. Every password is taken as hard
// to guess and absent from the common list.
type testPasswords struct{}

func (testPasswords) Facts(password, username string, _ ...string) policies.PasswordFacts {
	return policies.PasswordFacts{
		Length:           policies.PasswordLength(password),
		ContainsUsername: username != "" && strings.Contains(strings.ToLower(password), strings.ToLower(username)),
		GuessesLog10:     20,
	}
}

const (
	bobPassword    = "builder-test-42"
	bobNewPassword = "four unrelated words here"
)

// acctAnswer is a settings call's answer.
type acctAnswer struct {
	Status   string   `json:"status"`
	Reason   string   `json:"reason"`
	Message  string   `json:"message"`
	User     string   `json:"user"`
	StepUp   []string `json:"step_up"`
	Sessions []struct {
		ID         string    `json:"id"`
		Host       string    `json:"host"`
		SignedInAt time.Time `json:"signed_in_at"`
		LastSeenAt time.Time `json:"last_seen_at"`
		Current    bool      `json:"current"`
	} `json:"sessions"`
}

// call sends a settings API request (a GET when v is nil) and decodes the
// answer; raw is the body as it came.
func (b *browser) call(method, path string, v any) (resp *http.Response, a acctAnswer, raw string) {
	b.h.t.Helper()
	var body *bytes.Reader
	if v != nil {
		j, _ := json.Marshal(v)
		body = bytes.NewReader(j)
	} else {
		body = bytes.NewReader(nil)
	}
	req := mustReq(b.h.t, method, b.h.url(loginHost, "/.portcullis/api/v1/"+path), body)
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp = b.do(req)
	raw = readAll(b.h.t, resp)
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		b.h.t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, path, err, raw)
	}
	return resp, a, raw
}

func (b *browser) changePassword(current, next string) (*http.Response, acctAnswer) {
	b.h.t.Helper()
	resp, a, _ := b.call(http.MethodPost, "password", map[string]string{"current_password": current, "new_password": next})
	return resp, a
}

// signedIn reports whether the browser's session on the login host is
// valid.
func (b *browser) signedIn() bool {
	b.h.t.Helper()
	resp, a, _ := b.call(http.MethodGet, "session", nil)
	return resp.StatusCode == http.StatusOK && a.Status == "authenticated"
}

// staleBob signs bob in from a browser registered as his device, so that
// the settings point sees no fresh step-up.
func staleBob(t *testing.T, h *harness, bobID, password string) *browser {
	t.Helper()
	b := h.client(true)
	h.registerDevice(b, bobID)
	u, err := h.store.UserByID(t.Context(), bobID)
	if err != nil {
		t.Fatal(err)
	}
	if _, a := b.login(u.Username, password); a.Status != "authenticated" {
		t.Fatalf("login from a registered device: %+v", a)
	}
	return b
}

func passwordIs(t *testing.T, h *harness, userID, password string) bool {
	t.Helper()
	u, err := h.store.UserByID(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := h.gw.Hasher().Verify(t.Context(), u.PasswordHash, password)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A password change needs a fresh step-up and the current password; it
// stores the new hash, keeps this session under a new ID, ends every other
// session of the profile at once, clears the failure count and sends a
// notice without the password.
func TestChangePassword(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, false)
	other := staleBob(t, h, bobID, bobPassword)
	if !other.signedIn() { // and cached by the gateway
		t.Fatal("the second browser is not signed in")
	}

	// Without a fresh step-up, from the second browser: one is begun.
	if resp, a := other.changePassword(bobPassword, bobNewPassword); resp.StatusCode != http.StatusForbidden ||
		a.Status != "step_up_required" || len(a.StepUp) == 0 {
		t.Fatalf("without a fresh step-up: %d %+v", resp.StatusCode, a)
	}
	// A new password the rules refuse is refused with what to change.
	if resp, a := b.changePassword(bobPassword, "too-short"); resp.StatusCode != http.StatusForbidden ||
		a.Reason != policies.ReasonPasswordTooShort || !strings.Contains(a.Message, "at least 12 characters") {
		t.Fatalf("a short password: %d %+v", resp.StatusCode, a)
	}
	if resp, a := b.changePassword(bobPassword, "bob-and-the-builder"); resp.StatusCode != http.StatusForbidden ||
		!strings.HasPrefix(a.Reason, "password_contains_") {
		t.Fatalf("a password with the username: %d %+v", resp.StatusCode, a)
	}
	// A wrong current password counts as a failed login.
	if resp, a := b.changePassword("not-the-password", bobNewPassword); resp.StatusCode != http.StatusForbidden ||
		a.Reason != policies.ReasonBadCredentials || !strings.Contains(a.Message, "current password") {
		t.Fatalf("a wrong current password: %d %+v", resp.StatusCode, a)
	}
	if u, _ := h.store.UserByID(t.Context(), bobID); u.FailedLogins != 1 {
		t.Fatalf("failures after a wrong current password: %d, want 1", u.FailedLogins)
	}
	if !passwordIs(t, h, bobID, bobPassword) {
		t.Fatal("a refused change changed the password")
	}

	if !other.signedIn() { // cached again
		t.Fatal("the second browser was signed out by a refused change")
	}
	before := sessionCookie(t, b, h)
	resp, a := b.changePassword(bobPassword, bobNewPassword)
	if resp.StatusCode != http.StatusOK || a.Status != "password_changed" {
		t.Fatalf("change: %d %+v", resp.StatusCode, a)
	}
	if !passwordIs(t, h, bobID, bobNewPassword) {
		t.Fatal("the new password does not verify")
	}
	if u, _ := h.store.UserByID(t.Context(), bobID); u.FailedLogins != 0 {
		t.Fatalf("failures after the change: %d, want 0", u.FailedLogins)
	}
	if after := sessionCookie(t, b, h); after == before || after == "" {
		t.Fatal("the session ID did not change with the password")
	}
	if !b.signedIn() {
		t.Fatal("the session that changed the password was ended")
	}
	old := h.client(false)
	req := mustReq(t, http.MethodGet, h.url(loginHost, "/.portcullis/api/v1/session"), nil)
	req.AddCookie(&http.Cookie{Name: "__Host-portcullis", Value: before})
	if resp := old.do(req); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the session ID from before the change: %d, want 401", resp.StatusCode)
	}
	if other.signedIn() {
		t.Fatal("the other browser is still signed in after the password change")
	}
	if !hasNotice(h, bobID, "password_changed") {
		t.Fatal("no notice of the new password")
	}
	for _, m := range h.outbox.messages() {
		if strings.Contains(m.Text, bobNewPassword) || strings.Contains(m.Text, bobPassword) {
			t.Fatalf("a message carries a password: %+v", m)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, bobNewPassword) || strings.Contains(logs, bobPassword) {
		t.Fatal("a password was logged")
	}
	b.logout()
	if _, a := b.login("bob", bobPassword); a.Reason != policies.ReasonBadCredentials {
		t.Fatalf("login with the old password: %+v", a)
	}
	if _, a := b.login("bob", bobNewPassword); a.Status != "step_up_required" && a.Status != "authenticated" {
		t.Fatalf("login with the new password: %+v", a)
	}
}

// Five wrong current passwords in a row lock the profile, as five wrong
// passwords at login do; the locked profile then changes nothing, even with
// the right password.
func TestWrongCurrentPasswordsLock(t *testing.T) {
	h := newHarness(t, withLooseThrottle(t))
	b := h.client(true)
	bobID := freshBob(t, h, b, false)
	for i := range 5 {
		resp, a := b.changePassword(fmt.Sprint("wrong-password-", i), bobNewPassword)
		if resp.StatusCode != http.StatusForbidden || a.Reason != policies.ReasonBadCredentials {
			t.Fatalf("wrong current password %d: %d %+v", i+1, resp.StatusCode, a)
		}
		u, _ := h.store.UserByID(t.Context(), bobID)
		if u.FailedLogins != i+1 || u.Locked != (i == 4) {
			t.Fatalf("after %d wrong current passwords: %d failures, locked %v", i+1, u.FailedLogins, u.Locked)
		}
		if i == 4 && !strings.Contains(a.Message, "locked") {
			t.Fatalf("the locking failure says %q", a.Message)
		}
	}
	if !hasNotice(h, bobID, "account_locked") {
		t.Fatal("no notice of the lock")
	}
	if resp, a := b.changePassword(bobPassword, bobNewPassword); resp.StatusCode != http.StatusForbidden || a.Reason != "account_locked" {
		t.Fatalf("the right password on the locked profile: %d %+v", resp.StatusCode, a)
	}
	if !passwordIs(t, h, bobID, bobPassword) {
		t.Fatal("the locked profile's password changed")
	}
	if u, _ := h.store.UserByID(t.Context(), bobID); u.FailedLogins != 5 {
		t.Fatalf("failures after the refused change: %d, want 5", u.FailedLogins)
	}
}

// Wrong current passwords sent at once all count, the profile locks
// however they interleave, and a lock is notified once.
func TestParallelWrongCurrentPasswordsLock(t *testing.T) {
	var counted atomic.Int64
	h := newHarness(t, withLooseThrottle(t), withFailureCount(&counted))
	b := h.client(true)
	bobID := freshBob(t, h, b, false)
	cookie := sessionCookie(t, b, h)
	const n = 16
	var mu sync.Mutex
	answers := map[string]int{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		c := h.client(false)
		wg.Go(func() {
			body, _ := json.Marshal(map[string]string{"current_password": fmt.Sprint("wrong-", i), "new_password": bobNewPassword})
			req, _ := http.NewRequest(http.MethodPost, h.url(loginHost, "/.portcullis/api/v1/password"), bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.AddCookie(&http.Cookie{Name: "__Host-portcullis", Value: cookie})
			<-start
			key := ""
			if resp, err := c.Do(req); err != nil {
				key = "error: " + err.Error()
			} else {
				var a acctAnswer
				json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				key = fmt.Sprint(resp.StatusCode, " ", a.Reason)
			}
			mu.Lock()
			answers[key]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	for key := range answers {
		if key != "403 bad_credentials" && key != "403 account_locked" {
			t.Fatalf("a wrong current password answered %q: %v", key, answers)
		}
	}
	u, err := h.store.UserByID(t.Context(), bobID)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Locked || u.FailedLogins < 5 || int64(u.FailedLogins) != counted.Load() {
		t.Fatalf("after %v: locked %v, %d failures kept, %d counted (want locked, equal, at least 5)", answers, u.Locked, u.FailedLogins, counted.Load())
	}
	locks := 0
	text := noticeText(t, "account_locked")
	for _, m := range h.outbox.messages() {
		if m.UserID == bobID && m.Text == text {
			locks++
		}
	}
	if locks != 1 {
		t.Fatalf("%d lock notices, want 1", locks)
	}
	if resp, a := b.changePassword(bobPassword, bobNewPassword); resp.StatusCode != http.StatusForbidden || a.Reason != "account_locked" {
		t.Fatalf("the right password after the burst: %d %+v", resp.StatusCode, a)
	}
	if !passwordIs(t, h, bobID, bobPassword) {
		t.Fatal("the password changed on a locked profile")
	}
}

// The right current password racing the wrong one that locks: whichever
// the store takes first, a profile that ends locked kept its password.
func TestRightCurrentPasswordRacingTheLock(t *testing.T) {
	for round := range 4 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			h := newHarness(t, withLooseThrottle(t))
			b := h.client(true)
			bobID := freshBob(t, h, b, false)
			for i := range 4 {
				if _, a := b.changePassword(fmt.Sprint("wrong-", i), bobNewPassword); a.Reason != policies.ReasonBadCredentials {
					t.Fatalf("wrong %d: %+v", i+1, a)
				}
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, current := range []string{"wrong-last", bobPassword} {
				wg.Go(func() {
					<-start
					b.changePassword(current, bobNewPassword)
				})
			}
			close(start)
			wg.Wait()
			u, err := h.store.UserByID(t.Context(), bobID)
			if err != nil {
				t.Fatal(err)
			}
			changed := passwordIs(t, h, bobID, bobNewPassword)
			if u.Locked && changed {
				t.Fatal("the profile locked and its password changed")
			}
			if !u.Locked && !changed {
				t.Fatalf("neither locked nor changed: %d failures", u.FailedLogins)
			}
		})
	}
}

func noticeText(t *testing.T, event string) string {
	t.Helper()
	text, ok := notify.Notice("Portcullis", event)
	if !ok {
		t.Fatalf("no notice for %s", event)
	}
	return text
}

// A username change needs a fresh step-up, a valid name not taken by
// another profile (as the store's rename finds it), and takes effect at
// once for the session and the next login.
func TestChangeUsername(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, false)
	stale := staleBob(t, h, bobID, bobPassword)
	change := func(b *browser, name string) (*http.Response, acctAnswer) {
		t.Helper()
		resp, a, _ := b.call(http.MethodPost, "username", map[string]string{"username": name})
		return resp, a
	}
	if resp, a := change(stale, "robert"); resp.StatusCode != http.StatusForbidden || a.Status != "step_up_required" {
		t.Fatalf("without a fresh step-up: %d %+v", resp.StatusCode, a)
	}
	if resp, a := change(b, " ALICE "); resp.StatusCode != http.StatusForbidden || a.Reason != "username_taken" ||
		a.Message != "That username is taken. Choose another one." {
		t.Fatalf("a taken username: %d %+v", resp.StatusCode, a)
	}
	if resp, a := change(b, "x"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(a.Message, "3 to 64 characters") {
		t.Fatalf("a short username: %d %+v", resp.StatusCode, a)
	}
	if resp, a := change(b, "Robert.Builder "); resp.StatusCode != http.StatusOK || a.Status != "username_changed" || a.User != "robert.builder" {
		t.Fatalf("change: %d %+v", resp.StatusCode, a)
	}
	if u, _ := h.store.UserByID(t.Context(), bobID); u.Username != "robert.builder" {
		t.Fatalf("stored username %q", u.Username)
	}
	for _, c := range []*browser{b, stale} {
		if _, a, _ := c.call(http.MethodGet, "session", nil); a.User != "robert.builder" {
			t.Fatalf("a session of the profile still names %q", a.User)
		}
	}
	if !hasNotice(h, bobID, "username_changed") {
		t.Fatal("no notice of the new username")
	}
	b.logout()
	if _, a := b.login("bob", bobPassword); a.Reason != policies.ReasonBadCredentials {
		t.Fatalf("login with the old username: %+v", a)
	}
	if _, a := b.login("robert.builder", bobPassword); a.Status != "step_up_required" {
		t.Fatalf("login with the new username: %+v", a)
	}
}

// Two profiles asking for the same free name at once: the store's rename
// decides, and exactly one gets it.
func TestParallelUsernameChangesTakeOneName(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	freshBob(t, h, b, false)
	carol := h.client(true)
	carolID := h.addPhoneUser("carol", "carol-test-password", "+12015550199")
	resp, a := carol.login("carol", "carol-test-password")
	if a.Status != "step_up_required" {
		t.Fatalf("carol's login: %d %+v", resp.StatusCode, a)
	}
	if _, a := carol.sendCode("sms"); a.Status != "code_sent" {
		t.Fatalf("carol's code: %+v", a)
	}
	code, _ := h.lastCode(carolID)
	if _, a := carol.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("carol's step-up: %+v", a)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	start := make(chan struct{})
	for _, c := range []*browser{b, carol} {
		wg.Go(func() {
			body, _ := json.Marshal(map[string]string{"username": "wanted.name"})
			req, _ := http.NewRequest(http.MethodPost, h.url(loginHost, "/.portcullis/api/v1/username"), bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := c.Do(req)
			key := "error"
			if err == nil {
				var a acctAnswer
				json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				key = a.Status + " " + a.Reason
			}
			mu.Lock()
			got[key]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if got["username_changed "] != 1 || got["denied username_taken"] != 1 {
		t.Fatalf("answers %v, want one change and one username_taken", got)
	}
}

// The signed-in sessions are listed without their IDs, this one marked;
// one can be ended, and "log out everywhere" ends them all, this one
// included. An ended session's cookie is refused on the very next request,
// although the gateway had it cached.
func TestSessionsAreListedAndEnded(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, false)
	second, third := staleBob(t, h, bobID, bobPassword), staleBob(t, h, bobID, bobPassword)
	// Seen a minute later, and this browser a minute after that: it
	// comes first in the list.
	h.clock.Add(time.Minute)
	for _, c := range []*browser{second, third} {
		if !c.signedIn() {
			t.Fatal("a browser is not signed in")
		}
	}
	h.clock.Add(time.Minute)
	resp, a, raw := b.call(http.MethodGet, "sessions", nil)
	if resp.StatusCode != http.StatusOK || len(a.Sessions) != 3 {
		t.Fatalf("sessions: %d %s", resp.StatusCode, raw)
	}
	current := 0
	for _, s := range a.Sessions {
		if s.Current {
			current++
		}
		if s.Host != loginHost || s.ID == "" || s.SignedInAt.IsZero() || s.LastSeenAt.IsZero() {
			t.Fatalf("a listed session: %+v", s)
		}
	}
	for _, c := range []*browser{b, second, third} {
		token := sessionCookie(t, c, h)
		if strings.Contains(raw, token) || strings.Contains(raw, tokenHash(token)) {
			t.Fatal("the list shows a session's token or ID")
		}
	}
	if current != 1 || !a.Sessions[0].Current {
		t.Fatalf("sessions marked current: %d, the latest first: %+v", current, a.Sessions)
	}

	// End the second browser's session by its handle.
	_, list2, _ := second.call(http.MethodGet, "sessions", nil)
	var handle string
	for _, s := range list2.Sessions {
		if s.Current {
			handle = s.ID
		}
	}
	if resp, a, _ := b.call(http.MethodPost, "sessions/end", map[string]string{"id": handle}); resp.StatusCode != http.StatusOK || a.Status != "ended" {
		t.Fatalf("end a session: %d %+v", resp.StatusCode, a)
	}
	if second.signedIn() {
		t.Fatal("the ended session still works")
	}
	if !b.signedIn() || !third.signedIn() {
		t.Fatal("ending one session ended another")
	}
	if resp, a, _ := b.call(http.MethodPost, "sessions/end", map[string]string{"id": handle}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("end it again: %d %+v", resp.StatusCode, a)
	}

	// Log out everywhere.
	resp, a, _ = b.call(http.MethodPost, "sessions/end-all", map[string]string{})
	if resp.StatusCode != http.StatusOK || a.Status != "signed_out" || !hasClearedCookie(resp) {
		t.Fatalf("log out everywhere: %d %+v", resp.StatusCode, a)
	}
	if b.signedIn() || third.signedIn() {
		t.Fatal("a session survived logging out everywhere")
	}
	if ss, err := h.store.ListUserSessions(t.Context(), bobID); err != nil || len(ss) != 0 {
		t.Fatalf("stored sessions after logging out everywhere: %d %v", len(ss), err)
	}
	if resp, _, _ := b.call(http.MethodGet, "sessions", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("sessions after logging out: %d", resp.StatusCode)
	}
}

// hasClearedCookie reports whether resp tells the browser to forget the
// session cookie.
func hasClearedCookie(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-portcullis" && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

// The settings page has the forms for the password, the username and the
// sessions, with labels and autocomplete hints, and says the security phone
// is not the contact phone. Its forms make the changes; without a fresh
// step-up they go to the step-up pages first.
func TestSettingsPageAccountForms(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	bobID := freshBob(t, h, b, false)
	second := staleBob(t, h, bobID, bobPassword)
	body := b.page(settingsPath)
	for _, want := range []string{
		`<label for="current_password">`, `autocomplete="current-password"`,
		`<label for="new_password">`, `autocomplete="new-password"`,
		`<label for="username">`, `autocomplete="username"`,
		"separate from the contact phone in your personal information",
		"(this browser)", "Log out everywhere", `action="/.portcullis/settings/sessions/end-all"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("settings page lacks %s", want)
		}
	}
	csrf := hiddenValue(body, "csrf")

	// Refusals are shown on the page.
	resp := b.submit(settingsPath+"/username", url.Values{"csrf": {csrf}, "username": {"alice"}})
	if page := readAll(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "That username is taken.") ||
		!strings.Contains(page, `action="/.portcullis/settings/username"`) {
		t.Fatalf("a taken username: %d\n%s", resp.StatusCode, page)
	}
	resp = b.submit(settingsPath+"/password", url.Values{"csrf": {csrf}, "current_password": {"wrong-one"}, "new_password": {bobNewPassword}})
	if page := readAll(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "current password you entered is incorrect") {
		t.Fatalf("a wrong current password: %d\n%s", resp.StatusCode, page)
	}

	// The forms change the username and the password.
	wantRedirect(t, "username form", b.submit(settingsPath+"/username", url.Values{"csrf": {csrf}, "username": {"bobby"}}),
		settingsPath+"?done=username_changed")
	if page := b.page(settingsPath + "?done=username_changed"); !strings.Contains(page, "Your username is changed.") ||
		!strings.Contains(page, "You sign in as bobby.") {
		t.Fatalf("settings page after the username changed:\n%s", page)
	}
	wantRedirect(t, "password form", b.submit(settingsPath+"/password", url.Values{"csrf": {csrf},
		"current_password": {bobPassword}, "new_password": {bobNewPassword}}), settingsPath+"?done=password_changed")
	if !passwordIs(t, h, bobID, bobNewPassword) || second.signedIn() {
		t.Fatal("the password form did not change the password and end the other session")
	}
	body = b.page(settingsPath + "?done=password_changed")
	if !strings.Contains(body, "Your password is changed.") {
		t.Fatalf("settings page after the password changed:\n%s", body)
	}

	// From a session without a fresh step-up the forms go to the step-up.
	stale := staleBob(t, h, bobID, bobNewPassword)
	page := stale.page(settingsPath)
	wantRedirect(t, "password form without a step-up", stale.submit(settingsPath+"/password", url.Values{"csrf": {hiddenValue(page, "csrf")},
		"current_password": {bobNewPassword}, "new_password": {"yet another long password"}}), "/.portcullis/step-up")
	if !passwordIs(t, h, bobID, bobNewPassword) {
		t.Fatal("the password changed without a fresh step-up")
	}

	// One session ended from the list, then everywhere.
	body = b.page(settingsPath)
	marker := `action="/.portcullis/settings/sessions/end"`
	var staleHandle string
	_, list, _ := stale.call(http.MethodGet, "sessions", nil)
	for _, s := range list.Sessions {
		if s.Current {
			staleHandle = s.ID
		}
	}
	if !strings.Contains(body, marker) || !strings.Contains(body, `name="session" value="`+staleHandle+`"`) {
		t.Fatalf("the page does not list the other session %s:\n%s", staleHandle, body)
	}
	wantRedirect(t, "end one session", b.submit(settingsPath+"/sessions/end", url.Values{"csrf": {hiddenValue(body, "csrf")}, "session": {staleHandle}}),
		settingsPath+"?done=session_ended")
	if stale.signedIn() {
		t.Fatal("the session ended from the page still works")
	}
	wantRedirect(t, "log out everywhere", b.submit(settingsPath+"/sessions/end-all", url.Values{"csrf": {hiddenValue(body, "csrf")}}),
		"/.portcullis/login")
	if b.signedIn() {
		t.Fatal("logging out everywhere kept this session")
	}
	if resp := b.get(loginHost, settingsPath); resp.StatusCode != http.StatusFound {
		t.Fatalf("the settings page after logging out everywhere: %d", resp.StatusCode)
	}
}
