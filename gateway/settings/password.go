package settings

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// PasswordChecker measures a new password for the policies: its length as
// policies.PasswordLength counts it, whether it holds the username or one
// of the person's names, whether it is common. It never keeps or logs the
// password, and is safe for concurrent use.
type PasswordChecker interface {
	Facts(password, username string, names ...string) policies.PasswordFacts
}

type passwordRequest struct {
	Current string `json:"current_password"`
	New     string `json:"new_password"`
}

// apiChangePassword changes the password.
func (s *Room) apiChangePassword(w http.ResponseWriter, r *http.Request) error {
	var req passwordRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	if err := s.changePassword(w, r, id, req.Current, req.New, ""); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "password_changed", Message: msgPasswordChanged})
	return nil
}

const (
	msgPasswordChanged = "Your password is changed. You were signed out everywhere else."
	msgWrongCurrent    = "The current password you entered is incorrect. Check it and try again."
)

// changePassword replaces the password. The settings point judges the new
// password's facts and wants a fresh step-up (which returns to rd, see
// allowed); then the current password is checked with argon2id as at
// login. A wrong one is a login failure: it counts toward the lock as the
// login_password point decides, on the count the store's increment
// returned. A right one clears the count, unless a failure racing it
// reached the lock first. The new hash is stored, every other session of
// the profile ends, this one continues under a new ID, and the person is
// told by a notice.
func (s *Room) changePassword(w http.ResponseWriter, r *http.Request, id session.Identity, current, next, rd string) error {
	ctx := r.Context()
	if s.Passwords == nil {
		// A gateway that cannot judge a new password takes none.
		return web.Unavailable(errors.New("change password: no password checker"))
	}
	if current == "" || next == "" {
		return &web.Error{Status: http.StatusBadRequest, Reason: policies.ReasonBadRequest,
			Message: "Enter your current password and the new one."}
	}
	if len(current) > credential.MaxPasswordLen || len(next) > credential.MaxPasswordLen {
		return &web.Error{Status: http.StatusBadRequest, Reason: policies.ReasonBadRequest,
			Message: "That password is too long. Choose a shorter one.", Err: errors.New("change password: password over the size limit")}
	}
	// The profile is read anew: the session's copy may be seconds old, and
	// the hash and the lock must be the store's.
	user, err := s.Users.UserByID(ctx, id.User.ID)
	if errors.Is(err, store.ErrNotFound) {
		return &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonNoSession, Message: web.MsgSessionEnded, Err: err}
	}
	if err != nil {
		return web.Unavailable(fmt.Errorf("change password: %w", err))
	}
	id.User = user
	pf := s.Passwords.Facts(next, user.Username, user.DisplayName)
	change := &policies.Change{Kind: "password", NewPassword: &pf}
	if err := s.allowedChange(w, r, id, change, rd); err != nil {
		return s.passwordRefusal(err)
	}
	ok, err := s.Hasher.Verify(ctx, user.PasswordHash, current)
	if errors.Is(err, credential.ErrBusy) {
		return web.Busy(fmt.Errorf("change password: %w", err), busyRetryAfter)
	}
	if err != nil {
		return web.Unavailable(fmt.Errorf("change password: verify password: %w", err))
	}
	if !ok {
		return s.wrongCurrentPassword(r, id)
	}
	confirmed, err := s.Users.ConfirmLogin(ctx, user.ID, s.Policy.MaxConsecutiveFailures())
	if err != nil {
		return web.Unavailable(fmt.Errorf("change password: reset failures: %w", err))
	}
	if !confirmed {
		// A wrong password racing this one locked the profile (or is about
		// to): the policy answers for a locked profile.
		id.User.Locked = true
		if err := s.allowedChange(w, r, id, change, rd); err != nil {
			return err
		}
		return web.Unavailable(errors.New("change password: policy allows a change to a locked profile"))
	}
	hash, err := s.Hasher.Hash(ctx, next)
	if errors.Is(err, credential.ErrBusy) {
		return web.Busy(fmt.Errorf("change password: %w", err), busyRetryAfter)
	}
	if err != nil {
		return web.Unavailable(fmt.Errorf("change password: hash: %w", err))
	}
	if err := s.Users.SetPasswordHash(ctx, user.ID, hash, s.Now()); err != nil {
		return web.Unavailable(fmt.Errorf("change password: %w", err))
	}
	// The session continues under a new ID, and every other session of the
	// profile ends: whoever knew the old password is signed out.
	renewed, err := s.Sessions.Renew(w, r, id)
	if err != nil {
		return web.Unavailable(err)
	}
	ended, err := s.Sessions.EndUserSessions(ctx, user.ID, renewed.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	s.Log.InfoContext(ctx, "password changed", "user_id", user.ID, "sessions_ended", ended)
	s.Notices.Send(ctx, user.ID, user.SecurityPhone, user.Email, "password_changed")
	return nil
}

