package selfservice

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// Creating a profile ("enrolment") takes four steps, each asked of the
// policies' enrol point (or, for the code, of send_code and verify_code as
// the step-up does):
//
//  1. identify: last name, last 4 of the SSN or TIN, date of birth and an
//     account number, VIN or card number, checked by the Directory. An
//     identity that matches nothing and one that already has a profile get
//     the same answer; in the second case the existing username goes to
//     the profile's security phone, never to the page.
//  2. credentials: a username, a password and consent to electronic
//     delivery.
//  3. phone: the security phone, and a code sent to it by text or call.
//  4. verify: the code; then the profile is created, and the person signs
//     in as anyone does. Enrolment never signs anyone in.
//
// What was proved so far is kept in the store as a single-use record with
// an expiry, found by the SHA-256 of a random token in a __Host- cookie, so
// it is bound to the browser that proved it and never sent to the page.

const (
	// KindEnrolment is the kind of the records that keep an enrolment
	// between its steps.
	KindEnrolment = "enrol"
	// KindEnrolmentCode is the kind of the records behind enrolment codes.
	KindEnrolmentCode = "enrol_code"
	// Cookie carries the token of the browser's enrolment.
	Cookie = "__Host-portcullis-enrol"
	// Lifetime bounds an enrolment from the identity proof to the code.
	Lifetime = 30 * time.Minute

	// ConsentVersion names the consent text below; a profile records the
	// version its customer agreed to.
	ConsentVersion = "edelivery-2026-01"
	// ConsentText is what the person agrees to by ticking the box.
	ConsentText = "I agree to receive statements, notices and other documents about my accounts electronically, " +
		"instead of on paper, and I can withdraw this consent at any time."

	purposeEnrol = "enrol"
)

// Stages of an enrolment, as its record keeps them.
const (
	stageCredentials = "credentials"
	stagePhone       = "phone"
	stageCode        = "code"
)

// Messages people read.
const (
	// MsgDateFormat is the message for a date of birth typed any other
	// way than mm/dd/yyyy.
	MsgDateFormat = "Enter your date of birth as mm/dd/yyyy, with forward slashes"
	// MsgNoMatch answers an identity that matched nothing and one that
	// already has a profile, alike.
	MsgNoMatch = "We couldn't create a profile with those details. Check them and try again. " +
		"If you already have a profile, sign in with your username, or use Forgot username to get it."
	// MsgNotEligible answers an account whose status may not make a
	// profile.
	MsgNotEligible = "This account can't be used to create a profile: it is paid in full, returned at lease end, closed or cancelled."
	// MsgEnrolled is what the sign-in page says once the profile exists.
	MsgEnrolled = "Your profile is created. Sign in with your new username and password."
	// MsgExpired answers a step of an enrolment that has ended or never
	// began.
	MsgExpired = "Your profile setup has ended or timed out. Please start again."

	msgLastName      = "Enter your last name."
	msgTaxID         = "Enter the last 4 digits of your Social Security number or TIN."
	msgAccountNumber = "Enter an account number, a vehicle VIN or a card number."
	msgUsername      = "Choose a username of 3 to 64 characters: letters, digits and . - _ @ only."
	msgUsernameTaken = "That username is taken. Choose another."
	msgConsent       = "To create a profile, agree to receive documents electronically."
	msgPhone         = "Enter the phone number that should receive security codes."
	msgMethod        = "Choose whether to get the code by text message or by phone call."
	msgCode          = "Enter the 6-digit code we sent."
	msgHasProfile    = "A profile already exists for this customer. Sign in with your username, or use Forgot username to get it."
)

// Policy is what the room asks of the policies.
type Policy interface {
	Decide(ctx context.Context, in policies.Input) policies.Decision
	IPFailureWindow() time.Duration
	SendLimitWindows() policies.SendLimitWindows
	StepUpFailureWindow() time.Duration
	EnrolmentRules() policies.EnrolmentRules
	RecoveryRules() policies.RecoveryRules
	PasswordRules() policies.PasswordRules
}

// PasswordChecker measures a new password for the password rules: its
// length (policies.PasswordLength), whether it contains the username or
// one of the names, whether it is common. It never keeps or logs the
// password. Safe for concurrent use.
type PasswordChecker interface {
	Facts(password, username string, names ...string) policies.PasswordFacts
}

