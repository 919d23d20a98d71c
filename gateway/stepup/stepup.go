// Package stepup is the second step of a login from a device the gateway
// does not recognise: the policy offers methods in its order, the person
// asks for a security code by text, call or email, types it, and may
// register the device so that the next login from it skips this step. The
// pending login it completes is not a session: until the step-up passes,
// nothing upstream and no setting is reachable.
//
// Security codes are 6 digits from the injected randomness, stored only as
// an HMAC under the server's key bound to the user, the pending login and
// the purpose, single use, with the lifetime, tries and resends the
// send_code decision gives. A guess reserves its try in the store before it
// is judged, so concurrent guesses cannot pass the limit; a resend replaces
// the code and keeps the tries used.
package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/device"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// KindCode is the kind of the single-use records behind security codes.
const KindCode = "code"

// Policy is what the room asks of the policies.
type Policy interface {
	Decide(ctx context.Context, in policies.Input) policies.Decision
	IPFailureWindow() time.Duration
	SendLimitWindows() policies.SendLimitWindows
	StepUpFailureWindow() time.Duration
	MaxConsecutiveStepUpFailures() int
}

// Users is what the room reads of profiles.
type Users interface {
	UserByID(ctx context.Context, id string) (store.User, error)
	FactorsOf(ctx context.Context, userID string) ([]store.Factor, error)
	AdvanceFactor(ctx context.Context, userID, id string, counter int64, at time.Time) (bool, error)
	AddLoginFailure(ctx context.Context, userID string) (int, error)
	LockUser(ctx context.Context, userID string, at time.Time) (bool, error)
	AddStepUpFailure(ctx context.Context, userID string) (int, error)
	ConfirmStepUp(ctx context.Context, userID string, maxFailures int) (bool, error)
	SetSecurityPhone(ctx context.Context, userID, phone string, at time.Time) error
}

// Records keeps the security codes.
type Records interface {
	GetRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error)
	PutRecord(ctx context.Context, r store.Record, now time.Time) error
	TakeRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error)
	AttemptRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error)
}

// Hits counts sends and failures in windows.
type Hits interface {
	AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	ReleaseHit(ctx context.Context, key string, window time.Duration, now time.Time) error
}

// Deps are what the room works with. Every field must be set.
type Deps struct {
	Site     *web.Site
	Sessions *session.Manager
	Devices  *device.Registry
	Users    Users
	Records  Records
	Hits     Hits
	Codes    *credential.Codes
	Hasher   *credential.Hasher
	Sender   notify.Sender
	Notices  *notify.Notices
	Facts    *facts.Source
	Policy   Policy
	// Org is the organisation's name as messages say it.
	Org string
	Log *slog.Logger
	Now func() time.Time
}

// Room serves the step-up.
type Room struct{ Deps }

// New returns the room.
func New(d Deps) *Room { return &Room{d} }

// Register adds the room's routes to mux.
func (s *Room) Register(mux *http.ServeMux) {
	h := s.Site.Handle
	mux.Handle("GET "+web.Prefix+"step-up", h(s.page))
	mux.Handle("POST "+web.Prefix+"step-up/send", h(s.sendForm))
	mux.Handle("POST "+web.Prefix+"step-up/verify", h(s.verifyForm))
	mux.Handle("POST "+web.APIPrefix+"step-up/send", h(s.apiSend))
	mux.Handle("GET "+web.APIPrefix+"step-up/question", h(s.apiQuestion))
	mux.Handle("POST "+web.APIPrefix+"step-up/verify", h(s.apiVerify))
}

// sentCode is a code record's payload: never the code, only its seal.
type sentCode struct {
	Seal    []byte `json:"seal"`
	Channel string `json:"channel"`
	// To is where it went, masked, for the page that asks for it.
	To      string `json:"to"`
	SentAt  int64  `json:"sent_at"`
	Resends int    `json:"resends"`
}

