package gateway_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/selfservice"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
)

const (
	riveraUsername = "rivera.m"
	riveraPassword = "garden hose lantern kettle"
	riveraEmail    = "m.rivera@example.com"
	newPassword    = "violet harbour pebble ladder"
)

// Recovery forms of the test directory's people.
var (
	riveraUsernameForm = selfservice.RecoveryForm{LastName: "Rivera", TaxIDLast4: "1234", DateOfBirth: "07/04/1980"}
	nobodyUsernameForm = selfservice.RecoveryForm{LastName: "Rivera", TaxIDLast4: "1235", DateOfBirth: "07/04/1980"}
	riveraPasswordForm = selfservice.RecoveryForm{LastName: "rivera ", Username: riveraUsername, TaxIDLast4: "1234", DateOfBirth: "07/04/1980"}
	nobodyPasswordForm = selfservice.RecoveryForm{LastName: "Rivera", Username: "rivera.nobody", TaxIDLast4: "1234", DateOfBirth: "07/04/1980"}
)

// recoverAnswer is a recovery call's answer.
type recoverAnswer struct {
	Status   string   `json:"status"`
	Reason   string   `json:"reason"`
	Message  string   `json:"message"`
	Field    string   `json:"field"`
	StepUp   []string `json:"step_up"`
	Channel  string   `json:"channel"`
	User     string   `json:"user"`
	Redirect string   `json:"redirect"`
}

// newRecoveryHarness is a gateway with the test directory and a profile
// for Rivera (customer C-100) with a security phone and an email address.
func newRecoveryHarness(t *testing.T, opts ...option) (*harness, store.User) {
	t.Helper()
	h := newHarness(t, append([]option{withDirectory(newDirectory())}, opts...)...)
	hash, err := h.gw.Hasher().Hash(t.Context(), riveraPassword)
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{ID: "id-rivera", Username: riveraUsername, DisplayName: riveraUsername, PasswordHash: hash,
		Products: []string{"savings"}, SecurityPhone: bobPhone, Email: riveraEmail, CustomerID: "C-100",
		CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now()}
	if err := h.store.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return h, u
}

// recoverStep posts one step of a JSON recovery of kind.
func (b *browser) recoverStep(kind, step string, body any) (int, recoverAnswer, []byte) {
	b.h.t.Helper()
	resp, raw := b.postRaw(loginHost, web.APIPrefix+"recover/"+kind+"/"+step, body)
	var a recoverAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		b.h.t.Fatalf("recover/%s/%s answer is not JSON: %v: %s", kind, step, err, raw)
	}
	return resp.StatusCode, a, raw
}

// mustRecover posts a step that must answer 200 with status want.
func (b *browser) mustRecover(kind, step string, body any, want string) recoverAnswer {
	b.h.t.Helper()
	status, a, raw := b.recoverStep(kind, step, body)
	if status != http.StatusOK || a.Status != want {
		b.h.t.Fatalf("recover/%s/%s: %d %s, want status %s", kind, step, status, raw, want)
	}
	return a
}

// recoveryCode is the last recovery code sent for the profile, once the
// background sends are done.
func (h *harness) recoveryCode(userID string) (string, notify.Message) {
	h.t.Helper()
	h.gw.WaitNotices()
	return h.lastCodeFor(userID, notify.PurposeRecover)
}

// notices are the texts of the notices sent about the profile.
func (h *harness) notices(userID string) []string {
	h.gw.WaitNotices()
	var out []string
	for _, m := range h.outbox.messages() {
		if m.UserID == userID && m.Purpose == notify.PurposeNotice {
			out = append(out, m.Text)
		}
	}
	return out
}

// noticeSent reports whether the notice of event went to the profile, once
// the background sends are done.
func (h *harness) noticeSent(userID, event string) bool {
	h.gw.WaitNotices()
	return hasNotice(h, userID, event)
}

func otherCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