// busyRetryAfter is the Retry-After, in seconds, of a change refused
// because every hashing slot was busy.
const busyRetryAfter = 2

// wrongCurrentPassword counts a wrong current password as a login failure:
// the login_password point decides whether it counts and whether it locks,
// first on the count read with the profile and then, when concurrent
// failures moved it, again on the count the store's increment returned.
// The person is told the password was wrong; after the failure that locks
// the profile, that it is locked.
func (s *Room) wrongCurrentPassword(r *http.Request, id session.Identity) error {
	ctx := r.Context()
	user := id.User
	now := s.Now()
	in := policies.Input{
		Point: policies.PointLoginPassword, Now: now.Unix(), Client: s.Facts.Client(ctx, s.Site.ClientIP(r)),
		Account: facts.Account(user, true), Device: policies.Device{},
		Request: policies.Request{Host: web.HostName(r.Host), Path: r.URL.Path, Method: r.Method},
		Attempt: policies.PasswordAttempt(false),
	}
	d := s.Policy.Decide(ctx, in)
	if d.CountFailure {
		n, err := s.Users.AddLoginFailure(ctx, user.ID)
		if err != nil {
			return web.Unavailable(fmt.Errorf("change password: count failure: %w", err))
		}
		if n-1 != in.Account.ConsecutiveFailures {
			in.Account.ConsecutiveFailures = n - 1
			d = s.Policy.Decide(ctx, in)
		}
	}
	lockedNow := false
	if d.Lock {
		var err error
		if lockedNow, err = s.Users.LockUser(ctx, user.ID, now); err != nil {
			return web.Unavailable(fmt.Errorf("change password: lock profile: %w", err))
		}
		if lockedNow {
			s.Log.InfoContext(ctx, "profile locked", "user_id", user.ID, "policy_rev", d.Revision)
		}
	}
	for _, event := range d.Notify {
		if event == "account_locked" && !lockedNow {
			continue // a concurrent failure locked it and notified
		}
		s.Notices.Send(ctx, user.ID, user.SecurityPhone, user.Email, event)
	}
	s.Log.InfoContext(ctx, "settings change refused", "user_id", user.ID, "kind", "password", "reason", d.Reason, "policy_rev", d.Revision)
	// The cached copies of the profile (its count, its lock) go, in
	// every session of it.
	s.Sessions.RefreshUser(user.ID)
	e := &web.Error{Status: http.StatusForbidden, Reason: policies.ReasonBadCredentials, Message: msgWrongCurrent,
		Err: errors.New("change password: wrong current password")}
	if d.Lock {
		e.Message = s.Site.Message("account_locked")
	}
	return e
}

// passwordRefusal says what to change when the policy refused the new
// password; any other refusal is returned as it is.
func (s *Room) passwordRefusal(err error) error {
	var e *web.Error
	if !errors.As(err, &e) || !passwordReason(e.Reason) {
		return err
	}
	var rules policies.PasswordRules
	if p, ok := s.Policy.(interface{ PasswordRules() policies.PasswordRules }); ok {
		rules = p.PasswordRules()
	}
	e.Message = sentence((&policies.PasswordError{Reason: e.Reason, Rules: rules}).Error())
	return e
}

// passwordReason reports whether a policy reason refuses the new password
// itself (rather than the change).
func passwordReason(reason string) bool {
	return strings.HasPrefix(reason, "password_")
}

// sentence makes a message of a lowercase phrase: a capital, a full stop.
func sentence(s string) string {
	c, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(c)) + s[n:] + "."
}

func (s *Room) passwordForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	if err == nil {
		err = s.changePassword(w, r, id, r.PostFormValue("current_password"), r.PostFormValue("new_password"), afterStepUp)
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	return done(w, r, "password_changed")
}
