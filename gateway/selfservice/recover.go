package selfservice

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// Recovering a forgotten username or password, each asked of the
// policies' recover point (and, for the code, of send_code and
// verify_code):
//
//  1. identify: for a username, last name, last 4 of the SSN or TIN and
//     date of birth, checked by the Directory; for a password, last name
//     and username, with the last 4 and the date of birth too when the
//     policy data's recovery.password_identity_questions says so. Each
//     proof is counted per account and per client address first.
//  2. method: the person chooses how to hear from us, among every method
//     the policy data lists for the kind: a code by text or call to the
//     security phone, or (a username) the username by email.
//  3. verify: the code. A username is then shown; a password recovery
//     goes on to
//  4. complete: the new password, judged by the password rules. The
//     profile gets it, is unlocked, its failure counts are cleared, every
//     session of it ends, and the person signs in as anyone does:
//     recovery never signs anyone in.
//
// Nobody learns from the answers whether the details matched a profile:
// answers that match nothing, or a profile that cannot receive what was
// chosen, begin a recovery just the same, offer the same methods, answer
// the same "sent" and refuse every code typed with the same wrong-code
// message (their stand-in code is sealed under another binding, so no
// guess matches it). Messages go in the background, so that the answers
// take as long either way.

const (
	// KindRecovery is the kind of the records that keep a recovery between
	// its steps.
	KindRecovery = "recover"
	// KindRecoveryCode is the kind of the records behind recovery codes.
	KindRecoveryCode = "recover_code"
	// RecoveryCookie carries the token of the browser's recovery.
	RecoveryCookie = "__Host-portcullis-recover"
	// RecoveryLifetime bounds a recovery from the identity proof to the
	// new password.
	RecoveryLifetime = 30 * time.Minute

	recoverUsername = "username"
	recoverPassword = "password"
	purposeRecover  = notify.PurposeRecover
)

// Stages of a recovery, as its record keeps them (and stageCode).
const (
	stageMethod      = "method"
	stageNewPassword = "new_password"
)

// Messages of recovery people read.
const (
	// MsgRecoveryExpired answers a step of a recovery that has ended or
	// never began.
	MsgRecoveryExpired = "Your recovery has ended or timed out. Please start again."
	// MsgPasswordReset is what the sign-in page says once a recovered
	// password is set.
	MsgPasswordReset = "Your password is changed and your profile is unlocked. Sign in with your new password."

	msgRecoveryMethod  = "Choose how we should reach you."
	msgNewPassword     = "Choose a new password."
	msgPasswordsDiffer = "The two passwords don't match. Type the same new password in both boxes."
	msgUsernameEmailed = "If your details match a profile with an email address on file, we've emailed its username there. " +
		"It can take a few minutes to arrive."
)

var recoverFlow = flow{kind: KindRecovery, cookie: RecoveryCookie, lifetime: RecoveryLifetime, name: "recovery",
	expired: MsgRecoveryExpired}

// RecoveryForm is what the identify step of a recovery reads: for a
// username, LastName, TaxIDLast4 and DateOfBirth; for a password,
// LastName and Username, and TaxIDLast4 and DateOfBirth when the policy
// data asks the identity questions.
type RecoveryForm struct {
	LastName    string `json:"last_name"`
	Username    string `json:"username"`
	TaxIDLast4  string `json:"tax_id_last4"`
	DateOfBirth string `json:"date_of_birth"`
}

// recovery is what a recovery proved and chose so far: the payload of its
// record. It holds no identity secret and, until the code is passed, no
// username.
type recovery struct {
	Kind  string `json:"kind"`
	Stage string `json:"stage"`
	// Account is the digest of the username or identity the recovery is
	// for: it names the recovery's counters, whether or not it matched.
	Account string `json:"account"`
	// UserID is the matched profile, "" when the answers matched none.
	UserID string `json:"user_id,omitempty"`
	// Reachable are the methods the profile can receive, as the policy
	// listed them.
	Reachable []string `json:"reachable,omitempty"`
	// Questions is whether the identity questions were answered.
	Questions bool `json:"questions,omitempty"`
	// Channel is how the last code went (or would have gone).
	Channel string `json:"channel,omitempty"`
	// VerifiedBy is the method of the code passed (stage new_password).
	VerifiedBy string `json:"verified_by,omitempty"`
}

