package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/selfservice"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// person is a customer record of the test directory with the identity
// that proves it.
type person struct {
	id       selfservice.Identity
	customer selfservice.Customer
}

// testDirectory is a directory of customer records in memory.
type testDirectory struct {
	mu     sync.Mutex
	people []person
}

func (d *testDirectory) matches(p person, id selfservice.Identity) bool {
	return strings.EqualFold(strings.TrimSpace(p.id.LastName), strings.TrimSpace(id.LastName)) &&
		p.id.TaxIDLast4 == id.TaxIDLast4 && p.id.DateOfBirth == id.DateOfBirth
}

func (d *testDirectory) Verify(_ context.Context, id selfservice.Identity, number string) (selfservice.Customer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.people {
		if !d.matches(p, id) {
			continue
		}
		for i, a := range p.customer.Accounts {
			if selfservice.NormalAccountNumber(a.Number) == selfservice.NormalAccountNumber(number) {
				c := p.customer
				c.Accounts = append([]selfservice.Account{a}, append(append([]selfservice.Account(nil), c.Accounts[:i]...), c.Accounts[i+1:]...)...)
				return c, nil
			}
		}
	}
	return selfservice.Customer{}, selfservice.ErrNoMatch
}

func (d *testDirectory) Identify(_ context.Context, id selfservice.Identity) (selfservice.Customer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.people {
		if d.matches(p, id) {
			return p.customer, nil
		}
	}
	return selfservice.Customer{}, selfservice.ErrNoMatch
}

func (d *testDirectory) Customer(_ context.Context, customerID string) (selfservice.Customer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.people {
		if p.customer.ID == customerID {
			return p.customer, nil
		}
	}
	return selfservice.Customer{}, selfservice.ErrNoMatch
}

// open adds an account to a customer's record, as the bank's systems do
// when the customer takes a new product.
func (d *testDirectory) open(customerID string, a selfservice.Account) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.people {
		if d.people[i].customer.ID == customerID {
			d.people[i].customer.Accounts = append(d.people[i].customer.Accounts, a)
		}
	}
}

const jointAccount = "SAV-1002-0033"

// newDirectory holds: Rivera and Chen, joint owners of a savings account;
// Rivera also with a car loan and a closed brokerage account; Patel with
// only a car loan paid in full; Okafor, who has a profile already.
func newDirectory() *testDirectory {
	return &testDirectory{people: []person{
		{selfservice.Identity{LastName: "Rivera", TaxIDLast4: "1234", DateOfBirth: "1980-07-04"}, selfservice.Customer{
			ID: "C-100", Accounts: []selfservice.Account{
				{Kind: "account", Number: jointAccount, Product: "savings", Status: "open"},
				{Kind: "vehicle", Number: "1HGCM82633A004352", Product: "carloans", Status: "open"},
				{Kind: "account", Number: "BRK-77", Product: "brokerage", Status: "closed"},
			}}},
		{selfservice.Identity{LastName: "Chen", TaxIDLast4: "5678", DateOfBirth: "1975-01-02"}, selfservice.Customer{
			ID: "C-200", Accounts: []selfservice.Account{
				{Kind: "account", Number: jointAccount, Product: "savings", Status: "open"},
			}}},
		{selfservice.Identity{LastName: "Patel", TaxIDLast4: "4321", DateOfBirth: "1990-12-31"}, selfservice.Customer{
			ID: "C-300", Accounts: []selfservice.Account{
				{Kind: "vehicle", Number: "2T1BURHE0JC123456", Product: "carloans", Status: "paid_in_full"},
			}}},
		{selfservice.Identity{LastName: "Okafor", TaxIDLast4: "1111", DateOfBirth: "1985-05-05"}, selfservice.Customer{
			ID: "C-400", Accounts: []selfservice.Account{
				{Kind: "account", Number: "SAV-4004-0001", Product: "savings", Status: "open"},
			}}},
	}}
}