// Users is what the room reads and writes of profiles.
type Users interface {
	CreateUser(ctx context.Context, u store.User) error
	UserByID(ctx context.Context, id string) (store.User, error)
	UserByName(ctx context.Context, username string) (store.User, error)
	UserByCustomerID(ctx context.Context, customerID string) (store.User, error)
	SetProducts(ctx context.Context, userID string, products []string, at time.Time) error
	// SetPasswordHash, UnlockUser and ResetLoginFailures complete a
	// password recovery (see store.Users).
	SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error
	UnlockUser(ctx context.Context, userID string, at time.Time) (bool, error)
	ResetLoginFailures(ctx context.Context, userID string) error
}

// Records keeps enrolments and their codes.
type Records interface {
	GetRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error)
	PutRecord(ctx context.Context, r store.Record, now time.Time) error
	TakeRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error)
	AttemptRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error)
}

// Hits counts identity proofs, code sends and failures in windows.
type Hits interface {
	AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	ReleaseHit(ctx context.Context, key string, window time.Duration, now time.Time) error
}

// Deps are what the room works with. Directory may be nil: then creating a
// profile and adding an account answer that they are not available here;
// with a Directory, Passwords must be set. Every other field must be set.
type Deps struct {
	Site      *web.Site
	Sessions  *session.Manager
	Directory Directory
	Passwords PasswordChecker
	Users     Users
	Records   Records
	Hits      Hits
	Codes     *credential.Codes
	Hasher    *credential.Hasher
	Sender    notify.Sender
	// Notices sends the notices of a recovery (username recovered,
	// password changed, profile unlocked).
	Notices *notify.Notices
	Facts   *facts.Source
	Policy  Policy
	// IdentityKey is the server key the identity counters are keyed
	// under (an HMAC of the identity, never the identity itself; at least
	// 32 bytes, shared by replicas).
	IdentityKey []byte
	// Org is the organisation's name as messages say it.
	Org  string
	Log  *slog.Logger
	Now  func() time.Time
	Rand io.Reader
}

// Room serves creating a profile, recovering a forgotten username or
// password, and adding an account to a profile.
type Room struct {
	Deps
	pages *template.Template
	// sends are the messages under way in the background (see later).
	sends sync.WaitGroup
}

// New returns the room.
func New(d Deps) (*Room, error) {
	if d.Directory != nil && (d.Passwords == nil || d.Notices == nil) {
		return nil, errors.New("selfservice: a directory needs a password checker and notices")
	}
	if len(d.IdentityKey) < 32 {
		return nil, errors.New("selfservice: the identity key must be at least 32 bytes")
	}
	t, err := web.ParsePages(pageFS, "pages/*.html")
	if err != nil {
		return nil, fmt.Errorf("selfservice: pages: %w", err)
	}
	return &Room{Deps: d, pages: t}, nil
}

// Wait waits for the messages sent in the background (username reminders,
// recovery codes and notices) to go.
func (s *Room) Wait() { s.sends.Wait() }

