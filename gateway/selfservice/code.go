package selfservice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// The enrolment code is a security code as the step-up sends them: 6
// digits sealed under the server key and bound to the customer, the
// enrolment and its purpose; single use; with the lifetime, tries and
// resends the send_code decision gives; its tries reserved in the store
// before they are judged, and a resend replacing the code and keeping the
// tries used. The send counters are the step-up's own (per number, address
// and calling code), so a pumping run cannot spread over the two flows.

// sentCode is a code record's payload: never the code, only its seal.
type sentCode struct {
	Seal    []byte `json:"seal"`
	Channel string `json:"channel"`
	To      string `json:"to"`
	SentAt  int64  `json:"sent_at"`
	Resends int    `json:"resends"`
}

// sent describes a code that went out.
type sent struct {
	Channel     string `json:"channel"`
	To          string `json:"to"`
	ResendAfter int64  `json:"resend_after_seconds,omitempty"`
}

func codeBinding(c current) string { return credential.CodeBinding(c.e.CustomerID, c.id, purposeEnrol) }

// codeAccount is the account facts of an enrolment's code: there is no
// profile yet, so the customer stands in for it.
func codeAccount(recentFailures int) policies.Account {
	return policies.Account{RecentStepUpFailures: recentFailures}
}

// send sends a new code for the enrolment by method, replacing any code
// sent before.
func (s *Room) send(r *http.Request, c current, method string) (sent, error) {
	ctx, now := r.Context(), s.Now()
	phone, dest := s.Facts.Phone(ctx, c.e.Phone)
	var prev sentCode
	prevRec, err := s.Records.GetRecord(ctx, KindEnrolmentCode, c.id, now)
	switch {
	case err == nil:
		if err := json.Unmarshal(prevRec.Payload, &prev); err != nil {
			return sent{}, web.Unavailable(fmt.Errorf("enrolment send: %w", err))
		}
	case !errors.Is(err, store.ErrNotFound):
		return sent{}, web.Unavailable(fmt.Errorf("enrolment send: %w", err))
	}
	ip := s.Site.ClientIP(r)
	client := s.Facts.Client(ctx, ip)
	w := s.Policy.SendLimitWindows()
	type counter struct {
		key    string
		window time.Duration
		into   *int
	}
	var sends policies.SendCounts
	counters := []counter{
		{"code-send-user:enrol:" + c.e.CustomerID, w.User, &sends.User},
		{"code-send-number:" + dest, w.Number, &sends.Number},
	}
	if !client.IPUnknown {
		counters = append(counters, counter{"code-send-ip:" + ip.String(), w.Address, &sends.Address})
	}
	if phone.CallingCode != 0 {
		counters = append(counters, counter{fmt.Sprintf("code-send-cc:%d", phone.CallingCode), w.CallingCode, &sends.CallingCode})
	}
	var reserved []counter
	keep := false
	defer func() {
		if keep {
			return
		}
		for _, k := range reserved {
			if err := s.Hits.ReleaseHit(context.WithoutCancel(ctx), k.key, k.window, now); err != nil {
				s.Log.ErrorContext(ctx, "release send reservation", "error", err)
			}
		}
	}()
	for _, k := range counters {
		n, err := s.Hits.AddHit(ctx, k.key, k.window, now)
		if err != nil {
			return sent{}, web.Unavailable(fmt.Errorf("enrolment send: count sends: %w", err))
		}
		reserved = append(reserved, k)
		*k.into = n - 1
	}
	d := s.Policy.Decide(ctx, policies.Input{Point: policies.PointSendCode, Now: now.Unix(), Client: client,
		Account: codeAccount(0), Request: requestFacts(r),
		Code: &policies.Code{Purpose: purposeEnrol, Channel: method, Phone: phone, SentAt: prev.SentAt,
			Attempts: prevRec.Attempts, Resends: prev.Resends, Sends: sends}})
	if !d.Allow {
		s.Log.InfoContext(ctx, "enrolment code not sent", "channel", method, "reason", d.Reason, "policy_rev", d.Revision)
		return sent{}, s.Site.Denial(d)
	}
	if d.CodeTTLSeconds <= 0 {
		return sent{}, web.Unavailable(errors.New("enrolment send: the policy gave no code lifetime"))
	}
	code, err := s.Codes.Generate()
	if err != nil {
		return sent{}, web.Unavailable(err)
	}
	ttl := time.Duration(d.CodeTTLSeconds) * time.Second
	msg := notify.Message{Channel: method, To: dest, Purpose: purposeEnrol, Text: notify.CodeText(s.Org, code, ttl)}
	if method == notify.Voice {
		msg.Text = notify.CodeSpeech(s.Org, code)
	}
	if err := s.Sender.Send(ctx, msg); err != nil {
		s.Log.WarnContext(ctx, "enrolment code delivery failed", "channel", method, "error", err)
		return sent{}, &web.Error{Status: http.StatusBadGateway, Reason: policies.ReasonCodeNotSent, Message: web.NotSent, Err: err}
	}
	keep = true
	attempts, resends := 0, 0
	if prevRec.ID != "" {
		taken, err := s.Records.TakeRecord(ctx, KindEnrolmentCode, c.id, now)
		if err == nil {
			attempts, resends = taken.Attempts, prev.Resends+1
		} else if !errors.Is(err, store.ErrNotFound) {
			return sent{}, web.Unavailable(fmt.Errorf("enrolment send: %w", err))
		}
	}
	payload, _ := json.Marshal(sentCode{Seal: s.Codes.Seal(code, codeBinding(c)), Channel: method,
		To: c.e.PhoneMasked, SentAt: now.Unix(), Resends: resends})
	rec := store.Record{ID: c.id, Kind: KindEnrolmentCode, Subject: c.e.CustomerID, Payload: payload,
		Attempts: attempts, ExpiresAt: now.Add(ttl)}
	if err := s.Records.PutRecord(ctx, rec, now); err != nil {
		return sent{}, web.Unavailable(fmt.Errorf("enrolment send: %w", err))
	}
	s.Log.InfoContext(ctx, "enrolment code sent", "channel", method, "resends", resends)
	return sent{Channel: method, To: c.e.PhoneMasked, ResendAfter: d.ResendAfterSeconds}, nil
}