// withDirectory gives the gateway the customer records of d.
func withDirectory(d selfservice.Directory) option { return func(s *setup) { s.directory = d } }

// Identity forms of the test directory's people.
var (
	rivera = selfservice.IdentityForm{LastName: "Rivera", TaxIDLast4: "1234", DateOfBirth: "07/04/1980", AccountNumber: jointAccount}
	chen   = selfservice.IdentityForm{LastName: "chen ", TaxIDLast4: "5678", DateOfBirth: "01/02/1975", AccountNumber: "sav 1002 0033"}
	patel  = selfservice.IdentityForm{LastName: "Patel", TaxIDLast4: "4321", DateOfBirth: "12/31/1990", AccountNumber: "2T1BURHE0JC123456"}
	okafor = selfservice.IdentityForm{LastName: "Okafor", TaxIDLast4: "1111", DateOfBirth: "05/05/1985", AccountNumber: "SAV-4004-0001"}
	nobody = selfservice.IdentityForm{LastName: "Okafor", TaxIDLast4: "1112", DateOfBirth: "05/05/1985", AccountNumber: "SAV-4004-0001"}
)

const enrolPassword = "correct horse battery staple"

// enrolAnswer is an enrolment call's answer.
type enrolAnswer struct {
	Status         string `json:"status"`
	Reason         string `json:"reason"`
	Message        string `json:"message"`
	Field          string `json:"field"`
	Redirect       string `json:"redirect"`
	User           string `json:"user"`
	ConsentText    string `json:"consent_text"`
	ConsentVersion string `json:"consent_version"`
	Channel        string `json:"channel"`
	To             string `json:"to"`
}

// postRaw posts body as JSON to the API path on the login host and
// returns the response with its raw body.
func (b *browser) postRaw(host, path string, body any) (*http.Response, []byte) {
	b.h.t.Helper()
	raw, _ := json.Marshal(body)
	req := mustReq(b.h.t, http.MethodPost, b.h.url(host, path), strings.NewReader(string(raw)))
	req.Header.Set("Content-Type", "application/json")
	resp := b.do(req)
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return resp, out
}

// enrolStep posts one step of the JSON enrolment.
func (b *browser) enrolStep(step string, body any) (int, enrolAnswer) {
	b.h.t.Helper()
	resp, raw := b.postRaw(loginHost, web.APIPrefix+"enroll/"+step, body)
	var a enrolAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		b.h.t.Fatalf("enroll/%s answer is not JSON: %v: %s", step, err, raw)
	}
	return resp.StatusCode, a
}

// mustStep posts a step that must answer 2xx with status want.
func (b *browser) mustStep(step string, body any, want string) enrolAnswer {
	b.h.t.Helper()
	status, a := b.enrolStep(step, body)
	if status/100 != 2 || a.Status != want {
		b.h.t.Fatalf("enroll/%s: %d %+v, want status %s", step, status, a, want)
	}
	return a
}

func credentials(username string) selfservice.CredentialsForm {
	return selfservice.CredentialsForm{Username: username, Password: enrolPassword, Consent: true,
		ConsentVersion: selfservice.ConsentVersion}
}

// enrolToCode runs the JSON enrolment of f up to the code sent by text to
// bobPhone.
func (b *browser) enrolToCode(f selfservice.IdentityForm, username string) {
	b.h.t.Helper()
	b.mustStep("identify", f, "enrol_credentials")
	b.mustStep("credentials", credentials(username), "enrol_phone")
	b.mustStep("phone", selfservice.PhoneForm{Phone: bobPhone, Method: "sms"}, "code_sent")
}