// pendingRecovery is a live recovery with the ID of its record.
type pendingRecovery struct {
	id      string
	expires time.Time
	v       recovery
}

// challenge is the recovery's code to phone.
func (p pendingRecovery) challenge(userID, phone string) challenge {
	return challenge{id: p.id, kind: KindRecoveryCode, purpose: purposeRecover, subject: "recover:" + p.v.Account,
		owner: p.v.Account, userID: userID, phone: phone, name: "recovery"}
}

// matched reports whether the recovery's profile can receive by method.
func (p pendingRecovery) matched(method string) bool {
	return p.v.UserID != "" && slices.Contains(p.v.Reachable, method)
}

// loadRecovery returns the browser's recovery of kind when it is at one of
// the stages.
func (s *Room) loadRecovery(r *http.Request, kind string, stages ...string) (pendingRecovery, error) {
	var v recovery
	id, expires, err := s.loadState(r, recoverFlow, &v)
	if err != nil {
		return pendingRecovery{}, err
	}
	if v.Kind != kind || !slices.Contains(stages, v.Stage) {
		return pendingRecovery{}, &web.Error{Status: http.StatusConflict, Reason: policies.ReasonBadRequest,
			Message: "That step of your recovery is done or not reached yet. Please continue where you left off.",
			Err:     fmt.Errorf("recovery: %s at stage %s, not %s %v", v.Kind, v.Stage, kind, stages)}
	}
	return pendingRecovery{id: id, expires: expires, v: v}, nil
}

// saveRecovery moves the recovery on (see save).
func (s *Room) saveRecovery(ctx context.Context, p pendingRecovery) error {
	if err := s.takeState(ctx, recoverFlow, p.id); err != nil {
		return err
	}
	return s.putState(ctx, recoverFlow, p.id, p.v.Account, p.expires, p.v)
}

// asksQuestions reports whether a recovery of kind asks the identity
// questions.
func (s *Room) asksQuestions(kind string) bool {
	return kind == recoverUsername || s.Policy.RecoveryRules().PasswordIdentityQuestions
}

// read checks the form's fields for a recovery of kind and returns the
// identity and the canonical username it names.
func (f RecoveryForm) read(kind string, questions bool, now time.Time) (Identity, string, error) {
	if kind == recoverUsername {
		id, err := readIdentity(f.LastName, f.TaxIDLast4, f.DateOfBirth, now)
		return id, "", err
	}
	last, err := readLastName(f.LastName)
	if err != nil {
		return Identity{}, "", err
	}
	username := credential.CanonicalUsername(f.Username)
	if credential.ValidUsername(username) != nil {
		return Identity{}, "", fieldError("username", "Enter your username.")
	}
	if !questions {
		return Identity{LastName: last}, username, nil
	}
	id, err := readIdentity(last, f.TaxIDLast4, f.DateOfBirth, now)
	if err != nil {
		return Identity{}, "", err
	}
	return id, username, nil
}

// recoveryAccount is the account digest a recovery's counters are keyed
// by: the identity for a username, the username for a password.
func (s *Room) recoveryAccount(kind string, id Identity, username string) string {
	if kind == recoverUsername {
		return "username:" + s.digest("portcullis recovery identity v1", normalName(id.LastName), id.TaxIDLast4, id.DateOfBirth)
	}
	return "password:" + s.digest("portcullis recovery username v1", username)
}

