// Package passkey is the passkey (WebAuthn) flow: a signed-in person adds a
// passkey after the settings point allows it (a fresh step-up), and anyone
// signs in with one from the login page, without a username. The ceremonies
// themselves are credential.Passkeys'; this room keeps each one in a
// single-use record, asks the policies, and opens the session.
//
// A passkey with user verification (a PIN or biometric on the
// authenticator) stands for the password and for the step-up at once: the
// policies are asked as for a right password, and the step-up they want is
// passed when they offer "passkey" among its methods. The session records
// Methods(). Passkeys work on the relying party's host (the login host) only.
package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
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

// Cookie names the sign-in ceremony of a browser that has no session: a
// random token whose hash is the ceremony record's ID.
const Cookie = "__Host-portcullis-passkey"

// Methods are the session's methods after a passkey sign-in: "passkey", the
// policies' name for the step-up, and "mfa" (RFC 8176: more than one
// factor), for the user verification that stands for the password. Two
// methods make the session stepped up at its sign-in (see session.Facts).
func Methods() []string { return []string{credential.KindPasskey, "mfa"} }

// Policy is what the room asks of the policies.
type Policy interface {
	Decide(ctx context.Context, in policies.Input) policies.Decision
	// IPFailureWindow is the window failures per client address are
	// counted in.
	IPFailureWindow() time.Duration
	// MaxConsecutiveFailures is the number of wrong passwords in a row
	// that locks a profile.
	MaxConsecutiveFailures() int
}

// Users is what the room reads and changes of profiles.
type Users interface {
	UserByID(ctx context.Context, id string) (store.User, error)
	ConfirmLogin(ctx context.Context, userID string, maxFailures int) (bool, error)
}

// Factors keeps the passkeys among a profile's factors.
type Factors interface {
	FactorsOf(ctx context.Context, userID string) ([]store.Factor, error)
	AddFactor(ctx context.Context, f store.Factor) error
	AdvanceFactor(ctx context.Context, userID, id string, counter int64, at time.Time) (bool, error)
}

// Records keeps ceremonies between their two steps.
type Records interface {
	PutRecord(ctx context.Context, r store.Record, now time.Time) error
	TakeRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error)
}