// enrol runs the whole JSON enrolment of f and returns the new profile.
func (b *browser) enrol(f selfservice.IdentityForm, username string) store.User {
	b.h.t.Helper()
	b.enrolToCode(f, username)
	code, _ := b.h.lastCodeFor("", "enrol")
	a := b.mustStep("verify", map[string]string{"code": code}, "enrolled")
	if a.Redirect != "/.portcullis/login?done=enrolled" || a.User != username {
		b.h.t.Fatalf("verify answer %+v", a)
	}
	u, err := b.h.store.UserByName(b.h.t.Context(), username)
	if err != nil {
		b.h.t.Fatalf("the new profile: %v", err)
	}
	return u
}

func TestEnrolmentCreatesAProfileWithoutSigningIn(t *testing.T) {
	h := newHarness(t, withDirectory(newDirectory()))
	b := h.client(true)
	a := b.mustStep("identify", rivera, "enrol_credentials")
	if a.ConsentVersion != selfservice.ConsentVersion || a.ConsentText != selfservice.ConsentText {
		t.Errorf("identify answer's consent = %q %q", a.ConsentVersion, a.ConsentText)
	}
	b.mustStep("credentials", credentials(" Rivera.M "), "enrol_phone")
	sent := b.mustStep("phone", selfservice.PhoneForm{Phone: bobPhone, Method: "voice"}, "code_sent")
	if sent.Channel != "voice" || sent.To == "" || strings.Contains(sent.To, "5550123") {
		t.Errorf("phone answer %+v, want a masked number and the voice channel", sent)
	}
	code, m := h.lastCodeFor("", "enrol")
	if m.To != bobPhone || m.Channel != "voice" {
		t.Errorf("code went to %s by %s", m.To, m.Channel)
	}
	a = b.mustStep("verify", map[string]string{"code": code}, "enrolled")
	if a.User != "rivera.m" {
		t.Errorf("new username %q, want the canonical rivera.m", a.User)
	}
	u, err := h.store.UserByCustomerID(t.Context(), "C-100")
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "rivera.m" || u.SecurityPhone != bobPhone || strings.Join(u.Products, ",") != "savings,carloans" ||
		u.ConsentVersion != selfservice.ConsentVersion || !u.ConsentAt.Equal(h.clock.Now()) {
		t.Errorf("profile %+v: want username rivera.m, the phone, the open accounts' products and the consent", u)
	}
	if ok, err := h.gw.Hasher().Verify(t.Context(), u.PasswordHash, enrolPassword); err != nil || !ok {
		t.Errorf("the stored hash does not verify the chosen password: %v %v", ok, err)
	}
	// Enrolment never signs in: no session until the person logs in.
	if resp := b.get(loginHost, web.APIPrefix+"devices"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("settings after enrolment: %d, want 401", resp.StatusCode)
	}
	// The enrolment is used up.
	if status, a := b.enrolStep("verify", map[string]string{"code": code}); status != http.StatusUnauthorized || a.Reason != "no_session" {
		t.Errorf("verify again: %d %+v", status, a)
	}
	// The new password signs in (on this unknown device, with a step-up).
	if _, a := b.apiLogin(loginHost, "rivera.m", enrolPassword); a.Status != "step_up_required" {
		t.Errorf("login with the new profile: %+v", a)
	}
	if strings.Contains(h.logs.String(), "1980-07-04") || strings.Contains(h.logs.String(), enrolPassword) ||
		strings.Contains(h.logs.String(), code) || strings.Contains(h.logs.String(), bobPhone) {
		t.Error("the logs hold an identity secret, the password, the code or the full phone number")
	}
}