// match finds the profile the answers prove, and reports whether they do.
// Both answers make the same lookups, whether or not the first matched.
func (s *Room) match(ctx context.Context, kind string, id Identity, username string, questions bool) (store.User, bool, error) {
	if kind == recoverUsername {
		cust, err := s.Directory.Identify(ctx, id)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNoMatch) {
			return store.User{}, false, fmt.Errorf("directory: %w", err)
		}
		lookup := noProfile
		if found {
			lookup = cust.ID
		}
		u, err := s.Users.UserByCustomerID(ctx, lookup)
		if errors.Is(err, store.ErrNotFound) {
			return store.User{}, false, nil
		} else if err != nil {
			return store.User{}, false, fmt.Errorf("profile of customer: %w", err)
		}
		return u, found, nil
	}
	u, err := s.Users.UserByName(ctx, username)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, fmt.Errorf("profile: %w", err)
	}
	var cust Customer
	if questions {
		cust, err = s.Directory.Identify(ctx, id)
	} else {
		lookup := noProfile
		if known && u.CustomerID != "" {
			lookup = u.CustomerID
		}
		cust, err = s.Directory.Customer(ctx, lookup)
	}
	if err != nil && !errors.Is(err, ErrNoMatch) {
		return store.User{}, false, fmt.Errorf("directory: %w", err)
	}
	same := subtle.ConstantTimeCompare([]byte(cust.ID), []byte(u.CustomerID))
	if !questions {
		same &= subtle.ConstantTimeCompare([]byte(normalName(cust.LastName)), []byte(normalName(id.LastName)))
	}
	ok := known && err == nil && u.CustomerID != "" && same == 1
	if !questions && cust.LastName == "" {
		ok = false
	}
	return u, ok, nil
}

// accountFacts describes a matched profile for the recover point; zero for
// no match.
func (s *Room) accountFacts(ctx context.Context, u store.User, matched bool) policies.Account {
	if !matched {
		return policies.Account{}
	}
	a := policies.Account{Exists: true, Locked: u.Locked, ConsecutiveFailures: u.FailedLogins,
		ConsecutiveStepUpFailures: u.StepUpFailures, EmailOnFile: u.Email != "", Products: u.Products, UserID: u.ID}
	if u.SecurityPhone != "" {
		phone, _ := s.Facts.Phone(ctx, u.SecurityPhone)
		a.SecurityPhone = &phone
	}
	return a
}

// decideRecovery asks the recover point.
func (s *Room) decideRecovery(r *http.Request, client policies.Client, account policies.Account, rec policies.Recovery) policies.Decision {
	return s.Policy.Decide(r.Context(), policies.Input{Point: policies.PointRecover, Now: s.Now().Unix(), Client: client,
		Account: account, Request: requestFacts(r), Recovery: &rec})
}

// identifyRecovery runs the identify step of a recovery of kind and, unless
// the policy refuses for a reason that does not depend on the answers,
// begins the recovery and sets its cookie. It returns the methods to offer.
func (s *Room) identifyRecovery(w http.ResponseWriter, r *http.Request, kind string, f RecoveryForm) ([]string, error) {
	ctx, now := r.Context(), s.Now()
	questions := s.asksQuestions(kind)
	id, username, err := f.read(kind, questions, now)
	if err != nil {
		return nil, err
	}
	rules := s.Policy.RecoveryRules()
	account := s.recoveryAccount(kind, id, username)
	client, release, err := s.client(r)
	if err != nil {
		return nil, err
	}
	counted := false
	// An attempt that is not a counted failure gives its place back after
	// the answer, so that it takes as long as one that is.
	defer func() { s.later(ctx, func(context.Context) { release(counted) }) }()
	facts := policies.Recovery{Kind: kind, Stage: "identify", QuestionsAnswered: questions}
	if facts.AccountAttempts, err = s.Hits.AddHit(ctx, "recover-account:"+account, rules.Window, now); err != nil {
		return nil, web.Unavailable(fmt.Errorf("recovery: account attempts: %w", err))
	}
	if !client.IPUnknown {
		if facts.AddressAttempts, err = s.Hits.AddHit(ctx, "recover-ip:"+client.IP, rules.Window, now); err != nil {
			return nil, web.Unavailable(fmt.Errorf("recovery: address attempts: %w", err))
		}
	}
	u, matched, err := s.match(ctx, kind, id, username, questions)
	if err != nil {
		return nil, web.Unavailable(fmt.Errorf("recovery: %w", err))
	}
	facts.IdentityVerified = matched
	d := s.decideRecovery(r, client, s.accountFacts(ctx, u, matched), facts)
	counted = d.CountIPFailure
	v := recovery{Kind: kind, Stage: stageMethod, Account: account, Questions: questions}
	switch {
	case d.Allow:
		v.UserID, v.Reachable = u.ID, d.StepUp
	case d.Reason == policies.ReasonIdentityNotVerified || d.Reason == policies.ReasonRecoveryUnavailable:
		// Answered as a match: nothing will reach anyone.
	default:
		s.Log.InfoContext(ctx, "recovery refused", "kind", kind, "stage", "identify", "reason", d.Reason, "policy_rev", d.Revision)
		return nil, s.Site.Denial(d)
	}
	if _, err := s.beginState(ctx, w, recoverFlow, account, v); err != nil {
		return nil, err
	}
	s.Log.InfoContext(ctx, "recovery begun", "kind", kind, "reason", d.Reason, "policy_rev", d.Revision)
	return rules.Offers(kind), nil
}