// Hits reads and adds to the failure count of client addresses.
type Hits interface {
	AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	Hits(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
}

// Deps are what the room works with. Every field must be set.
type Deps struct {
	Site     *web.Site
	Sessions *session.Manager
	// Passkeys is the relying party; its RPID is the host the room
	// answers on.
	Passkeys *credential.Passkeys
	Users    Users
	Factors  Factors
	Records  Records
	Hits     Hits
	Devices  *device.Registry
	Notices  *notify.Notices
	Facts    *facts.Source
	Policy   Policy
	// MaxLifetime bounds every login; a decision may shorten it.
	MaxLifetime time.Duration
	Log         *slog.Logger
	Now         func() time.Time
}

// Room serves the passkey flow.
type Room struct{ Deps }

// New returns the room.
func New(d Deps) *Room { return &Room{d} }

// Register adds the room's routes to mux.
func (s *Room) Register(mux *http.ServeMux) {
	h := s.Site.Handle
	mux.Handle("GET "+web.Prefix+"passkeys/passkey.js", http.HandlerFunc(serveScript))
	mux.Handle("POST "+web.APIPrefix+"passkeys/register/begin", h(s.registerBegin))
	mux.Handle("POST "+web.APIPrefix+"passkeys/register/finish", h(s.registerFinish))
	mux.Handle("POST "+web.APIPrefix+"passkeys/login/begin", h(s.loginBegin))
	mux.Handle("POST "+web.APIPrefix+"passkeys/login/finish", h(s.loginFinish))
}

// Messages of the flow.
const (
	msgStartAgain   = "Start again: that passkey request has ended."
	msgNotAdded     = "We couldn't add that passkey. Start again."
	msgDuplicate    = "That passkey is already registered."
	msgAdded        = "Your passkey is set up. You can use it to sign in."
	msgLoginRefused = "We couldn't sign you in with that passkey. Try again, or sign in with your username and password."
)

// registerID and loginID are the ceremony records' IDs: a registration is
// bound to the session that began it, a sign-in to the browser's cookie.
func registerID(sessionID string) string { return "register:" + sessionID }
func loginID(tokenID string) string      { return "login:" + tokenID }

func errStartAgain(err error) *web.Error {
	return &web.Error{Status: http.StatusForbidden, Reason: policies.ReasonBadRequest, Message: msgStartAgain, Err: err}
}

// onRelyingParty refuses a request to another host than the relying
// party's, where no passkey made for it can be used.
func (s *Room) onRelyingParty(r *http.Request) error {
	if web.HostName(r.Host) != s.Passkeys.RPID() {
		return web.NotFound()
	}
	return nil
}

// origin is the origin the browser signs ceremonies with on this request.
func (s *Room) origin(r *http.Request) string { return s.Passkeys.Origin(s.Site.ServedPort(r)) }

func requestFacts(r *http.Request) policies.Request {
	return policies.Request{Host: web.HostName(r.Host), Path: r.URL.Path, Method: r.Method}
}

// passkeyUser is a profile as the ceremonies need it.
func passkeyUser(u store.User, fs []store.Factor) credential.PasskeyUser {
	return credential.PasskeyUser{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Factors: fs}
}

// allowed asks the settings point whether the session may add a passkey,
// and returns the profile's factors. When the policy wants a fresh step-up,
// a step-up bound to this session is begun (the step-up room completes it)
// and the refusal lists its methods, as in the settings room.
func (s *Room) allowed(w http.ResponseWriter, r *http.Request, id session.Identity) ([]store.Factor, error) {
	ctx := r.Context()
	fs, err := s.Factors.FactorsOf(ctx, id.User.ID)
	if err != nil {
		return nil, web.Unavailable(err)
	}
	acct := facts.Account(id.User, true)
	s.Facts.SecondFactors(ctx, &acct, id.User, fs)
	d := s.Policy.Decide(ctx, policies.Input{
		Point: policies.PointSettings, Now: s.Now().Unix(), Client: s.Facts.Client(ctx, s.Site.ClientIP(r)),
		Account: acct, Request: requestFacts(r), Session: session.Facts(id.Session),
		Change: &policies.Change{Kind: credential.KindPasskey},
	})
	if d.Allow {
		return fs, nil
	}
	if len(d.StepUp) > 0 {
		if _, err := s.Sessions.BeginStepUp(w, r, id, d.StepUp); err != nil {
			return nil, web.Unavailable(err)
		}
	}
	s.Log.InfoContext(ctx, "settings change refused", "user_id", id.User.ID, "kind", credential.KindPasskey,
		"reason", d.Reason, "policy_rev", d.Revision)
	return nil, s.Site.Denial(d)
}

// optionsResponse carries the options for navigator.credentials.
type optionsResponse struct {
	Status  string             `json:"status"`
	Options credential.Options `json:"options"`
}

type emptyRequest struct{}

// registerBegin starts adding a passkey: with the settings point's leave, it
// answers the creation options and keeps the ceremony, bound to this
// session, for five minutes. A second begin replaces the first.
func (s *Room) registerBegin(w http.ResponseWriter, r *http.Request) error {
	if err := s.onRelyingParty(r); err != nil {
		return err
	}
	var req emptyRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	fs, err := s.allowed(w, r, id)
	if err != nil {
		return err
	}
	ctx, now := r.Context(), s.Now()
	rid := registerID(id.Session.ID)
	opts, rec, err := s.Passkeys.BeginRegistration(passkeyUser(id.User, fs), s.origin(r), rid, now)
	if err != nil {
		return web.Unavailable(err)
	}
	if _, err := s.Records.TakeRecord(ctx, credential.KindWebAuthn, rid, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		return web.Unavailable(err)
	}
	if err := s.Records.PutRecord(ctx, rec, now); err != nil {
		return web.Unavailable(fmt.Errorf("passkey registration: %w", err))
	}
	web.WriteJSON(w, http.StatusOK, optionsResponse{Status: "create_passkey", Options: opts})
	return nil
}

type registerFinishRequest struct {
	// Credential is the PublicKeyCredential create() returned, as JSON
	// with its binary members in base64url.
	Credential json.RawMessage `json:"credential"`
	// Name is what the person calls the passkey; empty for "Passkey".
	Name string `json:"name"`
}

// registerFinish verifies the new passkey against the session's ceremony
// (once: the ceremony is taken) and adds it to the profile.
func (s *Room) registerFinish(w http.ResponseWriter, r *http.Request) error {
	if err := s.onRelyingParty(r); err != nil {
		return err
	}
	var req registerFinishRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	// The step-up may have gone stale since the ceremony began.
	fs, err := s.allowed(w, r, id)
	if err != nil {
		return err
	}
	ctx, now := r.Context(), s.Now()
	rec, err := s.Records.TakeRecord(ctx, credential.KindWebAuthn, registerID(id.Session.ID), now)
	if errors.Is(err, store.ErrNotFound) {
		return errStartAgain(errors.New("passkey registration: no ceremony for this session"))
	} else if err != nil {
		return web.Unavailable(err)
	}
	name := req.Name
	if name == "" || len(name) > 64 {
		name = "Passkey"
	}
	f, err := s.Passkeys.FinishRegistration(passkeyUser(id.User, fs), rec, req.Credential, name, now)
	if errors.Is(err, credential.ErrPasskeyRefused) {
		return &web.Error{Status: http.StatusForbidden, Reason: policies.ReasonBadRequest, Message: msgNotAdded, Err: err}
	} else if err != nil {
		return web.Unavailable(err)
	}
	if err := s.Factors.AddFactor(ctx, f); errors.Is(err, store.ErrConflict) {
		return &web.Error{Status: http.StatusConflict, Reason: policies.ReasonBadRequest, Message: msgDuplicate, Err: err}
	} else if err != nil {
		return web.Unavailable(fmt.Errorf("add passkey: %w", err))
	}
	s.Log.InfoContext(ctx, "passkey added", "user_id", id.User.ID)
	s.Notices.Send(ctx, id.User.ID, id.User.SecurityPhone, id.User.Email, "passkey_added")
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "added", Message: msgAdded})
	return nil
}