func TestForgotUsernameByCode(t *testing.T) {
	h, rivera := newRecoveryHarness(t)
	b := h.client(true)
	a := b.mustRecover("username", "identify", riveraUsernameForm, "choose_method")
	if !slices.Equal(a.StepUp, []string{"sms", "voice", "email"}) {
		t.Errorf("methods %v, want the policy's sms,voice,email", a.StepUp)
	}
	sent := b.mustRecover("username", "send", map[string]string{"method": "sms"}, "code_sent")
	if sent.Channel != "sms" || strings.Contains(sent.Message, "0123") {
		t.Errorf("code sent: %+v", sent)
	}
	code, m := h.recoveryCode(rivera.ID)
	if m.Channel != notify.SMS || m.To != bobPhone {
		t.Errorf("code went %s to %s", m.Channel, m.To)
	}
	status, wrong, _ := b.recoverStep("username", "verify", map[string]string{"code": otherCode(code)})
	if status != http.StatusForbidden || wrong.Reason != "bad_code" || wrong.Field != "code" || wrong.User != "" {
		t.Errorf("wrong code: %d %+v", status, wrong)
	}
	done := b.mustRecover("username", "verify", map[string]string{"code": code}, "username_recovered")
	if done.User != riveraUsername || done.Redirect != "/.portcullis/login" {
		t.Errorf("recovered: %+v", done)
	}
	if !h.noticeSent(rivera.ID, "username_recovered") {
		t.Errorf("no username_recovered notice: %q", h.notices(rivera.ID))
	}
	// The code was used up, and the recovery with it.
	if status, again, _ := b.recoverStep("username", "verify", map[string]string{"code": code}); status != http.StatusUnauthorized || again.User != "" {
		t.Errorf("the code again: %d %+v", status, again)
	}
	if logs := h.logs.String(); strings.Contains(logs, code) || strings.Contains(logs, bobPhone) || strings.Contains(logs, "1234") ||
		strings.Contains(logs, "1980-07-04") {
		t.Error("the logs hold a code, the phone number or an identity secret")
	}
	// Nobody was signed in.
	if resp := b.get(bankHost, "/"); resp.StatusCode == http.StatusOK {
		t.Errorf("a recovered username opened the app: %d", resp.StatusCode)
	}
}

func TestForgotUsernameByEmail(t *testing.T) {
	h, rivera := newRecoveryHarness(t)
	b := h.client(true)
	b.mustRecover("username", "identify", riveraUsernameForm, "choose_method")
	a := b.mustRecover("username", "send", map[string]string{"method": "email"}, "username_sent")
	if strings.Contains(a.Message, riveraUsername) {
		t.Errorf("the answer shows the username: %+v", a)
	}
	h.gw.WaitNotices()
	var mails []notify.Message
	for _, m := range h.outbox.messages() {
		if m.Channel == notify.Email && m.To == riveraEmail && m.Purpose == notify.PurposeRecover {
			mails = append(mails, m)
		}
	}
	if len(mails) != 1 || !strings.Contains(mails[0].Text, riveraUsername) || mails[0].UserID != rivera.ID {
		t.Fatalf("username emails: %+v", mails)
	}
	if regexp.MustCompile(`https?://|\d{6}`).MatchString(mails[0].Text) {
		t.Errorf("the email carries a link or a code: %q", mails[0].Text)
	}
	if !h.noticeSent(rivera.ID, "username_recovered") {
		t.Error("no username_recovered notice")
	}
	// The recovery is over.
	if status, _, _ := b.recoverStep("username", "send", map[string]string{"method": "sms"}); status != http.StatusUnauthorized {
		t.Errorf("a send after the email: %d", status)
	}
}