// codeChannels are the methods that send a code.
var codeChannels = map[string]bool{notify.SMS: true, notify.Voice: true, notify.Email: true}

// binding ties a code to the user, the pending login and the purpose.
func binding(p session.Pending, purpose string) string {
	return credential.CodeBinding(p.UserID, p.ID, purpose)
}

func codeID(p session.Pending, purpose string) string { return p.ID + ":" + purpose }

// policyPurpose is the purpose the policies are told: a phone change is a
// settings change.
func policyPurpose(p session.Pending) string {
	if p.Purpose == session.PurposePhoneChange {
		return session.PurposeSettings
	}
	return p.Purpose
}

// errNoPending answers a step-up call without a pending login.
func errNoPending() *web.Error {
	return &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonNoSession, Message: web.MsgSessionEnded}
}

// pending returns the request's pending login and its user.
func (s *Room) pending(r *http.Request) (session.Pending, store.User, error) {
	p, err := s.Sessions.CurrentPending(r)
	if errors.Is(err, session.ErrNoPending) {
		return p, store.User{}, errNoPending()
	}
	if err != nil {
		return p, store.User{}, web.Unavailable(err)
	}
	u, err := s.Users.UserByID(r.Context(), p.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return p, store.User{}, errNoPending()
	}
	if err != nil {
		return p, store.User{}, web.Unavailable(err)
	}
	if u.Locked {
		// Locked since the password step (a wrong answer, elsewhere):
		// the policy answers for a locked profile.
		s.Sessions.DropPending(r.Context(), p)
		return p, store.User{}, s.Site.Denial(s.Policy.Decide(r.Context(), policies.Input{Point: policies.PointLoginPassword,
			Now: s.Now().Unix(), Client: s.Facts.Client(r.Context(), s.Site.ClientIP(r)), Account: facts.Account(u, true),
			Request: requestFacts(r), Attempt: policies.PasswordAttempt(true)}))
	}
	return p, u, nil
}

// account is the account facts of a user in the middle of a step-up.
func (s *Room) account(ctx context.Context, u store.User) (policies.Account, error) {
	a := facts.Account(u, true)
	fs, err := s.Users.FactorsOf(ctx, u.ID)
	if err != nil {
		return a, err
	}
	s.Facts.SecondFactors(ctx, &a, u, fs)
	return a, nil
}

// sent describes a code that went out, for the page and the API.
type sent struct {
	Channel string `json:"channel"`
	To      string `json:"to"`
	// ResendAfter is how many seconds to wait before asking again.
	ResendAfter int64 `json:"resend_after_seconds,omitempty"`
}