// Register adds the room's routes to mux.
func (s *Room) Register(mux *http.ServeMux) {
	h := s.Site.Handle
	if s.Directory == nil {
		unavailable := h(s.notAvailable)
		for _, p := range []string{web.Prefix + "enroll", web.Prefix + "enroll/", web.APIPrefix + "enroll/",
			web.Prefix + "settings/accounts/add", web.APIPrefix + "accounts/add"} {
			mux.Handle(p, unavailable)
		}
		for _, p := range []string{recoverPage, web.APIPrefix + "recover/"} {
			mux.Handle(p, h(s.recoveryNotAvailable))
		}
		return
	}
	s.registerRecovery(mux)
	mux.Handle("POST "+web.APIPrefix+"enroll/identify", h(s.apiIdentify))
	mux.Handle("POST "+web.APIPrefix+"enroll/credentials", h(s.apiCredentials))
	mux.Handle("POST "+web.APIPrefix+"enroll/phone", h(s.apiPhone))
	mux.Handle("POST "+web.APIPrefix+"enroll/send", h(s.apiSend))
	mux.Handle("POST "+web.APIPrefix+"enroll/verify", h(s.apiVerify))
	mux.Handle("POST "+web.APIPrefix+"accounts/add", h(s.apiAddAccount))

	mux.Handle("GET "+enrolPage, h(s.identifyPage))
	mux.Handle("POST "+enrolPage+"/identify", h(s.identifyForm))
	mux.Handle("GET "+enrolPage+"/credentials", h(s.credentialsPage))
	mux.Handle("POST "+enrolPage+"/credentials", h(s.credentialsForm))
	mux.Handle("GET "+enrolPage+"/phone", h(s.phonePage))
	mux.Handle("POST "+enrolPage+"/phone", h(s.phoneForm))
	mux.Handle("GET "+enrolPage+"/code", h(s.codePage))
	mux.Handle("POST "+enrolPage+"/send", h(s.sendForm))
	mux.Handle("POST "+enrolPage+"/verify", h(s.verifyForm))
	mux.Handle("GET "+addAccountPage, h(s.addAccountPage))
	mux.Handle("POST "+addAccountPage, h(s.addAccountForm))
}

// notAvailable answers every route of the room on a gateway without a
// directory of customer records.
func (s *Room) notAvailable(w http.ResponseWriter, r *http.Request) error {
	return &web.Error{Status: http.StatusNotFound, Reason: policies.ReasonNotFound,
		Message: "Creating a profile or adding an account online isn't available here. " + s.callUs()}
}

func (s *Room) callUs() string {
	return strings.TrimPrefix(s.Site.Message("call_support"), "We can't complete this online. ")
}

// FieldError is a refusal tied to one field of the form: the page shows
// its message beside that field, and the JSON API names the field.
type FieldError struct {
	Field   string
	Refusal *web.Error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Refusal.Error() }

// Unwrap lets errors.As find the *web.Error, which renders as any refusal.
func (e *FieldError) Unwrap() error { return e.Refusal }

// fieldError is a bad_request refusal of one field.
func fieldError(field, msg string) *FieldError {
	return &FieldError{Field: field, Refusal: &web.Error{Status: http.StatusBadRequest, Reason: policies.ReasonBadRequest,
		Message: msg, Err: errors.New("enrolment: field " + field + " refused")}}
}

// errExpired answers a step without a live enrolment.
func errExpired() *web.Error { return errExpiredFlow(enrolFlow) }

// errNoMatch answers an identity that matched nothing and one that has a
// profile: byte for byte the same.
func errNoMatch(d policies.Decision) *web.Error {
	return &web.Error{Status: http.StatusForbidden, Reason: policies.ReasonIdentityNotVerified, Message: MsgNoMatch,
		Err: errors.New("policy " + d.Revision + " refused the identity proof")}
}

// enrolment is what an enrolment proved and chose so far: the payload of
// its record. It holds no identity secret.
type enrolment struct {
	Stage      string   `json:"stage"`
	CustomerID string   `json:"customer_id"`
	LastName   string   `json:"last_name"`
	Email      string   `json:"email,omitempty"`
	Products   []string `json:"products"`
	// Username is canonical; PasswordHash is argon2id.
	Username       string    `json:"username,omitempty"`
	PasswordHash   string    `json:"password_hash,omitempty"`
	ConsentAt      time.Time `json:"consent_at,omitzero"`
	ConsentVersion string    `json:"consent_version,omitempty"`
	// Phone is the security phone in E.164 form, PhoneMasked as pages
	// show it.
	Phone       string `json:"phone,omitempty"`
	PhoneMasked string `json:"phone_masked,omitempty"`
}

// current is a live enrolment with the ID of its record.
type current struct {
	id      string
	expires time.Time
	e       enrolment
}

// load returns the browser's enrolment when it is at one of the stages.
func (s *Room) load(r *http.Request, stages ...string) (current, error) {
	var e enrolment
	id, expires, err := s.loadState(r, enrolFlow, &e)
	if err != nil {
		return current{}, err
	}
	if !slices.Contains(stages, e.Stage) {
		return current{}, &web.Error{Status: http.StatusConflict, Reason: policies.ReasonBadRequest,
			Message: "That step of your profile setup is done or not reached yet. Please continue where you left off.",
			Err:     fmt.Errorf("enrolment: at stage %s, not %v", e.Stage, stages)}
	}
	return current{id: id, expires: expires, e: e}, nil
}