// resend sends another code for the browser's enrolment.
func (s *Room) resend(r *http.Request, method string) (sent, error) {
	c, err := s.load(r, stageCode)
	if err != nil {
		return sent{}, err
	}
	if method != notify.SMS && method != notify.Voice {
		return sent{}, fieldError("method", msgMethod)
	}
	return s.send(r, c, method)
}

// verify checks a typed code and, when the policy lets it through, creates
// the profile. It returns the new profile.
func (s *Room) verify(w http.ResponseWriter, r *http.Request, typed string) (store.User, error) {
	ctx, now := r.Context(), s.Now()
	c, err := s.load(r, stageCode)
	if err != nil {
		return store.User{}, err
	}
	failKey, window := "stepup-fail-user:enrol:"+c.e.CustomerID, s.Policy.StepUpFailureWindow()
	n, err := s.Hits.AddHit(ctx, failKey, window, now)
	if err != nil {
		return store.User{}, web.Unavailable(fmt.Errorf("enrolment verify: %w", err))
	}
	ip := s.Site.ClientIP(r)
	in := policies.Input{Point: policies.PointVerifyCode, Now: now.Unix(), Client: s.Facts.Client(ctx, ip),
		Account: codeAccount(n - 1), Request: requestFacts(r), Code: &policies.Code{Purpose: purposeEnrol}}
	rec, err := s.Records.AttemptRecord(ctx, KindEnrolmentCode, c.id, now)
	var sc sentCode
	switch {
	case errors.Is(err, store.ErrNotFound):
		in.Attempt = policies.CodeAttempt(false)
		return store.User{}, s.codeDenial(s.Policy.Decide(ctx, in))
	case err != nil:
		return store.User{}, web.Unavailable(fmt.Errorf("enrolment verify: %w", err))
	}
	if err := json.Unmarshal(rec.Payload, &sc); err != nil {
		return store.User{}, web.Unavailable(fmt.Errorf("enrolment verify: %w", err))
	}
	ok := s.Codes.Match(sc.Seal, typed, codeBinding(c))
	if ok {
		if err := s.Hits.ReleaseHit(context.WithoutCancel(ctx), failKey, window, now); err != nil {
			s.Log.ErrorContext(ctx, "release enrolment try", "error", err)
		}
	}
	in.Code.Channel, in.Code.SentAt, in.Code.Attempts, in.Code.Resends = sc.Channel, sc.SentAt, rec.Attempts-1, sc.Resends
	in.Attempt = policies.CodeAttempt(ok)
	d := s.Policy.Decide(ctx, in)
	if d.CountIPFailure && !in.Client.IPUnknown {
		if _, err := s.Hits.AddHit(ctx, facts.IPFailureKey(ip), s.Policy.IPFailureWindow(), now); err != nil {
			return store.User{}, web.Unavailable(fmt.Errorf("enrolment verify: %w", err))
		}
	}
	if d.InvalidateCode || d.Allow {
		_, err := s.Records.TakeRecord(ctx, KindEnrolmentCode, c.id, now)
		switch {
		case errors.Is(err, store.ErrNotFound) && d.Allow:
			// A concurrent verification used the code first.
			in.Attempt, in.Code.SentAt = policies.CodeAttempt(false), 0
			return store.User{}, s.codeDenial(s.Policy.Decide(ctx, in))
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return store.User{}, web.Unavailable(fmt.Errorf("enrolment verify: %w", err))
		}
	}
	if !d.Allow {
		s.Log.InfoContext(ctx, "enrolment code refused", "reason", d.Reason, "policy_rev", d.Revision)
		return store.User{}, s.codeDenial(d)
	}
	return s.create(w, r, c)
}