// send sends a new code for the pending login by method, replacing any
// code sent before.
func (s *Room) send(r *http.Request, method string) (sent, error) {
	ctx := r.Context()
	p, u, err := s.pending(r)
	if err != nil {
		return sent{}, err
	}
	if !codeChannels[method] || !p.Offers(method) {
		return sent{}, web.BadRequest(fmt.Errorf("step-up send: method %q is not offered", method))
	}
	now := s.Now()
	ip := s.Site.ClientIP(r)
	acct, err := s.account(ctx, u)
	if err != nil {
		return sent{}, web.Unavailable(err)
	}
	var phone policies.PhoneFacts
	dest, masked := u.Email, maskEmail(u.Email)
	switch {
	case p.Purpose == session.PurposePhoneChange:
		// The confirmation goes to the new number, and only by phone.
		if method == notify.Email {
			return sent{}, web.BadRequest(errors.New("step-up send: a new phone is confirmed by phone"))
		}
		phone, dest = s.Facts.Phone(ctx, p.NewPhone)
		masked = phone.Masked
	case method != notify.Email:
		phone, dest = s.Facts.Phone(ctx, u.SecurityPhone)
		masked = phone.Masked
	}
	id := codeID(p, p.Purpose)
	var prev sentCode
	prevRec, err := s.Records.GetRecord(ctx, KindCode, id, now)
	switch {
	case err == nil:
		if err := json.Unmarshal(prevRec.Payload, &prev); err != nil {
			return sent{}, web.Unavailable(fmt.Errorf("step-up send: %w", err))
		}
	case !errors.Is(err, store.ErrNotFound):
		return sent{}, web.Unavailable(fmt.Errorf("step-up send: %w", err))
	}
	client := s.Facts.Client(ctx, ip)
	limits, release, err := s.reserveSends(ctx, u.ID, dest, ip, client.IPUnknown, phone.CallingCode, now)
	if err != nil {
		return sent{}, web.Unavailable(err)
	}
	keep := false
	defer func() {
		if !keep {
			release()
		}
	}()
	in := policies.Input{
		Point: policies.PointSendCode, Now: now.Unix(), Client: client, Account: acct,
		Request: requestFacts(r),
		Code: &policies.Code{Purpose: policyPurpose(p), Channel: method, Phone: phone,
			SentAt: prev.SentAt, Attempts: prevRec.Attempts, Resends: prev.Resends, Sends: limits},
	}
	d := s.Policy.Decide(ctx, in)
	if !d.Allow {
		s.Log.InfoContext(ctx, "code not sent", "user_id", u.ID, "channel", method, "reason", d.Reason, "policy_rev", d.Revision)
		return sent{}, s.Site.Denial(d)
	}
	if d.CodeTTLSeconds <= 0 {
		return sent{}, web.Unavailable(errors.New("step-up send: the policy gave no code lifetime"))
	}
	code, err := s.Codes.Generate()
	if err != nil {
		return sent{}, web.Unavailable(err)
	}
	ttl := time.Duration(d.CodeTTLSeconds) * time.Second
	msg := notify.Message{Channel: method, To: dest, UserID: u.ID, Purpose: p.Purpose,
		Text: notify.CodeText(s.Org, code, ttl)}
	switch method {
	case notify.Voice:
		msg.Text = notify.CodeSpeech(s.Org, code)
	case notify.Email:
		msg.Subject = s.Org + " security code"
	}
	if err := s.Sender.Send(ctx, msg); err != nil {
		s.Log.WarnContext(ctx, "code delivery failed", "user_id", u.ID, "channel", method, "error", err)
		return sent{}, &web.Error{Status: http.StatusBadGateway, Reason: policies.ReasonCodeNotSent, Message: web.NotSent, Err: err}
	}
	keep = true
	// The new code replaces the old one and inherits its tries: a resend
	// never refills the budget.
	attempts, resends := 0, 0
	if prevRec.ID != "" {
		taken, err := s.Records.TakeRecord(ctx, KindCode, id, now)
		if err == nil {
			attempts, resends = taken.Attempts, prev.Resends+1
		} else if !errors.Is(err, store.ErrNotFound) {
			return sent{}, web.Unavailable(fmt.Errorf("step-up send: %w", err))
		}
	}
	payload, _ := json.Marshal(sentCode{Seal: s.Codes.Seal(code, binding(p, p.Purpose)), Channel: method,
		To: masked, SentAt: now.Unix(), Resends: resends})
	rec := store.Record{ID: id, Kind: KindCode, Subject: u.ID, Payload: payload, Attempts: attempts, ExpiresAt: now.Add(ttl)}
	if err := s.Records.PutRecord(ctx, rec, now); err != nil {
		// A concurrent send put its code first; this one is not kept.
		return sent{}, web.Unavailable(fmt.Errorf("step-up send: %w", err))
	}
	s.Log.InfoContext(ctx, "code sent", "user_id", u.ID, "channel", method, "resends", resends)
	return sent{Channel: method, To: masked, ResendAfter: d.ResendAfterSeconds}, nil
}