// sendRecovery sends what the person chose by method: a code, or (for a
// username, by email) the username itself. It reports whether the
// recovery is over (the username went by email).
func (s *Room) sendRecovery(w http.ResponseWriter, r *http.Request, kind, method string) (bool, error) {
	p, err := s.loadRecovery(r, kind, stageMethod, stageCode)
	if err != nil {
		return false, err
	}
	if !slices.Contains(s.Policy.RecoveryRules().Offers(kind), method) {
		return false, fieldError("method", msgRecoveryMethod)
	}
	if method == notify.Email {
		return true, s.emailUsername(w, r, p)
	}
	return false, s.sendRecoveryCode(r, p, method)
}

// sendRecoveryCode sends a recovery code by method, replacing any code sent
// before. A recovery that matched nothing, or whose profile the policy
// will not send to, keeps a stand-in code that was never sent (a refused
// resend keeps the code sent before), and answers as if it had sent one.
func (s *Room) sendRecoveryCode(r *http.Request, p pendingRecovery, method string) error {
	ctx := r.Context()
	u, matched, err := s.recoveryUser(ctx, p, method)
	if err != nil {
		return err
	}
	ch := p.challenge(u.ID, u.SecurityPhone)
	ch.standIn = !matched
	a, err := s.askSend(r, ch, method)
	if err != nil {
		return err
	}
	code, err := s.Codes.Generate()
	if err != nil {
		a.release()
		return web.Unavailable(err)
	}
	ttl, seal := s.Policy.RecoveryRules().CodeLifetime, s.Codes.Seal(code, ch.binding()+"stand-in")
	switch {
	case !matched:
		// Counted as a send, as a matched one is.
	case a.d.Allow:
		ttl, seal = time.Duration(a.d.CodeTTLSeconds)*time.Second, s.Codes.Seal(code, ch.binding())
		m := s.codeMessage(ch, method, code, ttl)
		s.later(ctx, func(ctx context.Context) {
			if err := s.Sender.Send(ctx, m); err != nil {
				s.Log.WarnContext(ctx, "recovery code delivery failed", "user_id", m.UserID, "channel", m.Channel, "error", err)
			}
		})
	default:
		a.release()
		s.Log.InfoContext(ctx, "recovery code not sent", "user_id", u.ID, "channel", method, "reason", a.d.Reason, "policy_rev", a.d.Revision)
		if a.prevRec.ID != "" {
			seal = nil
		}
	}
	if seal != nil {
		if _, err := s.keepCode(ctx, ch, seal, method, ttl); err != nil {
			return err
		}
	}
	p.v.Stage, p.v.Channel = stageCode, method
	return s.saveRecovery(ctx, p)
}