// save moves the enrolment on: its record is taken (so of two concurrent
// steps one moves it and the other finds it gone) and put back with what
// this step added, under the same expiry.
func (s *Room) save(ctx context.Context, c current) error {
	if err := s.takeState(ctx, enrolFlow, c.id); err != nil {
		return err
	}
	return s.put(ctx, c)
}

func (s *Room) put(ctx context.Context, c current) error {
	return s.putState(ctx, enrolFlow, c.id, c.e.CustomerID, c.expires, c.e)
}

// A flow of the room (creating a profile, recovering a username or a
// password) keeps what was proved so far in the store as a single-use
// record with an expiry, found by the SHA-256 of a random token in a
// __Host- cookie, so it is bound to the browser that proved it and never
// sent to the page.

// flow names a flow's record kind and cookie.
type flow struct {
	// kind is the kind of the records that keep the flow between steps.
	kind string
	// cookie carries the token of the browser's flow.
	cookie string
	// lifetime bounds the flow from its first step to its last.
	lifetime time.Duration
	// name is the flow as errors say it.
	name string
	// expired answers a step of a flow that has ended or never began.
	expired string
}

var enrolFlow = flow{kind: KindEnrolment, cookie: Cookie, lifetime: Lifetime, name: "enrolment", expired: MsgExpired}

// errExpiredFlow answers a step of f without a live record.
func errExpiredFlow(f flow) *web.Error {
	return &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonNoSession, Message: f.expired}
}

// loadState reads the browser's record of f into v and returns its ID and
// expiry.
func (s *Room) loadState(r *http.Request, f flow, v any) (string, time.Time, error) {
	c, err := r.Cookie(f.cookie)
	if err != nil || !web.ValidToken(c.Value) {
		return "", time.Time{}, errExpiredFlow(f)
	}
	id := web.TokenID(c.Value)
	rec, err := s.Records.GetRecord(r.Context(), f.kind, id, s.Now())
	if errors.Is(err, store.ErrNotFound) {
		return "", time.Time{}, errExpiredFlow(f)
	}
	if err != nil {
		return "", time.Time{}, web.Unavailable(fmt.Errorf("%s: %w", f.name, err))
	}
	if err := json.Unmarshal(rec.Payload, v); err != nil {
		return "", time.Time{}, web.Unavailable(fmt.Errorf("%s: %w", f.name, err))
	}
	return id, rec.ExpiresAt, nil
}

// takeState takes the record of f with the ID, so that of two concurrent
// steps one moves the flow on and the other finds it gone.
func (s *Room) takeState(ctx context.Context, f flow, id string) error {
	if _, err := s.Records.TakeRecord(ctx, f.kind, id, s.Now()); errors.Is(err, store.ErrNotFound) {
		return errExpiredFlow(f)
	} else if err != nil {
		return web.Unavailable(fmt.Errorf("%s: %w", f.name, err))
	}
	return nil
}

// putState stores v as the record of f with the ID.
func (s *Room) putState(ctx context.Context, f flow, id, subject string, expires time.Time, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return web.Unavailable(fmt.Errorf("%s: %w", f.name, err))
	}
	rec := store.Record{ID: id, Kind: f.kind, Subject: subject, Payload: payload, ExpiresAt: expires}
	if err := s.Records.PutRecord(ctx, rec, s.Now()); err != nil {
		return web.Unavailable(fmt.Errorf("%s: %w", f.name, err))
	}
	return nil
}