// reserveSends counts this send against every send limit before it is
// judged, and returns the counts from before it and a function that gives
// the places back (for a send that does not go out).
func (s *Room) reserveSends(ctx context.Context, userID, dest string, ip netip.Addr, ipUnknown bool, callingCode int, now time.Time) (policies.SendCounts, func(), error) {
	w := s.Policy.SendLimitWindows()
	type counter struct {
		key    string
		window time.Duration
		into   *int
	}
	var sends policies.SendCounts
	counters := []counter{
		{"code-send-user:" + userID, w.User, &sends.User},
		{"code-send-number:" + dest, w.Number, &sends.Number},
	}
	if !ipUnknown {
		counters = append(counters, counter{"code-send-ip:" + ip.String(), w.Address, &sends.Address})
	}
	if callingCode != 0 {
		counters = append(counters, counter{fmt.Sprintf("code-send-cc:%d", callingCode), w.CallingCode, &sends.CallingCode})
	}
	var reserved []counter
	release := func() {
		for _, c := range reserved {
			if err := s.Hits.ReleaseHit(context.WithoutCancel(ctx), c.key, c.window, now); err != nil {
				s.Log.ErrorContext(ctx, "release send reservation", "error", err)
			}
		}
	}
	for _, c := range counters {
		n, err := s.Hits.AddHit(ctx, c.key, c.window, now)
		if err != nil {
			release()
			return sends, func() {}, fmt.Errorf("count sends: %w", err)
		}
		reserved = append(reserved, c)
		*c.into = n - 1
	}
	return sends, release, nil
}

// stepUpFailures names the counter of an account's wrong step-up answers.
func stepUpFailures(userID string) string { return "stepup-fail-user:" + userID }

// reserveFailure counts a try before it is judged, so that concurrent
// guesses over many pending step-ups all count: against the account's
// hourly throttle of wrong answers and against the profile's answers in a
// row that did not pass. It sets the counts from before it in acct, and
// returns the function that gives the throttle's place back once the try
// proves right; the count in a row is reset only by a passed step-up
// (settle).
func (s *Room) reserveFailure(ctx context.Context, userID string, acct *policies.Account, now time.Time) (func(), error) {
	inARow, err := s.Users.AddStepUpFailure(ctx, userID)
	if err != nil {
		return nil, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
	}
	acct.ConsecutiveStepUpFailures = inARow - 1
	window := s.Policy.StepUpFailureWindow()
	n, err := s.Hits.AddHit(ctx, stepUpFailures(userID), window, now)
	if err != nil {
		return nil, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
	}
	acct.RecentStepUpFailures = n - 1
	return func() {
		if err := s.Hits.ReleaseHit(context.WithoutCancel(ctx), stepUpFailures(userID), window, now); err != nil {
			s.Log.ErrorContext(ctx, "release step-up try", "error", err)
		}
	}, nil
}

// settle carries out a verify_code decision on what the store's atomic
// steps return: a lock the decision asks for (notifying once, whoever of
// several concurrent answers locked), and for an approval the reset of the
// profile's answers in a row, which stands only while the profile is
// unlocked and within the cap. An approval that loses that race is judged
// again as for a locked profile. The decision returned is the one that
// stands.
func (s *Room) settle(ctx context.Context, in policies.Input, d policies.Decision, u store.User, method string) (policies.Decision, error) {
	if d.Allow {
		confirmed, err := s.Users.ConfirmStepUp(ctx, u.ID, s.Policy.MaxConsecutiveStepUpFailures())
		if err != nil {
			return d, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
		}
		if confirmed {
			return d, nil
		}
		// Wrong answers that raced this one locked the profile or
		// reached the cap.
		in.Account.Locked = true
		if d = s.Policy.Decide(ctx, in); d.Allow {
			return d, web.Unavailable(errors.New("step-up verify: policy passes a locked profile"))
		}
	}
	lockedNow := false
	if d.Lock {
		var err error
		if lockedNow, err = s.Users.LockUser(ctx, u.ID, s.Now()); err != nil {
			return d, web.Unavailable(fmt.Errorf("lock profile: %w", err))
		}
		if lockedNow {
			s.Log.InfoContext(ctx, "profile locked", "user_id", u.ID, "by", "step-up answers", "method", method, "policy_rev", d.Revision)
		}
	}
	for _, event := range d.Notify {
		if event == "account_locked" && !lockedNow {
			continue // a concurrent answer locked it and notified
		}
		s.Notices.Send(ctx, u.ID, u.SecurityPhone, u.Email, event)
	}
	return d, nil
}