// client is the client facts of the request, with the failures counted
// against its address.
func (s *Room) client(ctx context.Context, r *http.Request, now time.Time) (policies.Client, error) {
	ip := s.Site.ClientIP(r)
	c := s.Facts.Client(ctx, ip)
	if !c.IPUnknown {
		n, err := s.Hits.Hits(ctx, facts.IPFailureKey(ip), s.Policy.IPFailureWindow(), now)
		if err != nil {
			return c, fmt.Errorf("failures from address: %w", err)
		}
		c.RecentFailures = n
	}
	return c, nil
}

type loginBeginRequest struct {
	// Username, when given, binds the ceremony to that profile: a passkey
	// of any other is refused. The options do not depend on it.
	Username string `json:"username"`
}

// loginBegin starts a sign-in with a passkey: the login point judges the
// network first (anonymizers, the per-address throttle), then the request
// options are answered and the ceremony is kept for five minutes under the
// hash of a random token in the browser's Cookie.
func (s *Room) loginBegin(w http.ResponseWriter, r *http.Request) error {
	if err := s.onRelyingParty(r); err != nil {
		return err
	}
	var req loginBeginRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	ctx, now := r.Context(), s.Now()
	client, err := s.client(ctx, r, now)
	if err != nil {
		return web.Unavailable(err)
	}
	if d := s.Policy.Decide(ctx, policies.Input{Point: policies.PointLogin, Now: now.Unix(), Client: client,
		Request: requestFacts(r)}); !d.Allow {
		s.Log.InfoContext(ctx, "passkey sign in refused", "remote_ip", client.IP, "reason", d.Reason, "policy_rev", d.Revision)
		return s.Site.Denial(d)
	}
	subject := ""
	if req.Username != "" {
		if subject = credential.CanonicalUsername(req.Username); subject == "" || len(subject) > credential.MaxUsernameLen {
			return web.BadRequest(errors.New("passkey sign in: unreadable username"))
		}
	}
	token, tid, err := s.Site.NewToken()
	if err != nil {
		return web.Unavailable(err)
	}
	opts, rec, err := s.Passkeys.BeginLogin(s.origin(r), loginID(tid), subject, now)
	if err != nil {
		return web.Unavailable(err)
	}
	if err := s.Records.PutRecord(ctx, rec, now); err != nil {
		return web.Unavailable(fmt.Errorf("passkey sign in: %w", err))
	}
	http.SetCookie(w, &http.Cookie{
		Name: Cookie, Value: token, Path: "/", MaxAge: int(credential.CeremonyTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	web.WriteJSON(w, http.StatusOK, optionsResponse{Status: "get_passkey", Options: opts})
	return nil
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: Cookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

type loginFinishRequest struct {
	// Credential is the PublicKeyCredential get() returned, as JSON with
	// its binary members in base64url.
	Credential json.RawMessage `json:"credential"`
	// Return is where to go once signed in (after any step-up).
	Return string `json:"rd"`
}

// loginFinish verifies the assertion against the browser's ceremony (once:
// it is taken), finds the profile by the passkey's user handle, settles the
// signature count, and asks the policies as for a right password.
func (s *Room) loginFinish(w http.ResponseWriter, r *http.Request) error {
	if err := s.onRelyingParty(r); err != nil {
		return err
	}
	var req loginFinishRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	ctx, now := r.Context(), s.Now()
	c, err := r.Cookie(Cookie)
	clearCookie(w)
	if err != nil || !web.ValidToken(c.Value) {
		return errStartAgain(errors.New("passkey sign in: no ceremony cookie"))
	}
	rec, err := s.Records.TakeRecord(ctx, credential.KindWebAuthn, loginID(web.TokenID(c.Value)), now)
	if errors.Is(err, store.ErrNotFound) {
		return errStartAgain(errors.New("passkey sign in: the ceremony is used or expired"))
	} else if err != nil {
		return web.Unavailable(err)
	}
	client, err := s.client(ctx, r, now)
	if err != nil {
		return web.Unavailable(err)
	}
	in := policies.Input{Point: policies.PointLogin, Now: now.Unix(), Client: client, Request: requestFacts(r)}

	var (
		user    store.User
		factors []store.Factor
	)
	find := func(userID string) (credential.PasskeyUser, error) {
		u, err := s.Users.UserByID(ctx, userID)
		if err != nil {
			return credential.PasskeyUser{}, err
		}
		fs, err := s.Factors.FactorsOf(ctx, u.ID)
		if err != nil {
			return credential.PasskeyUser{}, err
		}
		user, factors = u, fs
		return passkeyUser(u, fs), nil
	}
	login, err := s.Passkeys.FinishLogin(rec, req.Credential, find, now)
	if errors.Is(err, credential.ErrPasskeyRefused) {
		return s.refuse(ctx, r, in, err)
	} else if err != nil {
		return web.Unavailable(err)
	}
	if rec.Subject != "" && rec.Subject != user.Username {
		return s.refuse(ctx, r, in, errors.New("the passkey is not the named profile's"))
	}
	advance, ok := credential.CheckSignCount(login.Stored, login.SignCount)
	if !ok {
		s.Log.WarnContext(ctx, "passkey signature count did not advance: possibly cloned", "user_id", user.ID,
			"stored", login.Stored, "got", login.SignCount)
		return s.refuse(ctx, r, in, fmt.Errorf("signature count %d after %d", login.SignCount, login.Stored))
	}
	if advance {
		fresh, err := s.Factors.AdvanceFactor(ctx, user.ID, login.FactorID, int64(login.SignCount), now)
		if errors.Is(err, store.ErrNotFound) {
			return s.refuse(ctx, r, in, errors.New("the passkey was removed"))
		} else if err != nil {
			return web.Unavailable(err)
		}
		if !fresh {
			s.Log.WarnContext(ctx, "passkey signature count used twice", "user_id", user.ID, "got", login.SignCount)
			return s.refuse(ctx, r, in, errors.New("a concurrent use of the same signature count won"))
		}
	}
	return s.signIn(w, r, in, user, factors, req.Return)
}

// refuse answers an assertion that did not sign anyone in. It is judged as
// a wrong password for no account: the login_password point decides
// whether it counts against the client address's throttle, and no
// profile's lockout counts it (a passkey is not guessed).
func (s *Room) refuse(ctx context.Context, r *http.Request, in policies.Input, cause error) error {
	in.Point, in.Account, in.Attempt = policies.PointLoginPassword, policies.Account{}, policies.PasswordAttempt(false)
	d := s.Policy.Decide(ctx, in)
	if d.CountIPFailure && !in.Client.IPUnknown {
		ip := s.Site.ClientIP(r)
		if _, err := s.Hits.AddHit(ctx, facts.IPFailureKey(ip), s.Policy.IPFailureWindow(), s.Now()); err != nil {
			return web.Unavailable(fmt.Errorf("passkey sign in: count failure: %w", err))
		}
	}
	e := s.Site.Denial(d) // logged with its cause where it is rendered
	if d.Reason == policies.ReasonBadCredentials {
		e.Message = msgLoginRefused
	}
	e.Err = fmt.Errorf("passkey sign in: %w", cause)
	return e
}

// signIn asks the policies about a verified passkey of user and carries
// out what they decide. The login point judges the network and the
// account; login_password is asked as for a right password, with the
// device's facts, and decides the rest: a locked profile is refused; a
// sign-in it allows, or one whose step-up it lets a passkey pass, opens the
// session with Methods(); a step-up it wants by other methods begins a
// pending login for them.
func (s *Room) signIn(w http.ResponseWriter, r *http.Request, in policies.Input, user store.User, fs []store.Factor, rd string) error {
	ctx := r.Context()
	in.Account = facts.Account(user, true)
	attrs := []slog.Attr{slog.String("remote_ip", in.Client.IP), slog.String("user_id", user.ID)}
	if d := s.Policy.Decide(ctx, in); !d.Allow {
		s.Log.LogAttrs(ctx, slog.LevelInfo, "passkey sign in refused", append(attrs, slog.String("reason", d.Reason), slog.String("policy_rev", d.Revision))...)
		return s.Site.Denial(d)
	}
	var err error
	var deviceID string
	if in.Device, deviceID, err = s.Devices.Recognise(ctx, r, user.ID); err != nil {
		return web.Unavailable(fmt.Errorf("passkey sign in: %w", err))
	}
	s.Facts.SecondFactors(ctx, &in.Account, user, fs)
	in.Point, in.Attempt = policies.PointLoginPassword, policies.PasswordAttempt(true)
	d := s.Policy.Decide(ctx, in)
	if d.ResetFailures {
		confirmed, err := s.Users.ConfirmLogin(ctx, user.ID, s.Policy.MaxConsecutiveFailures())
		if err != nil {
			return web.Unavailable(fmt.Errorf("passkey sign in: reset failures: %w", err))
		}
		if !confirmed {
			// A wrong password raced this sign-in and locked the profile
			// (or is about to): the policy answers for a locked one.
			in.Account.Locked = true
			if d = s.Policy.Decide(ctx, in); d.Allow || d.ResetFailures {
				return web.Unavailable(errors.New("passkey sign in: policy signs in a locked profile"))
			}
		}
	}
	limit := session.Lifetime(s.MaxLifetime, d)
	switch {
	case d.Allow, d.Reason == policies.ReasonStepUpRequired && slices.Contains(d.StepUp, credential.KindPasskey):
	case d.Reason == policies.ReasonStepUpRequired:
		// The policy wants a step-up the passkey is not one of: the passkey
		// stood for the password, and the step-up room does the rest.
		if _, err := s.Sessions.BeginPending(w, r, user, d.StepUp, deviceID, limit, rd); err != nil {
			return web.Unavailable(err)
		}
		s.Log.LogAttrs(ctx, slog.LevelInfo, "step-up required", append(attrs, slog.Any("methods", d.StepUp), slog.String("policy_rev", d.Revision))...)
		return s.Site.Denial(d)
	default:
		s.Log.LogAttrs(ctx, slog.LevelInfo, "passkey sign in refused", append(attrs, slog.String("reason", d.Reason), slog.String("policy_rev", d.Revision))...)
		return s.Site.Denial(d)
	}
	if _, err := s.Sessions.Start(w, r, user, Methods(), deviceID, limit); err != nil {
		return web.Unavailable(err)
	}
	s.Log.LogAttrs(ctx, slog.LevelInfo, "signed in", append(attrs, slog.String("method", credential.KindPasskey))...)
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "authenticated", User: user.Username, Redirect: s.Site.ContinueURL(r, rd)})
	return nil
}