// beginState stores v as a new record of f, sets its cookie and returns
// the record's ID.
func (s *Room) beginState(ctx context.Context, w http.ResponseWriter, f flow, subject string, v any) (string, error) {
	token, id, err := s.Site.NewToken()
	if err != nil {
		return "", web.Unavailable(err)
	}
	if err := s.putState(ctx, f, id, subject, s.Now().Add(f.lifetime), v); err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{Name: f.cookie, Value: token, Path: "/", MaxAge: int(f.lifetime / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return id, nil
}

// endState ends the browser's cookie of f.
func endState(w http.ResponseWriter, f flow) {
	http.SetCookie(w, &http.Cookie{Name: f.cookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
}

// requestFacts describes the request for the policies.
func requestFacts(r *http.Request) policies.Request {
	return policies.Request{Host: web.HostName(r.Host), Path: r.URL.Path, Method: r.Method}
}

// decide asks the enrol point about a stage.
func (s *Room) decide(r *http.Request, client policies.Client, e policies.Enrolment) policies.Decision {
	return s.Policy.Decide(r.Context(), policies.Input{Point: policies.PointEnrol, Now: s.Now().Unix(), Client: client,
		Request: requestFacts(r), Enrolment: &e})
}

// client is the client's facts, with the address's recent failures: read
// by reserving this request's place in the count, which release gives back
// unless the request ends as a counted failure (see login).
func (s *Room) client(r *http.Request) (policies.Client, func(count bool), error) {
	ctx, now := r.Context(), s.Now()
	ip := s.Site.ClientIP(r)
	client := s.Facts.Client(ctx, ip)
	if client.IPUnknown {
		return client, func(bool) {}, nil
	}
	key, window := facts.IPFailureKey(ip), s.Policy.IPFailureWindow()
	n, err := s.Hits.AddHit(ctx, key, window, now)
	if err != nil {
		return client, nil, web.Unavailable(fmt.Errorf("enrolment: failures from address: %w", err))
	}
	client.RecentFailures = n - 1
	return client, func(count bool) {
		if count {
			return
		}
		if err := s.Hits.ReleaseHit(context.WithoutCancel(ctx), key, window, now); err != nil {
			s.Log.ErrorContext(ctx, "release address attempt", "remote_ip", ip.String(), "error", err)
		}
	}, nil
}

// IdentityForm is what the identify step reads.
type IdentityForm struct {
	LastName      string `json:"last_name"`
	TaxIDLast4    string `json:"tax_id_last4"`
	DateOfBirth   string `json:"date_of_birth"`
	AccountNumber string `json:"account_number"`
}

var (
	last4     = regexp.MustCompile(`^[0-9]{4}$`)
	birthDate = regexp.MustCompile(`^([0-9]{2})/([0-9]{2})/([0-9]{4})$`)
)

// ParseBirthDate reads a date of birth typed mm/dd/yyyy, with forward
// slashes and every digit, into yyyy-mm-dd. Any other form (dashes, dots,
// yyyy-mm-dd, a two-digit year, a missing zero) and a date that does not
// exist, lies in the future or before 1900 is refused.
func ParseBirthDate(s string, now time.Time) (string, bool) {
	m := birthDate.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return "", false
	}
	t, err := time.Parse("01/02/2006", m[0])
	if err != nil || t.Year() < 1900 || t.After(now) {
		return "", false
	}
	return t.Format("2006-01-02"), true
}

// NormalAccountNumber is an account number, VIN or card number as typed,
// without spaces or dashes and upper-cased; "" when what is left is not
// 4 to 34 letters and digits.
func NormalAccountNumber(s string) string {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(s)))
	if len(s) < 4 || len(s) > 34 {
		return ""
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return ""
		}
	}
	return s
}

// read checks the form's fields and returns the identity and account
// number it names.
func (f IdentityForm) read(now time.Time) (Identity, string, error) {
	id, err := readIdentity(f.LastName, f.TaxIDLast4, f.DateOfBirth, now)
	if err != nil {
		return Identity{}, "", err
	}
	number := NormalAccountNumber(f.AccountNumber)
	if number == "" {
		return Identity{}, "", fieldError("account_number", msgAccountNumber)
	}
	return id, number, nil
}

// readLastName checks a typed last name.
func readLastName(s string) (string, error) {
	last := strings.TrimSpace(s)
	if last == "" || len(last) > 100 {
		return "", fieldError("last_name", msgLastName)
	}
	return last, nil
}