// verified is the outcome of a passed step-up.
type verified struct {
	// Continue is where the browser goes next.
	Continue string
	// Registered is true when the device was registered.
	Registered bool
	// PhoneChanged is true when a new security phone took effect.
	PhoneChanged bool
}

// verify checks a typed code for the pending login and, when the policy
// lets it through, opens the session and registers the device if asked.
func (s *Room) verify(w http.ResponseWriter, r *http.Request, method, typed string, remember bool) (verified, error) {
	ctx := r.Context()
	p, u, err := s.pending(r)
	if err != nil {
		return verified{}, err
	}
	switch method {
	case "totp":
		return s.verifyTOTP(w, r, p, u, typed, remember)
	case "question":
		return s.verifyQuestion(w, r, p, u, typed, remember)
	}
	if method != "code" {
		return verified{}, web.BadRequest(fmt.Errorf("step-up verify: method %q is not supported", method))
	}
	now := s.Now()
	ip := s.Site.ClientIP(r)
	acct, err := s.account(ctx, u)
	if err != nil {
		return verified{}, web.Unavailable(err)
	}
	release, err := s.reserveFailure(ctx, u.ID, &acct, now)
	if err != nil {
		return verified{}, err
	}
	in := policies.Input{Point: policies.PointVerifyCode, Now: now.Unix(), Client: s.Facts.Client(ctx, ip),
		Account: acct, Request: requestFacts(r), Code: &policies.Code{Purpose: policyPurpose(p)}}
	id := codeID(p, p.Purpose)
	// The try is counted before the code is compared.
	rec, err := s.Records.AttemptRecord(ctx, KindCode, id, now)
	var c sentCode
	switch {
	case errors.Is(err, store.ErrNotFound):
		// No live code: none was sent, it expired, or it was used up.
		// The policy judges it as a code sent at the epoch, which no
		// lifetime covers.
		in.Attempt = policies.CodeAttempt(false)
		d, err := s.settle(ctx, in, s.Policy.Decide(ctx, in), u, "code")
		if err != nil {
			return verified{}, err
		}
		return verified{}, s.Site.Denial(d)
	case err != nil:
		return verified{}, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
	}
	if err := json.Unmarshal(rec.Payload, &c); err != nil {
		return verified{}, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
	}
	ok := s.Codes.Match(c.Seal, typed, binding(p, p.Purpose))
	if ok {
		release()
	}
	in.Code.Channel, in.Code.SentAt, in.Code.Attempts, in.Code.Resends = c.Channel, c.SentAt, rec.Attempts-1, c.Resends
	in.Attempt = policies.CodeAttempt(ok)
	d := s.Policy.Decide(ctx, in)
	if d.CountIPFailure && !in.Client.IPUnknown {
		if _, err := s.Hits.AddHit(ctx, facts.IPFailureKey(ip), s.Policy.IPFailureWindow(), now); err != nil {
			return verified{}, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
		}
	}
	if d.InvalidateCode || d.Allow {
		_, err := s.Records.TakeRecord(ctx, KindCode, id, now)
		switch {
		case errors.Is(err, store.ErrNotFound) && d.Allow:
			// A concurrent verification used the code first: single use.
			in.Attempt = policies.CodeAttempt(false)
			in.Code.SentAt = 0
			d = s.Policy.Decide(ctx, in)
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return verified{}, web.Unavailable(fmt.Errorf("step-up verify: %w", err))
		}
	}
	if d, err = s.settle(ctx, in, d, u, "code"); err != nil {
		return verified{}, err
	}
	if !d.Allow {
		s.Log.InfoContext(ctx, "step-up refused", "user_id", u.ID, "reason", d.Reason, "policy_rev", d.Revision)
		return verified{}, s.Site.Denial(d)
	}
	return s.complete(w, r, p, u, c.Channel, d, remember)
}