func TestEnrolmentDateOfBirthFormat(t *testing.T) {
	h := newHarness(t, withDirectory(newDirectory()))
	for _, dob := range []string{"07-04-1980", "07.04.1980", "1980-07-04", "07/04/80", "7/4/1980", "02/30/1980",
		"13/01/1980", "07/04/1980x", "", "07/04/2099"} {
		t.Run(dob, func(t *testing.T) {
			f := rivera
			f.DateOfBirth = dob
			status, a := h.client(true).enrolStep("identify", f)
			if status != http.StatusBadRequest || a.Field != "date_of_birth" || a.Message != selfservice.MsgDateFormat {
				t.Errorf("%d %+v, want 400 on date_of_birth with the format message", status, a)
			}
		})
	}
	t.Run("page", func(t *testing.T) {
		b := h.client(true)
		f := rivera
		f.DateOfBirth = "1980-07-04"
		resp, body := b.identifyForm(f)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for _, want := range []string{
			`<p class="error" id="date_of_birth-error">` + selfservice.MsgDateFormat + `</p>`,
			`aria-describedby="date_of_birth-hint date_of_birth-error"`,
			`value="Rivera"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %s", want)
			}
		}
		if strings.Contains(body, "1980-07-04") || strings.Contains(body, jointAccount) {
			t.Error("the page shows a secret the person typed")
		}
	})
}

// identifyForm submits the identify page's form.
func (b *browser) identifyForm(f selfservice.IdentityForm) (*http.Response, string) {
	b.h.t.Helper()
	page := b.get(loginHost, "/.portcullis/enroll")
	raw, _ := io.ReadAll(page.Body)
	form := url.Values{"csrf": {hiddenValue(string(raw), "csrf")}, "last_name": {f.LastName}, "tax_id_last4": {f.TaxIDLast4},
		"date_of_birth": {f.DateOfBirth}, "account_number": {f.AccountNumber}}
	return b.postForm("/.portcullis/enroll/identify", form)
}

// postForm posts a form to the login host with the page's CSRF cookie.
func (b *browser) postForm(path string, form url.Values) (*http.Response, string) {
	b.h.t.Helper()
	req := mustReq(b.h.t, http.MethodPost, b.h.url(loginHost, path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp := b.do(req)
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// csrfValue matches the CSRF token of a page, which differs per browser.
var csrfValue = regexp.MustCompile(`name="csrf" value="[^"]*"`)

func TestEnrolmentForAnIdentityWithAProfileAnswersAsNoMatch(t *testing.T) {
	dir := newDirectory()
	h := newHarness(t, withDirectory(dir))
	existing := store.User{ID: "id-okafor", Username: "okafor.j", DisplayName: "J Okafor", SecurityPhone: "+12015550124",
		CustomerID: "C-400", CreatedAt: h.clock.Now(), UpdatedAt: h.clock.Now()}
	if err := h.store.CreateUser(t.Context(), existing); err != nil {
		t.Fatal(err)
	}
	hasStatus, hasBody := h.client(true).postRaw(loginHost, web.APIPrefix+"enroll/identify", okafor)
	h.gw.WaitNotices()
	noStatus, noBody := h.client(true).postRaw(loginHost, web.APIPrefix+"enroll/identify", nobody)
	h.gw.WaitNotices()
	if hasStatus.StatusCode != noStatus.StatusCode || string(hasBody) != string(noBody) {
		t.Errorf("has a profile: %d %s\nno match:      %d %s", hasStatus.StatusCode, hasBody, noStatus.StatusCode, noBody)
	}
	var a enrolAnswer
	_ = json.Unmarshal(hasBody, &a)
	if hasStatus.StatusCode != http.StatusForbidden || a.Message != selfservice.MsgNoMatch || strings.Contains(string(hasBody), "okafor.j") {
		t.Errorf("answer %d %s", hasStatus.StatusCode, hasBody)
	}
	if hasStatus.Header.Get("Set-Cookie") != noStatus.Header.Get("Set-Cookie") {
		t.Errorf("cookies differ: %q and %q", hasStatus.Header.Get("Set-Cookie"), noStatus.Header.Get("Set-Cookie"))
	}
	var reminders []string
	for _, m := range h.outbox.messages() {
		if m.To == existing.SecurityPhone {
			reminders = append(reminders, m.Text)
		}
	}
	if len(reminders) != 1 || !strings.Contains(reminders[0], "okafor.j") {
		t.Errorf("messages to the profile's phone: %q, want one with the username", reminders)
	}

	// The pages too, apart from the CSRF token.
	_, hasPage := h.client(true).identifyForm(okafor)
	_, noPage := h.client(true).identifyForm(nobody)
	h.gw.WaitNotices()
	hasPage, noPage = csrfValue.ReplaceAllString(hasPage, ""), csrfValue.ReplaceAllString(noPage, "")
	if hasPage != noPage {
		t.Errorf("pages differ:\n%s\n---\n%s", hasPage, noPage)
	}
	if !strings.Contains(hasPage, html.EscapeString(selfservice.MsgNoMatch)) || strings.Contains(hasPage, "okafor.j") {
		t.Error("page does not say no match, or shows the username")
	}
	if _, err := h.store.UserByName(t.Context(), "okafor.j"); err != nil {
		t.Fatal(err)
	}
}

func TestEnrolmentRefusals(t *testing.T) {
	h := newHarness(t, withDirectory(newDirectory()))
	t.Run("account paid in full", func(t *testing.T) {
		status, a := h.client(true).enrolStep("identify", patel)
		if status != http.StatusForbidden || a.Reason != "account_not_eligible" || a.Message != selfservice.MsgNotEligible ||
			a.Field != "account_number" {
			t.Errorf("%d %+v", status, a)
		}
	})
	t.Run("username and password", func(t *testing.T) {
		b := h.client(true)
		b.mustStep("identify", chen, "enrol_credentials")
		for _, tc := range []struct {
			name   string
			form   selfservice.CredentialsForm
			reason string
			field  string
		}{
			{"taken username", credentials("alice"), "username_taken", "username"},
			{"invalid username", credentials("a b"), "bad_request", "username"},
			{"short password", selfservice.CredentialsForm{Username: "chen.l", Password: "short", Consent: true,
				ConsentVersion: selfservice.ConsentVersion}, "password_too_short", "password"},
			{"password with the username", selfservice.CredentialsForm{Username: "chen.l", Password: "my name is chen.l ok",
				Consent: true, ConsentVersion: selfservice.ConsentVersion}, "password_contains_username", "password"},
			{"no consent", selfservice.CredentialsForm{Username: "chen.l", Password: enrolPassword}, "consent_required", "consent"},
			{"consent to another text", selfservice.CredentialsForm{Username: "chen.l", Password: enrolPassword, Consent: true,
				ConsentVersion: "old"}, "consent_required", "consent"},
		} {
			status, a := b.enrolStep("credentials", tc.form)
			if status/100 != 4 || a.Reason != tc.reason || a.Field != tc.field || a.Message == "" {
				t.Errorf("%s: %d %+v, want %s on %s", tc.name, status, a, tc.reason, tc.field)
			}
		}
		status, a := b.enrolStep("credentials", selfservice.CredentialsForm{Username: "chen.l", Password: "short",
			Consent: true, ConsentVersion: selfservice.ConsentVersion})
		if want := "at least 12 characters"; status != http.StatusForbidden || !strings.Contains(a.Message, want) {
			t.Errorf("short password message %q, want it to say %q", a.Message, want)
		}
	})
	t.Run("VoIP phone", func(t *testing.T) {
		b := h.client(true)
		b.mustStep("identify", chen, "enrol_credentials")
		b.mustStep("credentials", credentials("chen.voip"), "enrol_phone")
		status, a := b.enrolStep("phone", selfservice.PhoneForm{Phone: "+1 600 201 2345", Method: "sms"})
		if status != http.StatusForbidden || a.Reason != "phone_voip" || a.Field != "phone" || !strings.Contains(a.Message, "VoIP") {
			t.Errorf("%d %+v", status, a)
		}
	})
	t.Run("a step out of order", func(t *testing.T) {
		b := h.client(true)
		if status, a := b.enrolStep("credentials", credentials("chen.x")); status != http.StatusUnauthorized || a.Message != selfservice.MsgExpired {
			t.Errorf("credentials without identify: %d %+v", status, a)
		}
		b.mustStep("identify", chen, "enrol_credentials")
		if status, _ := b.enrolStep("phone", selfservice.PhoneForm{Phone: bobPhone, Method: "sms"}); status != http.StatusConflict {
			t.Errorf("phone before credentials: %d", status)
		}
	})
}

func TestEnrolmentCodes(t *testing.T) {
	h := newHarness(t, withDirectory(newDirectory()))
	b := h.client(true)
	b.enrolToCode(chen, "chen.l")
	first, _ := h.lastCodeFor("", "enrol")
	wrong := "000000"
	if wrong == first {
		wrong = "111111"
	}
	if status, a := b.enrolStep("verify", map[string]string{"code": wrong}); status != http.StatusForbidden || a.Reason != "bad_code" || a.Field != "code" {
		t.Errorf("wrong code: %d %+v", status, a)
	}
	if status, a := b.enrolStep("send", map[string]string{"method": "sms"}); status != http.StatusForbidden || a.Reason != "code_resend_too_soon" {
		t.Errorf("immediate resend: %d %+v", status, a)
	}
	h.clock.Add(31 * time.Second)
	b.mustStep("send", map[string]string{"method": "sms"}, "code_sent")
	second, _ := h.lastCodeFor("", "enrol")
	if first != second {
		if status, a := b.enrolStep("verify", map[string]string{"code": first}); status != http.StatusForbidden || a.Reason != "bad_code" {
			t.Errorf("the replaced code: %d %+v", status, a)
		}
	}
	h.clock.Add(21 * time.Minute)
	if status, a := b.enrolStep("verify", map[string]string{"code": second}); status != http.StatusForbidden || a.Reason != "code_expired" {
		t.Errorf("expired code: %d %+v", status, a)
	}
	if _, err := h.store.UserByCustomerID(t.Context(), "C-200"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a profile was created without a good code: %v", err)
	}
	// A new code after the expired one creates the profile.
	h.clock.Add(time.Minute)
	b.mustStep("send", map[string]string{"method": "sms"}, "code_sent")
	third, _ := h.lastCodeFor("", "enrol")
	b.mustStep("verify", map[string]string{"code": third}, "enrolled")
}

func TestJointOwnersEachEnrol(t *testing.T) {
	h := newHarness(t, withDirectory(newDirectory()))
	r := h.client(true).enrol(rivera, "rivera")
	c := h.client(true).enrol(chen, "chen")
	if r.CustomerID != "C-100" || c.CustomerID != "C-200" || r.ID == c.ID {
		t.Errorf("profiles %s (%s) and %s (%s)", r.ID, r.CustomerID, c.ID, c.CustomerID)
	}
	if strings.Join(c.Products, ",") != "savings" {
		t.Errorf("chen's products %v, want savings", c.Products)
	}
	// A second enrolment of the same customer answers as no match.
	if status, a := h.client(true).enrolStep("identify", rivera); status != http.StatusForbidden || a.Message != selfservice.MsgNoMatch {
		t.Errorf("rivera again: %d %+v", status, a)
	}
	h.gw.WaitNotices()
}

func TestEnrolmentIdentityThrottleHoldsUnderConcurrency(t *testing.T) {
	const limit, tries = 3, 10
	opt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["enrolment"].(map[string]any)["max_attempts_per_identity"] = limit
		})
	})
	h := newHarness(t, withDirectory(newDirectory()), opt)
	statuses := make([]int, tries)
	reasons := make([]string, tries)
	var wg sync.WaitGroup
	for i := range tries {
		b := h.client(true)
		wg.Go(func() {
			raw, _ := json.Marshal(rivera)
			req, _ := http.NewRequest(http.MethodPost, h.url(loginHost, web.APIPrefix+"enroll/identify"), strings.NewReader(string(raw)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := b.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var a enrolAnswer
			_ = json.NewDecoder(resp.Body).Decode(&a)
			statuses[i], reasons[i] = resp.StatusCode, a.Reason
		})
	}
	wg.Wait()
	passed, throttled := 0, 0
	for i := range tries {
		switch {
		case statuses[i] == http.StatusOK:
			passed++
		case statuses[i] == http.StatusTooManyRequests && reasons[i] == "enrolment_throttled":
			throttled++
		default:
			t.Errorf("attempt %d: %d %s", i, statuses[i], reasons[i])
		}
	}
	if passed != limit || throttled != tries-limit {
		t.Errorf("%d passed and %d throttled, want %d and %d", passed, throttled, limit, tries-limit)
	}
	// Another identity from the same address is judged on its own count.
	h.client(true).mustStep("identify", chen, "enrol_credentials")
	// The identity's window passes.
	h.clock.Add(time.Hour)
	h.client(true).mustStep("identify", rivera, "enrol_credentials")
}

func TestEnrolmentPages(t *testing.T) {
	h := newHarness(t, withDirectory(newDirectory()))
	b := h.client(true)
	login := b.get(loginHost, "/.portcullis/login")
	raw, _ := io.ReadAll(login.Body)
	if !strings.Contains(string(raw), `<a href="/.portcullis/enroll">Create a profile</a>`) {
		t.Error("the login page does not link to enrolment")
	}
	resp, body := b.identifyForm(rivera)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.portcullis/enroll/credentials" {
		t.Fatalf("identify: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	page := b.get(loginHost, "/.portcullis/enroll/credentials")
	raw, _ = io.ReadAll(page.Body)
	for _, want := range []string{`autocomplete="username"`, `autocomplete="new-password"`, selfservice.ConsentText,
		`<input type="checkbox" name="consent" value="yes">`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("credentials page lacks %s", want)
		}
	}
	csrf := hiddenValue(string(raw), "csrf")
	resp, body = b.postForm("/.portcullis/enroll/credentials", url.Values{"csrf": {csrf}, "username": {"rivera.page"},
		"password": {enrolPassword}, "consent_version": {selfservice.ConsentVersion}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `id="consent-error"`) {
		t.Errorf("credentials without consent: %d", resp.StatusCode)
	}
	resp, _ = b.postForm("/.portcullis/enroll/credentials", url.Values{"csrf": {csrf}, "username": {"rivera.page"},
		"password": {enrolPassword}, "consent": {"yes"}, "consent_version": {selfservice.ConsentVersion}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.portcullis/enroll/phone" {
		t.Fatalf("credentials: %d", resp.StatusCode)
	}
	resp, body = b.postForm("/.portcullis/enroll/phone", url.Values{"csrf": {csrf}, "phone": {"+1 600 201 2345"}, "method": {"sms"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `id="phone-error"`) {
		t.Errorf("VoIP phone page: %d", resp.StatusCode)
	}
	resp, _ = b.postForm("/.portcullis/enroll/phone", url.Values{"csrf": {csrf}, "phone": {bobPhone}, "method": {"sms"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.portcullis/enroll/code" {
		t.Fatalf("phone: %d", resp.StatusCode)
	}
	page = b.get(loginHost, "/.portcullis/enroll/code")
	raw, _ = io.ReadAll(page.Body)
	if !strings.Contains(string(raw), `autocomplete="one-time-code"`) {
		t.Error("code page lacks the one-time-code field")
	}
	code, _ := h.lastCodeFor("", "enrol")
	if resp, _ := b.postForm("/.portcullis/enroll/verify", url.Values{"code": {code}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("verify without the CSRF token: %d", resp.StatusCode)
	}
	wrong := "000000"
	if wrong == code {
		wrong = "111111"
	}
	resp, body = b.postForm("/.portcullis/enroll/verify", url.Values{"csrf": {csrf}, "code": {wrong}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `aria-describedby="code-error"`) {
		t.Errorf("wrong code page: %d", resp.StatusCode)
	}
	h.clock.Add(31 * time.Second)
	resp, body = b.postForm("/.portcullis/enroll/send", url.Values{"csrf": {csrf}, "method": {"voice"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "We&#39;re calling") {
		t.Errorf("resend by call: %d", resp.StatusCode)
	}
	code, _ = h.lastCodeFor("", "enrol")
	resp, _ = b.postForm("/.portcullis/enroll/verify", url.Values{"csrf": {csrf}, "code": {code}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.portcullis/login?done=enrolled" {
		t.Fatalf("verify: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	done := b.get(loginHost, "/.portcullis/login?done=enrolled")
	raw, _ = io.ReadAll(done.Body)
	if !strings.Contains(string(raw), selfservice.MsgEnrolled) {
		t.Error("the login page does not confirm the new profile")
	}
	if _, err := h.store.UserByName(t.Context(), "rivera.page"); err != nil {
		t.Errorf("profile: %v", err)
	}
}

func TestEnrolmentWithoutADirectoryIsNotAvailable(t *testing.T) {
	h := newHarness(t)
	b := h.client(true)
	resp := b.get(loginHost, "/.portcullis/enroll")
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(raw), "isn&#39;t available") {
		t.Errorf("enroll page: %d %s", resp.StatusCode, raw)
	}
	status, a := b.enrolStep("identify", rivera)
	if status != http.StatusNotFound || a.Reason != policies.ReasonNotFound {
		t.Errorf("enroll API: %d %+v", status, a)
	}
}

func TestAddAnAccountReachesItsAppAtOnce(t *testing.T) {
	dir := newDirectory()
	h := newHarness(t, withDirectory(dir))
	b := h.client(true)
	u := b.enrol(chen, "chen")
	h.registerDevice(b, u.ID)
	if _, a := b.apiLogin(autoHost, "chen", enrolPassword); a.Status != "authenticated" {
		t.Fatalf("login: %+v", a)
	}
	if resp := b.get(autoHost, "/loan"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the car-loan app before the vehicle is added: %d", resp.StatusCode)
	}
	dir.open("C-200", selfservice.Account{Kind: "vehicle", Number: "5YJ3E1EA7KF317000", Product: "carloans", Status: "open"})
	dir.open("C-200", selfservice.Account{Kind: "account", Number: "BRK-88", Product: "brokerage", Status: "closed"})
	for _, tc := range []struct {
		number string
		status int
		reason string
	}{
		{"5YJ3E1EA7KF317001", http.StatusForbidden, "identity_not_verified"},
		{"BRK-88", http.StatusForbidden, "account_not_eligible"},
		{jointAccount, http.StatusConflict, "bad_request"},
	} {
		resp, raw := b.postRaw(autoHost, web.APIPrefix+"accounts/add", map[string]string{"account_number": tc.number})
		var a enrolAnswer
		_ = json.Unmarshal(raw, &a)
		if resp.StatusCode != tc.status || a.Reason != tc.reason {
			t.Errorf("add %s: %d %s, want %d %s", tc.number, resp.StatusCode, raw, tc.status, tc.reason)
		}
	}
	resp, raw := b.postRaw(autoHost, web.APIPrefix+"accounts/add", map[string]string{"account_number": "5yj3e1ea7kf317000"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("add the vehicle: %d %s", resp.StatusCode, raw)
	}
	if resp := b.get(autoHost, "/loan"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the car-loan app after the vehicle is added: %d", resp.StatusCode)
	}
	if got := h.auto.last(t).URL.Path; got != "/loan" {
		t.Errorf("the car-loan app received %s", got)
	}
	if got, _ := h.store.UserByID(t.Context(), u.ID); strings.Join(got.Products, ",") != "savings,carloans" {
		t.Errorf("products %v", got.Products)
	}
	if resp, _ := h.client(true).postRaw(autoHost, web.APIPrefix+"accounts/add", map[string]string{"account_number": "x"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("add without a session: %d", resp.StatusCode)
	}
}