// readIdentity checks the typed identity questions: last name, last 4 of
// the SSN or TIN, date of birth (mm/dd/yyyy).
func readIdentity(lastName, taxID, birth string, now time.Time) (Identity, error) {
	last, err := readLastName(lastName)
	if err != nil {
		return Identity{}, err
	}
	if !last4.MatchString(strings.TrimSpace(taxID)) {
		return Identity{}, fieldError("tax_id_last4", msgTaxID)
	}
	dob, ok := ParseBirthDate(birth, now)
	if !ok {
		return Identity{}, fieldError("date_of_birth", MsgDateFormat)
	}
	return Identity{LastName: last, TaxIDLast4: strings.TrimSpace(taxID), DateOfBirth: dob}, nil
}

// identityKey names the counter of proofs for one identity: an HMAC of its
// normalised parts, so that the store never holds them.
func (s *Room) identityKey(id Identity) string {
	return "enrol-identity:" + s.digest("portcullis enrolment identity v1", normalName(id.LastName), id.TaxIDLast4, id.DateOfBirth)
}

// digest is the hex HMAC, under the identity key, of the parts in the
// domain: what the store keeps in place of an identity or a username.
func (s *Room) digest(domain string, parts ...string) string {
	mac := hmac.New(sha256.New, s.IdentityKey)
	mac.Write([]byte(domain))
	for _, p := range parts {
		mac.Write([]byte("\x00" + p))
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// normalName is a last name as it is compared: without surrounding spaces,
// in Unicode NFKC form and lower case.
func normalName(s string) string { return strings.ToLower(norm.NFKC.String(strings.TrimSpace(s))) }

// noProfile is a customer ID no profile has, looked up when the identity
// matched nothing, so that both answers read the store alike.
const noProfile = "\x00no-customer"

// identify runs the identify step and, when it passes, begins the
// enrolment and sets its cookie.
func (s *Room) identify(w http.ResponseWriter, r *http.Request, f IdentityForm) error {
	ctx, now := r.Context(), s.Now()
	id, number, err := f.read(now)
	if err != nil {
		return err
	}
	client, release, err := s.client(r)
	if err != nil {
		return err
	}
	counted := false
	defer func() { release(counted) }()
	facts := policies.Enrolment{Stage: "identify"}
	rules := s.Policy.EnrolmentRules()
	if facts.IdentityAttempts, err = s.Hits.AddHit(ctx, s.identityKey(id), rules.Window, now); err != nil {
		return web.Unavailable(fmt.Errorf("enrolment: identity attempts: %w", err))
	}
	if !client.IPUnknown {
		if facts.AddressAttempts, err = s.Hits.AddHit(ctx, "enrol-ip:"+client.IP, rules.Window, now); err != nil {
			return web.Unavailable(fmt.Errorf("enrolment: address attempts: %w", err))
		}
	}
	cust, err := s.Directory.Verify(ctx, id, number)
	switch {
	case errors.Is(err, ErrNoMatch):
	case err != nil:
		return web.Unavailable(fmt.Errorf("enrolment: directory: %w", err))
	default:
		facts.IdentityVerified = true
		if len(cust.Accounts) > 0 {
			facts.AccountStatus = cust.Accounts[0].Status
		}
	}
	lookup := noProfile
	if facts.IdentityVerified {
		lookup = cust.ID
	}
	existing, err := s.Users.UserByCustomerID(ctx, lookup)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return web.Unavailable(fmt.Errorf("enrolment: profile of customer: %w", err))
	default:
		facts.IdentityHasProfile = facts.IdentityVerified
	}
	d := s.decide(r, client, facts)
	counted = d.CountIPFailure
	if !d.Allow {
		s.Log.InfoContext(ctx, "enrolment refused", "stage", "identify", "reason", d.Reason, "policy_rev", d.Revision)
		switch d.Reason {
		case policies.ReasonProfileExists:
			if facts.IdentityHasProfile {
				s.remind(ctx, existing)
			}
			return errNoMatch(d)
		case policies.ReasonIdentityNotVerified:
			return errNoMatch(d)
		}
		return s.denial(d)
	}
	e := enrolment{Stage: stageCredentials, CustomerID: cust.ID, LastName: id.LastName, Email: cust.Email,
		Products: s.eligibleProducts(cust.Accounts)}
	if _, err := s.beginState(ctx, w, enrolFlow, cust.ID, e); err != nil {
		return err
	}
	s.Log.InfoContext(ctx, "enrolment identity verified")
	return nil
}

// eligibleProducts are the products of the accounts whose status may make
// a profile, each once, in the directory's order.
func (s *Room) eligibleProducts(accounts []Account) []string {
	rules := s.Policy.EnrolmentRules()
	var out []string
	for _, a := range accounts {
		if a.Product != "" && rules.Eligible(a.Status) && !slices.Contains(out, a.Product) {
			out = append(out, a.Product)
		}
	}
	return out
}

// remind sends the username of an existing profile to its security phone
// (or, without one, its email), for someone who proved the identity and
// tried to create a second profile. It goes in the background, so that the
// answer takes as long as the answer to an identity that matched nothing.
func (s *Room) remind(ctx context.Context, u store.User) {
	text := "You already have a " + s.Org + " profile. Your username is " + u.Username +
		". Someone, perhaps you, tried to create another one with your details. If this wasn't you, call us."
	m := notify.Message{UserID: u.ID, Purpose: notify.PurposeRecover, Text: text}
	switch {
	case u.SecurityPhone != "":
		m.Channel, m.To = notify.SMS, u.SecurityPhone
	case u.Email != "":
		m.Channel, m.To, m.Subject = notify.Email, u.Email, s.Org+": your username"
	default:
		s.Log.InfoContext(ctx, "username reminder not sent: no phone or address on file", "user_id", u.ID)
		return
	}
	s.later(ctx, func(ctx context.Context) {
		if err := s.Sender.Send(ctx, m); err != nil {
			s.Log.WarnContext(ctx, "username reminder not sent", "user_id", u.ID, "channel", m.Channel, "error", err)
			return
		}
		s.Log.InfoContext(ctx, "username reminder sent", "user_id", u.ID, "channel", m.Channel)
	})
}

// later runs send in the background, after the answer, so that the answer
// takes as long whether or not anything is sent; Wait waits for it.
func (s *Room) later(ctx context.Context, send func(ctx context.Context)) {
	ctx = context.WithoutCancel(ctx)
	s.sends.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		send(ctx)
	})
}