// codeDenial is a refusal of a typed code, tied to the code field.
func (s *Room) codeDenial(d policies.Decision) error {
	return &FieldError{Field: "code", Refusal: s.Site.Denial(d)}
}

// create makes the profile of a verified enrolment. The enrolment's record
// is taken first, so that it makes one profile at most; the store's
// uniqueness of the customer ID stops a concurrent enrolment of the same
// customer in another browser.
func (s *Room) create(w http.ResponseWriter, r *http.Request, c current) (store.User, error) {
	ctx, now := r.Context(), s.Now()
	if _, err := s.Records.TakeRecord(ctx, KindEnrolment, c.id, now); errors.Is(err, store.ErrNotFound) {
		return store.User{}, errExpired()
	} else if err != nil {
		return store.User{}, web.Unavailable(fmt.Errorf("enrolment: %w", err))
	}
	userID, err := newUserID(s.Rand)
	if err != nil {
		return store.User{}, web.Unavailable(err)
	}
	u := store.User{ID: userID, Username: c.e.Username, DisplayName: c.e.Username, PasswordHash: c.e.PasswordHash,
		Products: c.e.Products, SecurityPhone: c.e.Phone, Email: c.e.Email, CustomerID: c.e.CustomerID,
		ConsentAt: c.e.ConsentAt, ConsentVersion: c.e.ConsentVersion, CreatedAt: now, UpdatedAt: now}
	err = s.Users.CreateUser(ctx, u)
	if errors.Is(err, store.ErrConflict) {
		if _, err := s.Users.UserByCustomerID(ctx, c.e.CustomerID); err == nil {
			clearCookie(w)
			return store.User{}, &web.Error{Status: http.StatusConflict, Reason: policies.ReasonProfileExists, Message: msgHasProfile,
				Err: errors.New("enrolment: the customer's profile was created meanwhile")}
		}
		// The username was taken meanwhile: the person chooses another,
		// and keeps what they proved.
		c.e.Stage, c.e.Username, c.e.PasswordHash = stageCredentials, "", ""
		if err := s.put(ctx, c); err != nil {
			return store.User{}, err
		}
		return store.User{}, &FieldError{Field: "username", Refusal: &web.Error{Status: http.StatusConflict,
			Reason: policies.ReasonUsernameTaken, Message: msgUsernameTaken, Err: errors.New("enrolment: username taken meanwhile")}}
	}
	if err != nil {
		return store.User{}, web.Unavailable(fmt.Errorf("enrolment: create profile: %w", err))
	}
	clearCookie(w)
	s.Log.InfoContext(ctx, "profile created", "user_id", u.ID, "products", len(u.Products))
	return u, nil
}

// newUserID is a random profile ID.
func newUserID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("profile ID: %w", err)
	}
	return "u-" + hex.EncodeToString(b), nil
}

// clearCookie ends the browser's enrolment cookie.
func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: Cookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
}