func TestForgotPasswordUnlocksEndsSessionsAndDoesNotSignIn(t *testing.T) {
	h, rivera := newRecoveryHarness(t)
	// A session opened before the recovery.
	old := h.client(true)
	h.registerDevice(old, rivera.ID)
	if resp, a := old.apiLogin(bankHost, riveraUsername, riveraPassword); resp.StatusCode != http.StatusOK || a.Status != "authenticated" {
		t.Fatalf("login before the recovery: %d %+v", resp.StatusCode, a)
	}
	if resp := old.get(bankHost, "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the app before the recovery: %d", resp.StatusCode)
	}
	// Five wrong passwords lock the profile.
	for i := range 5 {
		h.client(true).apiLogin(bankHost, riveraUsername, fmt.Sprintf("wrong password %d", i))
	}
	if u, _ := h.store.UserByID(t.Context(), rivera.ID); !u.Locked {
		t.Fatal("five wrong passwords did not lock the profile")
	}
	if resp, a := h.client(true).apiLogin(bankHost, riveraUsername, riveraPassword); resp.StatusCode == http.StatusOK {
		t.Fatalf("a locked profile signed in: %+v", a)
	}

	b := h.client(true)
	page := b.get(loginHost, "/.portcullis/recover/password")
	raw, _ := io.ReadAll(page.Body)
	for _, want := range []string{`name="last_name"`, `name="username"`, `name="tax_id_last4"`, `name="date_of_birth"`,
		`<button type="submit">Continue</button>`, `<label for="username">`} {
		if page.StatusCode != http.StatusOK || !strings.Contains(string(raw), want) {
			t.Errorf("identify page (%d) lacks %s", page.StatusCode, want)
		}
	}
	csrf := hiddenValue(string(raw), "csrf")
	form := url.Values{"csrf": {csrf}, "last_name": {"Rivera"}, "username": {"Rivera.M"}, "tax_id_last4": {"1234"}, "date_of_birth": {"07/04/1980"}}
	if resp, body := b.postForm("/.portcullis/recover/password", form); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/.portcullis/recover/password/method" {
		t.Fatalf("identify: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	method := b.get(loginHost, "/.portcullis/recover/password/method")
	raw, _ = io.ReadAll(method.Body)
	if !strings.Contains(string(raw), `<button type="submit" name="method" value="sms">`) ||
		!strings.Contains(string(raw), `<button type="submit" name="method" value="voice">`) ||
		strings.Contains(string(raw), `value="email"`) {
		t.Errorf("method page: %s", raw)
	}
	if resp, _ := b.postForm("/.portcullis/recover/password/send", url.Values{"csrf": {csrf}, "method": {"email"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a password code by email: %d", resp.StatusCode)
	}
	if resp, _ := b.postForm("/.portcullis/recover/password/send", url.Values{"csrf": {csrf}, "method": {"sms"}}); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/.portcullis/recover/password/code" {
		t.Fatalf("send: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	codePage := b.get(loginHost, "/.portcullis/recover/password/code")
	raw, _ = io.ReadAll(codePage.Body)
	for _, want := range []string{`autocomplete="one-time-code"`, `<button type="submit">Verify</button>`,
		`<button type="submit" name="method" value="sms">`, `<label for="code">`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("code page lacks %s", want)
		}
	}
	code, _ := h.recoveryCode(rivera.ID)
	resp, body := b.postForm("/.portcullis/recover/password/verify", url.Values{"csrf": {csrf}, "code": {otherCode(code)}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `aria-describedby="code-hint code-error"`) {
		t.Errorf("wrong code page: %d", resp.StatusCode)
	}
	if resp, _ := b.postForm("/.portcullis/recover/password/verify", url.Values{"csrf": {csrf}, "code": {code}}); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/.portcullis/recover/password/new" {
		t.Fatalf("verify: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	newPage := b.get(loginHost, "/.portcullis/recover/password/new")
	raw, _ = io.ReadAll(newPage.Body)
	for _, want := range []string{`name="new_password" type="password" autocomplete="new-password"`, `name="confirm_password"`,
		`<button type="submit">Change password</button>`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("new password page lacks %s", want)
		}
	}
	resp, body = b.postForm("/.portcullis/recover/password/new", url.Values{"csrf": {csrf}, "new_password": {newPassword}, "confirm_password": {newPassword + "x"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="confirm_password-error"`) {
		t.Errorf("passwords that differ: %d", resp.StatusCode)
	}
	resp, body = b.postForm("/.portcullis/recover/password/new", url.Values{"csrf": {csrf}, "new_password": {"short"}, "confirm_password": {"short"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `aria-describedby="new_password-hint new_password-error"`) ||
		!strings.Contains(body, "at least 12 characters") {
		t.Errorf("a short password: %d", resp.StatusCode)
	}
	resp, body = b.postForm("/.portcullis/recover/password/new", url.Values{"csrf": {csrf}, "new_password": {"rivera.m rivera.m"}, "confirm_password": {"rivera.m rivera.m"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, html.EscapeString("must not contain your username")) {
		t.Errorf("a password with the username: %d", resp.StatusCode)
	}
	resp, _ = b.postForm("/.portcullis/recover/password/new", url.Values{"csrf": {csrf}, "new_password": {newPassword}, "confirm_password": {newPassword}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.portcullis/login?done=password_reset" {
		t.Fatalf("new password: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == session.Cookie && c.Value != "" {
			t.Error("the recovery signed the person in")
		}
	}
	done := b.get(loginHost, "/.portcullis/login?done=password_reset")
	raw, _ = io.ReadAll(done.Body)
	if !strings.Contains(string(raw), html.EscapeString(selfservice.MsgPasswordReset)) {
		t.Error("the sign-in page does not say the password was changed")
	}

	u, err := h.store.UserByID(t.Context(), rivera.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.Locked || u.FailedLogins != 0 || u.StepUpFailures != 0 {
		t.Errorf("after the recovery: locked %v, %d failures, %d step-up failures", u.Locked, u.FailedLogins, u.StepUpFailures)
	}
	if ok, err := h.gw.Hasher().Verify(t.Context(), u.PasswordHash, newPassword); err != nil || !ok {
		t.Errorf("the new password does not verify: %v %v", ok, err)
	}
	texts := h.notices(rivera.ID)
	if !h.noticeSent(rivera.ID, "password_changed") || !h.noticeSent(rivera.ID, "account_unlocked") {
		t.Errorf("notices %q, want password_changed and account_unlocked", texts)
	}
	if resp := old.get(bankHost, "/"); resp.StatusCode == http.StatusOK {
		t.Errorf("the session opened before the recovery still works: %d", resp.StatusCode)
	}
	if resp := b.get(bankHost, "/"); resp.StatusCode == http.StatusOK {
		t.Errorf("the recovering browser reached the app: %d", resp.StatusCode)
	}
	// The recovery is used up; the old password is gone, the new one signs in.
	if resp, _ := b.postForm("/.portcullis/recover/password/new", url.Values{"csrf": {csrf}, "new_password": {newPassword}, "confirm_password": {newPassword}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the recovery again: %d", resp.StatusCode)
	}
	if resp, _ := old.apiLogin(bankHost, riveraUsername, riveraPassword); resp.StatusCode == http.StatusOK {
		t.Error("the old password still signs in")
	}
	if resp, a := old.apiLogin(bankHost, riveraUsername, newPassword); resp.StatusCode != http.StatusOK || a.Status != "authenticated" {
		t.Errorf("the new password: %d %+v", resp.StatusCode, a)
	}
	if logs := h.logs.String(); strings.Contains(logs, newPassword) || strings.Contains(logs, code) {
		t.Error("the logs hold the new password or the code")
	}
}

func TestForgotPasswordThroughTheAPI(t *testing.T) {
	h, rivera := newRecoveryHarness(t)
	b := h.client(true)
	a := b.mustRecover("password", "identify", riveraPasswordForm, "choose_method")
	if !slices.Equal(a.StepUp, []string{"sms", "voice"}) {
		t.Errorf("methods %v", a.StepUp)
	}
	if status, r, _ := b.recoverStep("password", "complete", selfservice.PasswordForm{NewPassword: newPassword, ConfirmPassword: newPassword}); status != http.StatusConflict {
		t.Errorf("complete before the code: %d %+v", status, r)
	}
	b.mustRecover("password", "send", map[string]string{"method": "voice"}, "code_sent")
	code, m := h.recoveryCode(rivera.ID)
	if m.Channel != notify.Voice {
		t.Errorf("code went by %s", m.Channel)
	}
	b.mustRecover("password", "verify", map[string]string{"code": code}, "choose_password")
	if status, r, _ := b.recoverStep("password", "verify", map[string]string{"code": code}); status != http.StatusConflict {
		t.Errorf("the code again: %d %+v", status, r)
	}
	status, r, _ := b.recoverStep("password", "complete", selfservice.PasswordForm{NewPassword: "my rivera.m password", ConfirmPassword: "my rivera.m password"})
	if status != http.StatusForbidden || r.Field != "new_password" || !strings.HasPrefix(r.Reason, "password_") {
		t.Errorf("a weak password: %d %+v", status, r)
	}
	done := b.mustRecover("password", "complete", selfservice.PasswordForm{NewPassword: newPassword, ConfirmPassword: newPassword}, "password_reset")
	if done.Redirect != "/.portcullis/login?done=password_reset" {
		t.Errorf("redirect %q", done.Redirect)
	}
	texts := h.notices(rivera.ID)
	if !h.noticeSent(rivera.ID, "password_changed") || h.noticeSent(rivera.ID, "account_unlocked") {
		t.Errorf("notices of an unlocked profile: %q", texts)
	}
	if resp, a := h.client(true).apiLogin(bankHost, riveraUsername, newPassword); resp.StatusCode == http.StatusUnauthorized {
		t.Errorf("the new password is refused: %+v", a)
	}
}

// stripVolatile removes what differs between any two browsers: the CSRF
// token.
func stripVolatile(body string) string { return csrfValue.ReplaceAllString(body, "") }

// recoveryTrace runs a whole recovery of kind for form from a fresh
// browser, through the API or the pages, and returns every answer's
// status, location and body; the code typed is wrong.
func recoveryTrace(h *harness, kind string, form selfservice.RecoveryForm, pages bool) []string {
	h.t.Helper()
	b := h.client(true)
	var trace []string
	record := func(resp *http.Response, body string) {
		trace = append(trace, fmt.Sprintf("%d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), stripVolatile(body)))
	}
	if !pages {
		for _, step := range []struct {
			name string
			body any
		}{{"identify", form}, {"send", map[string]string{"method": "sms"}}, {"send", map[string]string{"method": "voice"}},
			{"verify", map[string]string{"code": "000000"}}, {"verify", map[string]string{"code": "999999"}}} {
			resp, raw := b.postRaw(loginHost, web.APIPrefix+"recover/"+kind+"/"+step.name, step.body)
			record(resp, string(raw))
			h.gw.WaitNotices()
		}
		return trace
	}
	page := b.get(loginHost, "/.portcullis/recover/"+kind)
	raw, _ := io.ReadAll(page.Body)
	record(page, string(raw))
	csrf := hiddenValue(string(raw), "csrf")
	values := url.Values{"csrf": {csrf}, "last_name": {form.LastName}, "username": {form.Username},
		"tax_id_last4": {form.TaxIDLast4}, "date_of_birth": {form.DateOfBirth}}
	get := func(path string) {
		resp := b.get(loginHost, path)
		raw, _ := io.ReadAll(resp.Body)
		record(resp, string(raw))
	}
	post := func(path string, v url.Values) {
		resp, body := b.postForm(path, v)
		record(resp, body)
		h.gw.WaitNotices()
	}
	base := "/.portcullis/recover/" + kind
	post(base, values)
	get(base + "/method")
	post(base+"/send", url.Values{"csrf": {csrf}, "method": {"sms"}})
	get(base + "/code")
	post(base+"/send", url.Values{"csrf": {csrf}, "method": {"voice"}})
	get(base + "/code")
	post(base+"/verify", url.Values{"csrf": {csrf}, "code": {"000000"}})
	post(base+"/verify", url.Values{"csrf": {csrf}, "code": {"999999"}})
	return trace
}

func TestRecoveryAnswersAlikeWhateverTheDetailsMatch(t *testing.T) {
	h, rivera := newRecoveryHarness(t)
	// A profile whose security phone is a VoIP number: nothing can reach it.
	voip := store.User{ID: "id-chen", Username: "chen.l", DisplayName: "chen.l", SecurityPhone: "+16002012345",
		CustomerID: "C-200", CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now()}
	if err := h.store.CreateUser(t.Context(), voip); err != nil {
		t.Fatal(err)
	}
	chenPassword := selfservice.RecoveryForm{LastName: "Chen", Username: "chen.l", TaxIDLast4: "5678", DateOfBirth: "01/02/1975"}
	wrongIdentity := riveraPasswordForm
	wrongIdentity.TaxIDLast4 = "9999"
	for _, tc := range []struct {
		name          string
		kind          string
		match, others []selfservice.RecoveryForm
	}{
		{"username", "username", []selfservice.RecoveryForm{riveraUsernameForm},
			[]selfservice.RecoveryForm{nobodyUsernameForm, {LastName: "Chen", TaxIDLast4: "5678", DateOfBirth: "01/02/1975"}}},
		{"password", "password", []selfservice.RecoveryForm{riveraPasswordForm},
			[]selfservice.RecoveryForm{nobodyPasswordForm, wrongIdentity, chenPassword}},
	} {
		for _, pages := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s pages=%v", tc.name, pages), func(t *testing.T) {
				h.clock.Add(2 * time.Hour) // a fresh window for every counter
				want := recoveryTrace(h, tc.kind, tc.match[0], pages)
				for _, f := range tc.others {
					h.clock.Add(2 * time.Hour)
					got := recoveryTrace(h, tc.kind, f, pages)
					if len(got) != len(want) {
						t.Fatalf("%d answers, want %d", len(got), len(want))
					}
					for i := range want {
						if got[i] != want[i] {
							t.Errorf("%+v, answer %d differs from a match's:\n%s\n--- match:\n%s", f, i, got[i], want[i])
						}
					}
				}
				// The match did get codes, and no one else did.
				h.gw.WaitNotices()
				for _, m := range h.outbox.messages() {
					if m.Purpose == notify.PurposeRecover && m.UserID != rivera.ID {
						t.Errorf("a recovery message to %q", m.UserID)
					}
				}
			})
		}
	}
	if _, m := h.recoveryCode(rivera.ID); m.To != bobPhone {
		t.Errorf("the match's code went to %s", m.To)
	}
}

// tryRecover posts one step of a JSON recovery without failing the test,
// for steps posted from several goroutines.
func tryRecover(b *browser, kind, step string, body any) (int, recoverAnswer, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, recoverAnswer{}, err
	}
	req, err := http.NewRequest(http.MethodPost, b.h.url(loginHost, web.APIPrefix+"recover/"+kind+"/"+step), strings.NewReader(string(raw)))
	if err != nil {
		return 0, recoverAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.Do(req)
	if err != nil {
		return 0, recoverAnswer{}, err
	}
	defer resp.Body.Close()
	var a recoverAnswer
	return resp.StatusCode, a, json.NewDecoder(resp.Body).Decode(&a)
}

// identifyAll posts n identify steps of kind at once, form(i) for the
// i-th, each from a browser of its own, and returns how many passed and
// how many were throttled.
func identifyAll(t *testing.T, h *harness, kind string, n int, form func(i int) selfservice.RecoveryForm) (passed, throttled int) {
	t.Helper()
	type answer struct {
		status int
		recoverAnswer
		err error
	}
	answers := make(chan answer, n)
	for i := range n {
		b := h.client(true)
		go func() {
			var a answer
			a.status, a.recoverAnswer, a.err = tryRecover(b, kind, "identify", form(i))
			answers <- a
		}()
	}
	for i := range n {
		a := <-answers
		if a.status == http.StatusOK && a.err == nil {
			passed++
		} else if a.status == http.StatusTooManyRequests && a.Reason == "recovery_throttled" {
			throttled++
		} else {
			t.Errorf("attempt %d: %d %+v %v", i, a.status, a.recoverAnswer, a.err)
		}
	}
	return passed, throttled
}

func TestRecoveryAccountThrottleHoldsUnderConcurrency(t *testing.T) {
	const limit, tries = 5, 12
	h, _ := newRecoveryHarness(t)
	passed, throttled := identifyAll(t, h, "password", tries, func(int) selfservice.RecoveryForm { return riveraPasswordForm })
	if passed != limit || throttled != tries-limit {
		t.Errorf("%d passed and %d throttled, want %d and %d", passed, throttled, limit, tries-limit)
	}
	// An unknown username is counted as its own account, and throttled
	// alike (in a new window: the address counts every recovery).
	h.clock.Add(time.Hour)
	passed, throttled = identifyAll(t, h, "password", tries, func(int) selfservice.RecoveryForm { return nobodyPasswordForm })
	if passed != limit || throttled != tries-limit {
		t.Errorf("unknown username: %d passed and %d throttled, want %d and %d", passed, throttled, limit, tries-limit)
	}
	// The identity of a forgotten username is an account of its own.
	h.clock.Add(time.Hour)
	passed, throttled = identifyAll(t, h, "username", tries, func(int) selfservice.RecoveryForm { return riveraUsernameForm })
	if passed != limit || throttled != tries-limit {
		t.Errorf("username: %d passed and %d throttled, want %d and %d", passed, throttled, limit, tries-limit)
	}
	h.clock.Add(time.Hour)
	h.client(true).mustRecover("password", "identify", riveraPasswordForm, "choose_method")
}

func TestRecoveryAddressThrottleHoldsUnderConcurrency(t *testing.T) {
	const limit, tries = 5, 12
	opt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["recovery"].(map[string]any)["max_attempts_per_address"] = limit
		})
	})
	h, _ := newRecoveryHarness(t, opt)
	passed, throttled := identifyAll(t, h, "password", tries, func(i int) selfservice.RecoveryForm {
		f := nobodyPasswordForm
		f.Username = fmt.Sprintf("someone.%d", i)
		return f
	})
	if passed != limit || throttled != tries-limit {
		t.Errorf("%d passed and %d throttled, want %d and %d", passed, throttled, limit, tries-limit)
	}
	// Another address is judged on its own count.
	h.clientFrom("127.0.0.9", true).mustRecover("password", "identify", riveraPasswordForm, "choose_method")
}

// recoveryWithCode begins a JSON recovery of kind for form from a fresh
// browser, in a fresh window of the counters, and asks for a code by
// method; it returns the browser and the code sent to the profile.
func (h *harness) recoveryWithCode(kind string, form selfservice.RecoveryForm, method, userID string) (*browser, string) {
	h.t.Helper()
	h.clock.Add(2 * time.Hour)
	b := h.client(true)
	b.mustRecover(kind, "identify", form, "choose_method")
	b.mustRecover(kind, "send", map[string]string{"method": method}, "code_sent")
	code, _ := h.recoveryCode(userID)
	return b, code
}

func TestRecoveryCodes(t *testing.T) {
	h, rivera := newRecoveryHarness(t)
	t.Run("a resend replaces the code", func(t *testing.T) {
		b, first := h.recoveryWithCode("password", riveraPasswordForm, "sms", rivera.ID)
		h.clock.Add(31 * time.Second)
		b.mustRecover("password", "send", map[string]string{"method": "sms"}, "code_sent")
		second, _ := h.recoveryCode(rivera.ID)
		if first != second {
			if status, a, _ := b.recoverStep("password", "verify", map[string]string{"code": first}); status != http.StatusForbidden || a.Reason != "bad_code" {
				t.Errorf("the replaced code: %d %+v", status, a)
			}
		}
		b.mustRecover("password", "verify", map[string]string{"code": second}, "choose_password")
	})
	t.Run("a resend too soon keeps the code", func(t *testing.T) {
		b, first := h.recoveryWithCode("password", riveraPasswordForm, "sms", rivera.ID)
		sends := len(h.outbox.messages())
		// Answered as any send, though the policy refused it.
		b.mustRecover("password", "send", map[string]string{"method": "sms"}, "code_sent")
		h.gw.WaitNotices()
		if n := len(h.outbox.messages()); n != sends {
			t.Errorf("%d messages sent for a resend too soon", n-sends)
		}
		b.mustRecover("password", "verify", map[string]string{"code": first}, "choose_password")
	})
	t.Run("an expired code", func(t *testing.T) {
		b, code := h.recoveryWithCode("username", riveraUsernameForm, "sms", rivera.ID)
		h.clock.Add(21 * time.Minute)
		status, a, _ := b.recoverStep("username", "verify", map[string]string{"code": code})
		if status != http.StatusForbidden || a.Reason != "code_expired" || a.Field != "code" || a.User != "" {
			t.Errorf("an expired code: %d %+v", status, a)
		}
	})
	t.Run("the tries run out", func(t *testing.T) {
		b, code := h.recoveryWithCode("username", riveraUsernameForm, "sms", rivera.ID)
		for range 5 {
			b.recoverStep("username", "verify", map[string]string{"code": otherCode(code)})
		}
		if status, a, _ := b.recoverStep("username", "verify", map[string]string{"code": code}); status != http.StatusForbidden || a.User != "" ||
			a.Reason == "bad_code" {
			t.Errorf("the right code after five wrong ones: %d %+v", status, a)
		}
	})
	t.Run("a code of another recovery", func(t *testing.T) {
		a, b := h.client(true), h.client(true)
		h.clock.Add(2 * time.Hour)
		a.mustRecover("username", "identify", riveraUsernameForm, "choose_method")
		b.mustRecover("username", "identify", riveraUsernameForm, "choose_method")
		a.mustRecover("username", "send", map[string]string{"method": "sms"}, "code_sent")
		code, _ := h.recoveryCode(rivera.ID)
		b.mustRecover("username", "send", map[string]string{"method": "voice"}, "code_sent")
		if status, r, _ := b.recoverStep("username", "verify", map[string]string{"code": code}); status != http.StatusForbidden || r.User != "" {
			if other, _ := h.recoveryCode(rivera.ID); other != code {
				t.Errorf("a code of another browser's recovery: %d %+v", status, r)
			}
		}
	})
	t.Run("bad input", func(t *testing.T) {
		b := h.client(true)
		h.clock.Add(2 * time.Hour)
		status, a, _ := b.recoverStep("username", "identify", selfservice.RecoveryForm{LastName: "Rivera", TaxIDLast4: "1234", DateOfBirth: "1980-07-04"})
		if status != http.StatusBadRequest || a.Field != "date_of_birth" || a.Message != selfservice.MsgDateFormat {
			t.Errorf("a date of birth in another form: %d %+v", status, a)
		}
		status, a, _ = b.recoverStep("password", "identify", selfservice.RecoveryForm{LastName: "Rivera", Username: "a b", TaxIDLast4: "1234", DateOfBirth: "07/04/1980"})
		if status != http.StatusBadRequest || a.Field != "username" {
			t.Errorf("an invalid username: %d %+v", status, a)
		}
		b.mustRecover("username", "identify", riveraUsernameForm, "choose_method")
		if status, a, _ := b.recoverStep("username", "send", map[string]string{"method": "pigeon"}); status != http.StatusBadRequest || a.Field != "method" {
			t.Errorf("an unknown method: %d %+v", status, a)
		}
	})
}

func TestRecoveryPagesAndLinks(t *testing.T) {
	h, rivera := newRecoveryHarness(t)
	b := h.client(true)
	login := b.get(loginHost, "/.portcullis/login")
	raw, _ := io.ReadAll(login.Body)
	for _, want := range []string{`<a href="/.portcullis/recover/username">Forgot username?</a>`,
		`<a href="/.portcullis/recover/password">Forgot password?</a>`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the login page lacks %s", want)
		}
	}
	page := b.get(loginHost, "/.portcullis/recover/username")
	raw, _ = io.ReadAll(page.Body)
	body := string(raw)
	for _, want := range []string{`<label for="last_name">`, `<label for="tax_id_last4">`, `<label for="date_of_birth">`,
		`placeholder="mm/dd/yyyy"`, `<button type="submit">Continue</button>`} {
		if !strings.Contains(body, want) {
			t.Errorf("identify page lacks %s", want)
		}
	}
	if strings.Contains(body, `name="username"`) || strings.Contains(body, "<script") {
		t.Error("the username identify page asks for a username or runs a script")
	}
	csrf := hiddenValue(body, "csrf")
	resp, body := b.postForm("/.portcullis/recover/username", url.Values{"csrf": {csrf}, "last_name": {"Rivera"}, "tax_id_last4": {"1234"}, "date_of_birth": {"7/4/1980"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `aria-describedby="date_of_birth-hint date_of_birth-error"`) ||
		!strings.Contains(body, `value="Rivera"`) || strings.Contains(body, "1234") {
		t.Errorf("a date of birth typed wrong: %d", resp.StatusCode)
	}
	if resp, _ := b.postForm("/.portcullis/recover/username", url.Values{"last_name": {"Rivera"}, "tax_id_last4": {"1234"}, "date_of_birth": {"07/04/1980"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("identify without the CSRF token: %d", resp.StatusCode)
	}
	if resp := b.get(loginHost, "/.portcullis/recover/username/code"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.portcullis/recover/username" {
		t.Errorf("the code page without a recovery: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	b.postForm("/.portcullis/recover/username", url.Values{"csrf": {csrf}, "last_name": {"Rivera"}, "tax_id_last4": {"1234"}, "date_of_birth": {"07/04/1980"}})
	method := b.get(loginHost, "/.portcullis/recover/username/method")
	raw, _ = io.ReadAll(method.Body)
	for _, v := range []string{"sms", "voice", "email"} {
		if !strings.Contains(string(raw), `<button type="submit" name="method" value="`+v+`">`) {
			t.Errorf("method page lacks %s", v)
		}
	}
	b.postForm("/.portcullis/recover/username/send", url.Values{"csrf": {csrf}, "method": {"sms"}})
	code, _ := h.recoveryCode(rivera.ID)
	resp, body = b.postForm("/.portcullis/recover/username/verify", url.Values{"csrf": {csrf}, "code": {code}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<p class="notice" id="recovered-username">`+riveraUsername+`</p>`) ||
		!strings.Contains(body, `<a href="/.portcullis/login">Sign in</a>`) {
		t.Errorf("username page: %d %s", resp.StatusCode, body)
	}

	// Forgot username by email, through the pages.
	b = h.client(true)
	h.clock.Add(2 * time.Hour)
	page = b.get(loginHost, "/.portcullis/recover/username")
	raw, _ = io.ReadAll(page.Body)
	csrf = hiddenValue(string(raw), "csrf")
	b.postForm("/.portcullis/recover/username", url.Values{"csrf": {csrf}, "last_name": {"Rivera"}, "tax_id_last4": {"1234"}, "date_of_birth": {"07/04/1980"}})
	resp, body = b.postForm("/.portcullis/recover/username/send", url.Values{"csrf": {csrf}, "method": {"email"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, html.EscapeString("we've emailed its username")) || strings.Contains(body, riveraUsername) {
		t.Errorf("username by email page: %d %s", resp.StatusCode, body)
	}

	// The locked message points to Forgot password, on a page that links it.
	for i := range 6 {
		b.formLogin(h.url(loginHost, "/.portcullis/login"), riveraUsername, fmt.Sprintf("wrong %d", i))
	}
	resp = b.formLogin(h.url(loginHost, "/.portcullis/login"), riveraUsername, riveraPassword)
	raw, _ = io.ReadAll(resp.Body)
	if !strings.Contains(string(raw), "locked") || !strings.Contains(string(raw), "Forgot password?") ||
		!strings.Contains(string(raw), `<a href="/.portcullis/recover/password">`) {
		t.Errorf("the locked page: %d %s", resp.StatusCode, raw)
	}
}

func TestRecoveryWithoutADirectoryIsNotAvailable(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	for _, path := range []string{"/.portcullis/recover/username", "/.portcullis/recover/password", "/.portcullis/recover/password/new"} {
		resp := b.get(loginHost, path)
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(raw), "isn&#39;t available") || !strings.Contains(string(raw), "1-800-555-0100") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, raw)
		}
	}
	status, a, _ := b.recoverStep("password", "identify", riveraPasswordForm)
	if status != http.StatusNotFound || a.Reason != "not_found" {
		t.Errorf("API: %d %+v", status, a)
	}
}