// denial is a refusal of the enrol point as the person reads it, tied to
// the field it is about.
func (s *Room) denial(d policies.Decision) error {
	e := s.Site.Denial(d)
	field := ""
	switch reason := d.Reason; {
	case reason == policies.ReasonAccountNotEligible:
		e.Message, field = MsgNotEligible, "account_number"
	case reason == policies.ReasonUsernameTaken:
		e.Message, field = msgUsernameTaken, "username"
	case reason == "consent_required":
		e.Message, field = msgConsent, "consent"
	case strings.HasPrefix(reason, "password_"):
		e.Message, field = s.passwordMessage(reason), "password"
	case strings.HasPrefix(reason, "phone_"):
		field = "phone"
	}
	if field == "" {
		return e
	}
	return &FieldError{Field: field, Refusal: e}
}

// passwordMessage says what to change about a refused password.
func (s *Room) passwordMessage(reason string) string {
	rules := s.Policy.PasswordRules()
	switch reason {
	case policies.ReasonPasswordTooShort:
		return fmt.Sprintf("Your password needs at least %d characters. Choose a longer one.", rules.MinLength)
	case policies.ReasonPasswordTooLong:
		return fmt.Sprintf("Your password can have at most %d characters. Choose a shorter one.", rules.MaxLength)
	case "password_contains_username":
		return "Your password must not contain your username. Choose another."
	case "password_contains_name":
		return "Your password must not contain your name. Choose another."
	case "password_common":
		return "That password is too common, or has appeared in a data breach. Choose another."
	case "password_guessable":
		return "That password would be easy to guess. Make it longer, for example with a few unrelated words."
	}
	return fmt.Sprintf("Choose a password of %d to %d characters.", rules.MinLength, rules.MaxLength)
}

// CredentialsForm is what the credentials step reads.
type CredentialsForm struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Consent is the ticked box, ConsentVersion the version of the text
	// it was shown with (ConsentVersion).
	Consent        bool   `json:"consent"`
	ConsentVersion string `json:"consent_version"`
}