// emailUsername sends the username of a recovery's profile to its email
// address, when it has one, and ends the recovery.
func (s *Room) emailUsername(w http.ResponseWriter, r *http.Request, p pendingRecovery) error {
	ctx := r.Context()
	if err := s.takeState(ctx, recoverFlow, p.id); err != nil {
		return err
	}
	endState(w, recoverFlow)
	u, d, err := s.completeUsername(r, p, notify.Email)
	if err != nil || !d.Allow {
		return err
	}
	m := notify.Message{Channel: notify.Email, To: u.Email, UserID: u.ID, Purpose: purposeRecover,
		Subject: s.Org + ": your username", Text: "You asked for the username of your " + s.Org + " profile: it is " +
			u.Username + ". If this wasn't you, call us."}
	s.later(ctx, func(ctx context.Context) {
		if err := s.Sender.Send(ctx, m); err != nil {
			s.Log.WarnContext(ctx, "recovered username not sent", "user_id", u.ID, "error", err)
		}
	})
	return nil
}

// recoveryUser reads the recovery's profile when it can receive by method,
// and otherwise looks up a profile nobody has, so that both read the store
// alike. It reports whether the profile was found.
func (s *Room) recoveryUser(ctx context.Context, p pendingRecovery, method string) (store.User, bool, error) {
	lookup := noProfile
	if p.matched(method) {
		lookup = p.v.UserID
	}
	u, err := s.Users.UserByID(ctx, lookup)
	switch {
	case err == nil:
		return u, true, nil
	case errors.Is(err, store.ErrNotFound) && lookup == noProfile:
		return store.User{}, false, nil
	}
	return store.User{}, false, web.Unavailable(fmt.Errorf("recovery: %w", err))
}

// completeUsername asks the recover point to complete a username recovery
// the person passed by method, and sends the notices it names in the
// background. A recovery whose profile cannot receive by method is asked
// about as one that matched nothing, and refused.
func (s *Room) completeUsername(r *http.Request, p pendingRecovery, method string) (store.User, policies.Decision, error) {
	ctx := r.Context()
	u, matched, err := s.recoveryUser(ctx, p, method)
	if err != nil {
		return store.User{}, policies.Decision{}, err
	}
	client := s.Facts.Client(ctx, s.Site.ClientIP(r))
	d := s.decideRecovery(r, client, s.accountFacts(ctx, u, matched), policies.Recovery{Kind: recoverUsername, Stage: "complete",
		IdentityVerified: matched, QuestionsAnswered: p.v.Questions, VerifiedBy: method})
	if !d.Allow {
		if matched {
			s.Log.InfoContext(ctx, "recovery refused", "kind", recoverUsername, "stage", "complete", "reason", d.Reason, "policy_rev", d.Revision)
		}
		return u, d, nil
	}
	s.notify(ctx, u, d.Notify, true)
	s.Log.InfoContext(ctx, "username recovered", "user_id", u.ID, "method", method)
	return u, d, nil
}

// notify sends the notices of events about u in the background; unlocked
// false drops account_unlocked (the profile was not locked after all).
func (s *Room) notify(ctx context.Context, u store.User, events []string, unlocked bool) {
	s.later(ctx, func(ctx context.Context) {
		for _, event := range events {
			if event != "account_unlocked" || unlocked {
				s.Notices.Send(ctx, u.ID, u.SecurityPhone, u.Email, event)
			}
		}
	})
}

// verifyRecovery checks a typed recovery code. For a username it completes
// the recovery and returns the profile; for a password it moves on to the
// new password.
func (s *Room) verifyRecovery(w http.ResponseWriter, r *http.Request, kind, typed string) (store.User, error) {
	ctx := r.Context()
	p, err := s.loadRecovery(r, kind, stageCode)
	if err != nil {
		return store.User{}, err
	}
	channel, err := s.check(r, p.challenge("", ""), typed)
	if err != nil {
		return store.User{}, err
	}
	if !p.matched(channel) {
		return store.User{}, web.Unavailable(errors.New("recovery verify: a stand-in code passed"))
	}
	if kind == recoverPassword {
		p.v.Stage, p.v.VerifiedBy = stageNewPassword, channel
		return store.User{}, s.saveRecovery(ctx, p)
	}
	if err := s.takeState(ctx, recoverFlow, p.id); err != nil {
		return store.User{}, err
	}
	endState(w, recoverFlow)
	u, d, err := s.completeUsername(r, p, channel)
	if err != nil {
		return store.User{}, err
	}
	if !d.Allow {
		return store.User{}, s.Site.Denial(d)
	}
	return u, nil
}

