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

// A flow's security code is a security code as the step-up sends them: 6
// digits sealed under the server key and bound to the account, the flow's
// record and its purpose; single use; with the lifetime, tries and resends
// the send_code decision gives; its tries reserved in the store before they
// are judged, and a resend replacing the code and keeping the tries used.
// The send counters are the step-up's own (per number, address and calling
// code), so a pumping run cannot spread over the flows. Enrolment and
// recovery each describe their code as a challenge.

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

// challenge is a security code of a flow: where it goes, what it is bound
// to, the record that keeps it and the counters it counts against.
type challenge struct {
	// id is the flow's record ID; the code's record has the same ID.
	id string
	// kind is the kind of the code's record.
	kind string
	// purpose is the flow as the policies (code.purpose) and the
	// messages name it.
	purpose string
	// subject names the account in the send and failure counters.
	subject string
	// owner is the code record's subject, and what the code is bound to
	// with id and purpose.
	owner string
	// userID is the profile the message is about, "" before one exists.
	userID string
	// phone is the number the code goes to in E.164 form, masked as pages
	// show it.
	phone, masked string
	// name is the flow as errors and logs say it.
	name string
	// standIn is a code that goes to no one (a recovery that matched no
	// profile that can receive it): it is counted as a real one is, in
	// counters of its own, so that it costs the same.
	standIn bool
}

func (ch challenge) binding() string { return credential.CodeBinding(ch.owner, ch.id, ch.purpose) }

// challenge is the enrolment's code.
func (c current) challenge() challenge {
	return challenge{id: c.id, kind: KindEnrolmentCode, purpose: purposeEnrol, subject: "enrol:" + c.e.CustomerID,
		owner: c.e.CustomerID, phone: c.e.Phone, masked: c.e.PhoneMasked, name: "enrolment"}
}

// codeAccount is the account facts of a flow's code: the flow's recent
// wrong codes stand for the profile's.
func codeAccount(recentFailures int) policies.Account {
	return policies.Account{RecentStepUpFailures: recentFailures}
}

// sendAsk is what send_code answered about a new code for a challenge.
type sendAsk struct {
	d policies.Decision
	// prev is the code sent before and prevRec its record (no ID when
	// none was).
	prev    sentCode
	prevRec store.Record
	// release gives back this send's place in the send counters: called
	// when no code goes out after all.
	release func()
}