// complete ends a passed step-up: it opens (or renews) the session and, when
// asked and the policy offers it, registers the device.
func (s *Room) complete(w http.ResponseWriter, r *http.Request, p session.Pending, u store.User, method string, d policies.Decision, remember bool) (verified, error) {
	ctx := r.Context()
	// A login adds the step-up to the password; a step-up inside a session
	// adds it to what the session already used.
	methods := []string{method}
	if p.SessionID == "" {
		methods = []string{"pwd", method}
	}
	// A device registered now is named by the session the login opens,
	// so that removing the device ends it: its ID is made first, and the
	// device stored once the session is.
	var reg *device.Registration
	if remember && d.OfferDeviceRegistration && d.DeviceLifetimeSeconds > 0 && p.Purpose != session.PurposePhoneChange {
		prepared, err := s.Devices.Prepare(r, u.ID, time.Duration(d.DeviceLifetimeSeconds)*time.Second)
		if err != nil {
			return verified{}, web.Unavailable(err)
		}
		reg = &prepared
	}
	deviceID := ""
	if reg != nil {
		deviceID = reg.Device.ID
	}
	if _, err := s.Sessions.CompletePending(w, r, p, methods, deviceID); errors.Is(err, session.ErrNoPending) {
		return verified{}, errNoPending()
	} else if err != nil {
		return verified{}, web.Unavailable(err)
	}
	s.Log.InfoContext(ctx, "stepped up", "user_id", u.ID, "method", method, "purpose", p.Purpose)
	if p.Purpose == session.PurposePhoneChange {
		return s.changePhone(r, p, u)
	}
	out := verified{Continue: s.Site.ContinueURL(r, p.Return)}
	if reg != nil {
		if _, err := s.Devices.Register(ctx, w, *reg); err != nil {
			// The login stands; the device is simply not remembered.
			s.Log.ErrorContext(ctx, "register device", "user_id", u.ID, "error", err)
		} else {
			out.Registered = true
			s.Notices.Send(ctx, u.ID, u.SecurityPhone, u.Email, "device_registered")
		}
	}
	return out, nil
}

// changePhone makes the confirmed number the security phone, and tells the
// person on the old number (and email) that it changed.
func (s *Room) changePhone(r *http.Request, p session.Pending, u store.User) (verified, error) {
	ctx := r.Context()
	id, ok, err := s.Sessions.Current(r)
	if err != nil {
		return verified{}, web.Unavailable(err)
	}
	if !ok || id.Session.ID != p.SessionID {
		return verified{}, errNoPending()
	}
	if err := s.Users.SetSecurityPhone(ctx, u.ID, p.NewPhone, s.Now()); err != nil {
		return verified{}, web.Unavailable(fmt.Errorf("change security phone: %w", err))
	}
	s.Sessions.Refresh(id.Session.ID)
	s.Log.InfoContext(ctx, "security phone changed", "user_id", u.ID)
	s.Notices.Send(ctx, u.ID, u.SecurityPhone, u.Email, "security_phone_changed")
	if u.Email != "" && u.SecurityPhone != "" {
		// The notice went by email; the old number is told too.
		s.Notices.Send(ctx, u.ID, u.SecurityPhone, "", "security_phone_changed")
	}
	return verified{Continue: s.Site.ContinueURL(r, p.Return), PhoneChanged: true}, nil
}

func requestFacts(r *http.Request) policies.Request {
	return policies.Request{Host: web.HostName(r.Host), Path: r.URL.Path, Method: r.Method}
}

// maskEmail hides an address but its first letter and domain.
func maskEmail(a string) string {
	at := -1
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == '@' {
			at = i
			break
		}
	}
	if at < 1 {
		return ""
	}
	return a[:1] + "•••" + a[at:]
}