// credentials runs the credentials step.
func (s *Room) credentials(r *http.Request, f CredentialsForm) error {
	ctx, now := r.Context(), s.Now()
	c, err := s.load(r, stageCredentials)
	if err != nil {
		return err
	}
	username := credential.CanonicalUsername(f.Username)
	if credential.ValidUsername(username) != nil {
		return fieldError("username", msgUsername)
	}
	if len(f.Password) > credential.MaxPasswordLen {
		f.Password = f.Password[:credential.MaxPasswordLen+1]
	}
	available := false
	switch _, err := s.Users.UserByName(ctx, username); {
	case errors.Is(err, store.ErrNotFound):
		available = true
	case err != nil:
		return web.Unavailable(fmt.Errorf("enrolment: username: %w", err))
	}
	pw := s.Passwords.Facts(f.Password, username, c.e.LastName)
	consent := f.Consent && f.ConsentVersion == ConsentVersion
	client := s.Facts.Client(ctx, s.Site.ClientIP(r))
	d := s.decide(r, client, policies.Enrolment{Stage: "credentials", UsernameAvailable: available, NewPassword: &pw, Consent: consent})
	if !d.Allow {
		s.Log.InfoContext(ctx, "enrolment refused", "stage", "credentials", "reason", d.Reason, "policy_rev", d.Revision)
		return s.denial(d)
	}
	hash, err := s.hash(ctx, "enrolment", f.Password)
	if err != nil {
		return err
	}
	c.e.Stage, c.e.Username, c.e.PasswordHash = stagePhone, username, hash
	c.e.ConsentAt, c.e.ConsentVersion = now, ConsentVersion
	return s.save(ctx, c)
}

// hash is the argon2id hash of a new password; a hasher busy with others
// answers 503 with a short Retry-After.
func (s *Room) hash(ctx context.Context, flow, password string) (string, error) {
	hash, err := s.Hasher.Hash(ctx, password)
	if errors.Is(err, credential.ErrBusy) {
		return "", web.Busy(fmt.Errorf("%s: %w", flow, err), 2)
	} else if err != nil {
		return "", web.Unavailable(fmt.Errorf("%s: %w", flow, err))
	}
	return hash, nil
}

// PhoneForm is what the phone step reads: the security phone and how the
// first code goes to it (sms or voice).
type PhoneForm struct {
	Phone  string `json:"phone"`
	Method string `json:"method"`
}

// phoneMethods are the channels an enrolment code may go by.
var phoneMethods = []string{notify.SMS, notify.Voice}

// phone runs the phone step: the number is judged as the settings room
// judges a new security phone, and a first code goes to it.
func (s *Room) phone(r *http.Request, f PhoneForm) (sent, error) {
	ctx := r.Context()
	c, err := s.load(r, stagePhone, stageCode)
	if err != nil {
		return sent{}, err
	}
	if strings.TrimSpace(f.Phone) == "" || len(f.Phone) > 32 {
		return sent{}, fieldError("phone", msgPhone)
	}
	if !slices.Contains(phoneMethods, f.Method) {
		return sent{}, fieldError("method", msgMethod)
	}
	phone, e164 := s.Facts.Phone(ctx, f.Phone)
	client := s.Facts.Client(ctx, s.Site.ClientIP(r))
	d := s.decide(r, client, policies.Enrolment{Stage: "phone", Phone: &phone})
	if !d.Allow {
		s.Log.InfoContext(ctx, "enrolment refused", "stage", "phone", "reason", d.Reason, "policy_rev", d.Revision)
		return sent{}, s.denial(d)
	}
	if e164 == "" {
		return sent{}, web.BadRequest(errors.New("enrolment: the policy accepted a number that could not be read"))
	}
	if c.e.Phone != e164 {
		// A new number starts a new challenge: a code sent to the
		// number before is no good for this one.
		if _, err := s.Records.TakeRecord(ctx, KindEnrolmentCode, c.id, s.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return sent{}, web.Unavailable(fmt.Errorf("enrolment: %w", err))
		}
	}
	c.e.Stage, c.e.Phone, c.e.PhoneMasked = stageCode, e164, phone.Masked
	if err := s.save(ctx, c); err != nil {
		return sent{}, err
	}
	return s.send(r, c, f.Method)
}