// askSend counts a new code for ch by method in the send counters and asks
// send_code about it.
func (s *Room) askSend(r *http.Request, ch challenge, method string) (sendAsk, error) {
	ctx, now := r.Context(), s.Now()
	phone, dest := s.Facts.Phone(ctx, ch.phone)
	numberKey, callingKey := "code-send-number:"+dest, fmt.Sprintf("code-send-cc:%d", phone.CallingCode)
	if ch.standIn {
		dest = "stand-in:" + ch.subject
		numberKey, callingKey = "code-send-number:"+dest, "code-send-cc:"+dest
	}
	var a sendAsk
	prevRec, err := s.Records.GetRecord(ctx, ch.kind, ch.id, now)
	switch {
	case err == nil:
		if err := json.Unmarshal(prevRec.Payload, &a.prev); err != nil {
			return sendAsk{}, web.Unavailable(fmt.Errorf("%s send: %w", ch.name, err))
		}
		a.prevRec = prevRec
	case !errors.Is(err, store.ErrNotFound):
		return sendAsk{}, web.Unavailable(fmt.Errorf("%s send: %w", ch.name, err))
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
	counters := []counter{{"code-send-user:" + ch.subject, w.User, &sends.User}}
	if dest != "" {
		counters = append(counters, counter{numberKey, w.Number, &sends.Number})
	}
	if !client.IPUnknown {
		counters = append(counters, counter{"code-send-ip:" + ip.String(), w.Address, &sends.Address})
	}
	if phone.CallingCode != 0 || ch.standIn {
		counters = append(counters, counter{callingKey, w.CallingCode, &sends.CallingCode})
	}
	var reserved []counter
	a.release = func() {
		for _, k := range reserved {
			if err := s.Hits.ReleaseHit(context.WithoutCancel(ctx), k.key, k.window, now); err != nil {
				s.Log.ErrorContext(ctx, "release send reservation", "error", err)
			}
		}
	}
	for _, k := range counters {
		n, err := s.Hits.AddHit(ctx, k.key, k.window, now)
		if err != nil {
			a.release()
			return sendAsk{}, web.Unavailable(fmt.Errorf("%s send: count sends: %w", ch.name, err))
		}
		reserved = append(reserved, k)
		*k.into = n - 1
	}
	a.d = s.Policy.Decide(ctx, policies.Input{Point: policies.PointSendCode, Now: now.Unix(), Client: client,
		Account: codeAccount(0), Request: requestFacts(r),
		Code: &policies.Code{Purpose: ch.purpose, Channel: method, Phone: phone, SentAt: a.prev.SentAt,
			Attempts: a.prevRec.Attempts, Resends: a.prev.Resends, Sends: sends}})
	if a.d.Allow && a.d.CodeTTLSeconds <= 0 {
		a.release()
		return sendAsk{}, web.Unavailable(fmt.Errorf("%s send: the policy gave no code lifetime", ch.name))
	}
	return a, nil
}

// codeMessage is the text message or call that carries code for ch.
func (s *Room) codeMessage(ch challenge, method, code string, ttl time.Duration) notify.Message {
	m := notify.Message{Channel: method, To: ch.phone, UserID: ch.userID, Purpose: ch.purpose, Text: notify.CodeText(s.Org, code, ttl)}
	if method == notify.Voice {
		m.Text = notify.CodeSpeech(s.Org, code)
	}
	return m
}

// keepCode makes the code sealed as seal the current code of ch,
// replacing the code before it, whose tries it keeps, and returns the
// resends made so far.
func (s *Room) keepCode(ctx context.Context, ch challenge, seal []byte, method string, ttl time.Duration) (int, error) {
	now := s.Now()
	attempts, resends := 0, 0
	taken, err := s.Records.TakeRecord(ctx, ch.kind, ch.id, now)
	switch {
	case err == nil:
		var prev sentCode
		if err := json.Unmarshal(taken.Payload, &prev); err != nil {
			return 0, web.Unavailable(fmt.Errorf("%s send: %w", ch.name, err))
		}
		attempts, resends = taken.Attempts, prev.Resends+1
	case !errors.Is(err, store.ErrNotFound):
		return 0, web.Unavailable(fmt.Errorf("%s send: %w", ch.name, err))
	}
	payload, _ := json.Marshal(sentCode{Seal: seal, Channel: method,
		To: ch.masked, SentAt: now.Unix(), Resends: resends})
	rec := store.Record{ID: ch.id, Kind: ch.kind, Subject: ch.owner, Payload: payload,
		Attempts: attempts, ExpiresAt: now.Add(ttl)}
	if err := s.Records.PutRecord(ctx, rec, now); err != nil {
		return 0, web.Unavailable(fmt.Errorf("%s send: %w", ch.name, err))
	}
	return resends, nil
}

// send sends a new code for the enrolment by method, replacing any code
// sent before.
func (s *Room) send(r *http.Request, c current, method string) (sent, error) {
	ctx, ch := r.Context(), c.challenge()
	a, err := s.askSend(r, ch, method)
	if err != nil {
		return sent{}, err
	}
	keep := false
	defer func() {
		if !keep {
			a.release()
		}
	}()
	if !a.d.Allow {
		s.Log.InfoContext(ctx, "enrolment code not sent", "channel", method, "reason", a.d.Reason, "policy_rev", a.d.Revision)
		return sent{}, s.Site.Denial(a.d)
	}
	code, err := s.Codes.Generate()
	if err != nil {
		return sent{}, web.Unavailable(err)
	}
	ttl := time.Duration(a.d.CodeTTLSeconds) * time.Second
	if err := s.Sender.Send(ctx, s.codeMessage(ch, method, code, ttl)); err != nil {
		s.Log.WarnContext(ctx, "enrolment code delivery failed", "channel", method, "error", err)
		return sent{}, &web.Error{Status: http.StatusBadGateway, Reason: policies.ReasonCodeNotSent, Message: web.NotSent, Err: err}
	}
	keep = true
	resends, err := s.keepCode(ctx, ch, s.Codes.Seal(code, ch.binding()), method, ttl)
	if err != nil {
		return sent{}, err
	}
	s.Log.InfoContext(ctx, "enrolment code sent", "channel", method, "resends", resends)
	return sent{Channel: method, To: c.e.PhoneMasked, ResendAfter: a.d.ResendAfterSeconds}, nil
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
	c, err := s.load(r, stageCode)
	if err != nil {
		return store.User{}, err
	}
	if _, err := s.check(r, c.challenge(), typed); err != nil {
		return store.User{}, err
	}
	return s.create(w, r, c)
}

// check judges a typed code of ch at verify_code, its try reserved in the
// failure counter first. When the policy lets it through, the code is used
// up and check returns the channel it went by.
func (s *Room) check(r *http.Request, ch challenge, typed string) (string, error) {
	ctx, now := r.Context(), s.Now()
	failKey, window := "stepup-fail-user:"+ch.subject, s.Policy.StepUpFailureWindow()
	n, err := s.Hits.AddHit(ctx, failKey, window, now)
	if err != nil {
		return "", web.Unavailable(fmt.Errorf("%s verify: %w", ch.name, err))
	}
	ip := s.Site.ClientIP(r)
	in := policies.Input{Point: policies.PointVerifyCode, Now: now.Unix(), Client: s.Facts.Client(ctx, ip),
		Account: codeAccount(n - 1), Request: requestFacts(r), Code: &policies.Code{Purpose: ch.purpose}}
	rec, err := s.Records.AttemptRecord(ctx, ch.kind, ch.id, now)
	var sc sentCode
	switch {
	case errors.Is(err, store.ErrNotFound):
		in.Attempt = policies.CodeAttempt(false)
		return "", s.codeDenial(s.Policy.Decide(ctx, in))
	case err != nil:
		return "", web.Unavailable(fmt.Errorf("%s verify: %w", ch.name, err))
	}
	if err := json.Unmarshal(rec.Payload, &sc); err != nil {
		return "", web.Unavailable(fmt.Errorf("%s verify: %w", ch.name, err))
	}
	ok := s.Codes.Match(sc.Seal, typed, ch.binding())
	if ok {
		if err := s.Hits.ReleaseHit(context.WithoutCancel(ctx), failKey, window, now); err != nil {
			s.Log.ErrorContext(ctx, "release code try", "error", err)
		}
	}
	in.Code.Channel, in.Code.SentAt, in.Code.Attempts, in.Code.Resends = sc.Channel, sc.SentAt, rec.Attempts-1, sc.Resends
	in.Attempt = policies.CodeAttempt(ok)
	d := s.Policy.Decide(ctx, in)
	if d.CountIPFailure && !in.Client.IPUnknown {
		if _, err := s.Hits.AddHit(ctx, facts.IPFailureKey(ip), s.Policy.IPFailureWindow(), now); err != nil {
			return "", web.Unavailable(fmt.Errorf("%s verify: %w", ch.name, err))
		}
	}
	if d.InvalidateCode || d.Allow {
		_, err := s.Records.TakeRecord(ctx, ch.kind, ch.id, now)
		switch {
		case errors.Is(err, store.ErrNotFound) && d.Allow:
			// A concurrent verification used the code first.
			in.Attempt, in.Code.SentAt = policies.CodeAttempt(false), 0
			return "", s.codeDenial(s.Policy.Decide(ctx, in))
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return "", web.Unavailable(fmt.Errorf("%s verify: %w", ch.name, err))
		}
	}
	if !d.Allow {
		s.Log.InfoContext(ctx, "security code refused", "flow", ch.name, "reason", d.Reason, "policy_rev", d.Revision)
		return "", s.codeDenial(d)
	}
	return sc.Channel, nil
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
func clearCookie(w http.ResponseWriter) { endState(w, enrolFlow) }