// PasswordForm is what the last step of a password recovery reads.
type PasswordForm struct {
	NewPassword     string `json:"new_password"`
	ConfirmPassword string `json:"confirm_password"`
}

// completePassword sets the recovered profile's new password when the
// recover point accepts it: the profile is unlocked, its failure counts
// are cleared, every session of it ends and the notices go. The recovery's
// record is taken before anything changes, so that it changes one password
// at most.
func (s *Room) completePassword(w http.ResponseWriter, r *http.Request, f PasswordForm) error {
	ctx, now := r.Context(), s.Now()
	p, err := s.loadRecovery(r, recoverPassword, stageNewPassword)
	if err != nil {
		return err
	}
	if f.NewPassword == "" {
		return fieldError("new_password", msgNewPassword)
	}
	if len(f.NewPassword) > credential.MaxPasswordLen {
		f.NewPassword = f.NewPassword[:credential.MaxPasswordLen+1]
	}
	if subtle.ConstantTimeCompare([]byte(f.NewPassword), []byte(f.ConfirmPassword)) != 1 {
		return fieldError("confirm_password", msgPasswordsDiffer)
	}
	u, err := s.Users.UserByID(ctx, p.v.UserID)
	if err != nil {
		return web.Unavailable(fmt.Errorf("recovery: %w", err))
	}
	pw := s.Passwords.Facts(f.NewPassword, u.Username, u.DisplayName)
	client := s.Facts.Client(ctx, s.Site.ClientIP(r))
	d := s.decideRecovery(r, client, s.accountFacts(ctx, u, true), policies.Recovery{Kind: recoverPassword, Stage: "complete",
		IdentityVerified: true, QuestionsAnswered: p.v.Questions, VerifiedBy: p.v.VerifiedBy, NewPassword: &pw})
	if !d.Allow {
		s.Log.InfoContext(ctx, "recovery refused", "kind", recoverPassword, "stage", "complete", "reason", d.Reason, "policy_rev", d.Revision)
		return s.newPasswordDenial(d)
	}
	hash, err := s.hash(ctx, "recovery", f.NewPassword)
	if err != nil {
		return err
	}
	if err := s.takeState(ctx, recoverFlow, p.id); err != nil {
		return err
	}
	endState(w, recoverFlow)
	if err := s.Users.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
		return web.Unavailable(fmt.Errorf("recovery: set password: %w", err))
	}
	unlocked := false
	if d.Unlock {
		if unlocked, err = s.Users.UnlockUser(ctx, u.ID, now); err != nil {
			return web.Unavailable(fmt.Errorf("recovery: unlock: %w", err))
		}
	}
	if d.ResetFailures {
		if err := s.Users.ResetLoginFailures(ctx, u.ID); err != nil {
			return web.Unavailable(fmt.Errorf("recovery: reset failures: %w", err))
		}
	}
	ended, err := s.Sessions.EndUserSessions(ctx, u.ID, "")
	if err != nil {
		return web.Unavailable(fmt.Errorf("recovery: %w", err))
	}
	s.notify(ctx, u, d.Notify, unlocked)
	s.Log.InfoContext(ctx, "password recovered", "user_id", u.ID, "unlocked", unlocked, "sessions_ended", ended)
	return nil
}

// newPasswordDenial is a refusal of a new password, tied to its field.
func (s *Room) newPasswordDenial(d policies.Decision) error {
	err := s.denial(d)
	var fe *FieldError
	if errors.As(err, &fe) && fe.Field == "password" {
		fe.Field = "new_password"
	}
	return err
}
