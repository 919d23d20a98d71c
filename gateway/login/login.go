// Package login is the sign-in flow: the login page and form, the JSON
// login, session and logout calls, and the authorize and callback steps that
// carry one login across the gateway's hosts. The policies decide every
// step; the room carries out what they decide.
package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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

// Policy is what the room asks of the policies.
type Policy interface {
	Decide(ctx context.Context, in policies.Input) policies.Decision
	// IPFailureWindow is the window in which failed logins per client
	// address are counted.
	IPFailureWindow() time.Duration
	// MaxConsecutiveFailures is the number of wrong passwords in a row
	// that locks a profile.
	MaxConsecutiveFailures() int
}

// Users is what the room reads and changes of profiles.
type Users interface {
	UserByName(ctx context.Context, username string) (store.User, error)
	SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error
	AddLoginFailure(ctx context.Context, userID string) (int, error)
	ConfirmLogin(ctx context.Context, userID string, maxFailures int) (bool, error)
	LockUser(ctx context.Context, userID string, at time.Time) (bool, error)
}

// Factors lists the second factors a profile enrolled.
type Factors interface {
	FactorsOf(ctx context.Context, userID string) ([]store.Factor, error)
}

// Hits counts failed logins per source address.
type Hits interface {
	AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	ReleaseHit(ctx context.Context, key string, window time.Duration, now time.Time) error
}

// Deps are what the room works with. Every field must be set.
type Deps struct {
	Site     *web.Site
	Sessions *session.Manager
	Users    Users
	Factors  Factors
	Hits     Hits
	Devices  *device.Registry
	Notices  *notify.Notices
	Hasher   *credential.Hasher
	Policy   Policy
	Facts    *facts.Source
	// MaxLifetime bounds every login; a decision may shorten it.
	MaxLifetime time.Duration
	// Routed reports whether a path on a host reaches an upstream app or
	// the gateway's own pages.
	Routed func(host, path string) bool
	Log    *slog.Logger
	Now    func() time.Time
}

// Room serves the sign-in flow.
type Room struct {
	site     *web.Site
	sessions *session.Manager
	users    Users
	factors  Factors
	hits     Hits
	devices  *device.Registry
	notices  *notify.Notices
	hasher   *credential.Hasher
	policy   Policy
	facts    *facts.Source
	lifetime time.Duration
	routed   func(host, path string) bool
	log      *slog.Logger
	now      func() time.Time
}

// New returns the room.
func New(d Deps) *Room {
	return &Room{site: d.Site, sessions: d.Sessions, users: d.Users, factors: d.Factors, hits: d.Hits,
		devices: d.Devices, notices: d.Notices, hasher: d.Hasher,
		policy: d.Policy, facts: d.Facts, lifetime: d.MaxLifetime, routed: d.Routed, log: d.Log, now: d.Now}
}

// Register adds the room's routes to mux.
func (l *Room) Register(mux *http.ServeMux) {
	h := l.site.Handle
	mux.Handle("GET "+web.Prefix+"login", h(l.loginPage))
	mux.Handle("POST "+web.Prefix+"login", h(l.loginForm))
	mux.Handle("GET "+web.Prefix+"authorize", h(l.authorize))
	mux.Handle("GET "+web.Prefix+"callback", h(l.callback))
	mux.Handle("GET "+web.Prefix+"logout", h(l.logoutPage))
	mux.Handle("POST "+web.Prefix+"logout", h(l.logoutForm))
	mux.Handle("POST "+web.APIPrefix+"login", h(l.apiLogin))
	mux.Handle("POST "+web.APIPrefix+"logout", h(l.apiLogout))
	mux.Handle("GET "+web.APIPrefix+"session", h(l.apiSession))
}

// signIn checks a username and password and opens a session on this host.
// The policies decide at two points: "login" before the password is checked
// (network signals, the per-address throttle) and "login_password" after it
// (count, lock, sign in or ask for a step-up). Unknown usernames and wrong
// passwords take the same path, cost one argon2id hash each and get the
// same answer. A right password from a device the gateway does not
// recognise starts a pending login for the step-up the policy asks for
// (rd is where the person goes once it passes), and answers
// step_up_required with the methods offered.
func (l *Room) signIn(w http.ResponseWriter, r *http.Request, username, password, rd string) (store.User, error) {
	ctx := r.Context()
	now := l.now()
	ip := l.site.ClientIP(r)
	name := credential.CanonicalUsername(username)
	var user store.User
	found := false
	if len(name) <= credential.MaxUsernameLen && len(password) <= credential.MaxPasswordLen && name != "" {
		u, err := l.users.UserByName(ctx, name)
		switch {
		case err == nil:
			user, found = u, true
		case !errors.Is(err, store.ErrNotFound):
			return store.User{}, web.Unavailable(fmt.Errorf("sign in: %w", err))
		}
	}
	// The attempt takes its place in the address's failure count before
	// anything is judged, and is judged on the count that step returned:
	// a burst of parallel guesses cannot all see the same earlier count.
	// An attempt that does not end as a counted failure gives its place
	// back.
	// An unknown address (an unreadable forwarding header) has no count
	// of its own: every such client would share one. The policies refuse it.
	client := l.facts.Client(ctx, ip)
	ipKey, window := facts.IPFailureKey(ip), l.policy.IPFailureWindow()
	if !client.IPUnknown {
		reserved, err := l.hits.AddHit(ctx, ipKey, window, now)
		if err != nil {
			return store.User{}, web.Unavailable(fmt.Errorf("sign in: failures from address: %w", err))
		}
		client.RecentFailures = reserved - 1
	}
	keepHit := false
	defer func() {
		if client.IPUnknown || keepHit {
			return
		}
		if err := l.hits.ReleaseHit(context.WithoutCancel(ctx), ipKey, window, now); err != nil {
			l.log.ErrorContext(ctx, "release address attempt", "remote_ip", ip.String(), "error", err)
		}
	}()
	in := policies.Input{
		Point:   policies.PointLogin,
		Now:     now.Unix(),
		Client:  client,
		Account: facts.Account(user, found),
		Request: policies.Request{Host: web.HostName(r.Host), Path: r.URL.Path, Method: r.Method},
	}
	logAttrs := []slog.Attr{slog.String("remote_ip", ip.String())}
	if found {
		logAttrs = append(logAttrs, slog.String("user_id", user.ID))
	}
	if d := l.policy.Decide(ctx, in); !d.Allow {
		l.log.LogAttrs(ctx, slog.LevelInfo, "sign in refused", append(logAttrs, slog.String("reason", d.Reason), slog.String("policy_rev", d.Revision))...)
		return store.User{}, l.site.Denial(d)
	}
	ok, err := l.hasher.Verify(ctx, user.PasswordHash, password)
	if errors.Is(err, credential.ErrBusy) {
		// Every hashing slot stayed taken: the attempt is not judged, its
		// place in the address's count is given back, and the client is
		// asked to come back in a moment.
		return store.User{}, web.Busy(fmt.Errorf("sign in: %w", err), busyRetryAfter)
	}
	if err != nil {
		return store.User{}, web.Unavailable(fmt.Errorf("sign in: verify password: %w", err))
	}
	// The device cookie is looked up whether or not the name was found.
	var deviceID string
	if in.Device, deviceID, err = l.devices.Recognise(ctx, r, user.ID); err != nil {
		return store.User{}, web.Unavailable(fmt.Errorf("sign in: %w", err))
	}
	if ok && found {
		if err := l.secondFactors(ctx, &in.Account, user); err != nil {
			return store.User{}, web.Unavailable(fmt.Errorf("sign in: %w", err))
		}
	}
	in.Point = policies.PointLoginPassword
	in.Attempt = policies.PasswordAttempt(ok && found)
	d, err := l.judgePassword(ctx, in, user, found, now)
	if err != nil {
		return store.User{}, web.Unavailable(err)
	}
	keepHit = d.CountIPFailure
	if !d.Allow && d.Reason == policies.ReasonStepUpRequired && ok && found {
		limit := l.sessionLimit(d)
		if _, err := l.sessions.BeginPending(w, r, user, d.StepUp, deviceID, limit, rd); err != nil {
			return store.User{}, web.Unavailable(err)
		}
		l.log.LogAttrs(ctx, slog.LevelInfo, "step-up required", append(logAttrs, slog.Any("methods", d.StepUp), slog.String("policy_rev", d.Revision))...)
		return store.User{}, l.site.Denial(d)
	}
	if !d.Allow {
		l.log.LogAttrs(ctx, slog.LevelInfo, "sign in refused", append(logAttrs, slog.String("reason", d.Reason), slog.String("policy_rev", d.Revision))...)
		return store.User{}, l.site.Denial(d)
	}
	if !ok || !found {
		// A policy that lets a wrong password through is a broken policy.
		return store.User{}, web.Unavailable(errors.New("sign in: policy allowed a wrong password"))
	}
	l.upgradeHash(ctx, user, password)
	if _, err := l.sessions.Start(w, r, user, []string{"pwd"}, deviceID, l.sessionLimit(d)); err != nil {
		return store.User{}, web.Unavailable(err)
	}
	l.log.LogAttrs(ctx, slog.LevelInfo, "signed in", logAttrs...)
	return user, nil
}

// busyRetryAfter is the Retry-After, in seconds, of a sign-in refused
// because every hashing slot was busy.
const busyRetryAfter = 2

// sessionLimit is the lifetime of a session the decision opens: the
// configured maximum, or the policy's if shorter.
func (l *Room) sessionLimit(d policies.Decision) time.Duration {
	return session.Lifetime(l.lifetime, d)
}

// secondFactors adds to the account facts what the user can step up with.
func (l *Room) secondFactors(ctx context.Context, a *policies.Account, u store.User) error {
	fs, err := l.factors.FactorsOf(ctx, u.ID)
	if err != nil {
		return err
	}
	l.facts.SecondFactors(ctx, a, u, fs)
	return nil
}

// judgePassword asks the login_password decision and carries out what it
// asks for: counting the failure, locking, resetting the count, notifying.
// The account facts in `in` were read before the password check, and other
// attempts may have counted since, so the outcome is settled on what the
// store's atomic steps return: a failure is judged again on the count its
// own increment gave back, and a success stands only if the reset finds the
// profile still unlocked and under the limit. The decision returned is the
// one that stands.
func (l *Room) judgePassword(ctx context.Context, in policies.Input, user store.User, found bool, now time.Time) (policies.Decision, error) {
	d := l.policy.Decide(ctx, in)
	if !found {
		// A wrong password for a real account writes its count; an
		// unknown name writes to a counter of its own, so the two cases
		// cost the store the same and cannot be told apart by timing.
		if d.CountIPFailure {
			if _, err := l.hits.AddHit(ctx, "login-fail-unknown-user", l.policy.IPFailureWindow(), now); err != nil {
				return d, fmt.Errorf("count failure: %w", err)
			}
		}
		return d, nil
	}
	if d.CountFailure {
		n, err := l.users.AddLoginFailure(ctx, user.ID)
		if err != nil {
			return d, fmt.Errorf("count failure: %w", err)
		}
		if n-1 != in.Account.ConsecutiveFailures {
			in.Account.ConsecutiveFailures = n - 1
			d = l.policy.Decide(ctx, in)
		}
	}
	if d.ResetFailures {
		confirmed, err := l.users.ConfirmLogin(ctx, user.ID, l.policy.MaxConsecutiveFailures())
		if err != nil {
			return d, fmt.Errorf("reset failures: %w", err)
		}
		if !confirmed {
			// A failure that raced this attempt locked the profile (or is
			// about to): the policy answers for a locked profile.
			in.Account.Locked = true
			if d = l.policy.Decide(ctx, in); d.Allow || d.ResetFailures {
				return d, errors.New("sign in: policy signs in a locked profile")
			}
		}
	}
	lockedNow := false
	if d.Lock {
		var err error
		if lockedNow, err = l.users.LockUser(ctx, user.ID, now); err != nil {
			return d, fmt.Errorf("lock profile: %w", err)
		}
		if lockedNow {
			l.log.InfoContext(ctx, "profile locked", "user_id", user.ID, "policy_rev", d.Revision)
		}
	}
	for _, event := range d.Notify {
		if event == "account_locked" && !lockedNow {
			continue // a concurrent failure locked it and notified
		}
		l.notices.Send(ctx, user.ID, user.SecurityPhone, user.Email, event)
	}
	return d, nil
}

// upgradeHash rehashes a password stored with weaker parameters. Failure is
// logged and otherwise ignored: the old hash still works.
func (l *Room) upgradeHash(ctx context.Context, user store.User, password string) {
	if !l.hasher.NeedsRehash(user.PasswordHash) {
		return
	}
	h, err := l.hasher.Hash(ctx, password)
	if err == nil {
		err = l.users.SetPasswordHash(ctx, user.ID, h, l.now())
	}
	if err != nil {
		l.log.WarnContext(ctx, "rehash password", "user_id", user.ID, "error", err)
	}
}

func (l *Room) loginPage(w http.ResponseWriter, r *http.Request) error {
	rd := r.URL.Query().Get("rd")
	if _, ok, err := l.sessions.Current(r); err != nil {
		return web.Unavailable(err)
	} else if ok {
		next := l.site.ContinueURL(r, rd)
		if p, ok := web.SafeReturnPath(next); ok && l.routed != nil && !l.routed(web.HostName(r.Host), p) {
			// Nothing is served there (the login host's "/"): sending the
			// browser on would bring it straight back here.
			l.site.Render(w, r, http.StatusOK, "message", web.PageData{Title: "Signed in",
				Message: "You're signed in. Open the service you want to use."})
			return nil
		}
		http.Redirect(w, r, next, http.StatusFound)
		return nil
	}
	return l.showLogin(w, r, http.StatusOK, rd, "", "")
}

// doneMessage is what the sign-in page says after a flow that ends there
// (the done query parameter names it; anything else says nothing).
func doneMessage(key string) string {
	switch key {
	case "enrolled":
		return "Your profile is created. Sign in with your new username and password."
	case "password_reset":
		return "Your password is changed and your profile is unlocked. Sign in with your new password."
	}
	return ""
}

func (l *Room) showLogin(w http.ResponseWriter, r *http.Request, status int, rd, username, msg string) error {
	token, err := l.site.CSRFToken(w, r)
	if err != nil {
		return web.Unavailable(err)
	}
	if l.site.ContinueURL(r, rd) == "/" && rd != "/" {
		rd = ""
	}
	l.site.Render(w, r, status, "login", web.PageData{Title: "Sign in", CSRF: token, Return: rd, Username: username, Error: msg,
		Message: doneMessage(r.URL.Query().Get("done"))})
	return nil
}

func (l *Room) loginForm(w http.ResponseWriter, r *http.Request) error {
	if err := web.ReadForm(w, r); err != nil {
		return err
	}
	rd := r.PostFormValue("rd")
	username := r.PostFormValue("username")
	if _, err := l.signIn(w, r, username, r.PostFormValue("password"), rd); err != nil {
		var e *web.Error
		if errors.As(err, &e) && e.Reason == policies.ReasonStepUpRequired {
			http.Redirect(w, r, web.Prefix+"step-up", http.StatusSeeOther)
			return nil
		}
		if errors.As(err, &e) && e.Status < 500 {
			l.log.DebugContext(r.Context(), "login form refused", "reason", e.Reason)
			return l.showLogin(w, r, e.Status, rd, username, e.Message)
		}
		return err
	}
	http.Redirect(w, r, l.site.ContinueURL(r, rd), http.StatusSeeOther)
	return nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Return is where to go once signed in (after any step-up).
	Return string `json:"rd"`
}

func (l *Room) apiLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	user, err := l.signIn(w, r, req.Username, req.Password, req.Return)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "authenticated", User: user.Username})
	return nil
}

func (l *Room) apiSession(w http.ResponseWriter, r *http.Request) error {
	id, ok, err := l.sessions.Current(r)
	if err != nil {
		return web.Unavailable(err)
	}
	if !ok {
		web.WriteJSON(w, http.StatusUnauthorized, web.APIResponse{Status: "unauthenticated", Reason: policies.ReasonNoSession, Message: web.MsgSessionEnded})
		return nil
	}
	web.WriteJSON(w, http.StatusOK, struct {
		web.APIResponse
		Methods   []string  `json:"methods"`
		AuthTime  time.Time `json:"auth_time"`
		ExpiresAt time.Time `json:"expires_at"`
	}{web.APIResponse{Status: "authenticated", User: id.User.Username}, id.Session.Methods, id.Session.AuthTime, id.Session.ExpiresAt})
	return nil
}

// authorize runs on the login host. With a session there, it issues a
// single-use exchange code for the target host and sends the browser to that
// host's callback; without one, it shows the login page first.
func (l *Room) authorize(w http.ResponseWriter, r *http.Request) error {
	if !l.site.OnLoginHost(r) {
		return web.NotFound()
	}
	rd := r.URL.Query().Get("rd")
	target, path, ok := l.site.ReturnURL(r, rd)
	if !ok {
		return web.BadRequest(errors.New("authorize: bad return target"))
	}
	id, signedIn, err := l.sessions.Current(r)
	if err != nil {
		return web.Unavailable(err)
	}
	if !signedIn {
		http.Redirect(w, r, web.Prefix+"login?rd="+url.QueryEscape(rd), http.StatusFound)
		return nil
	}
	if web.HostName(target) == web.HostName(r.Host) {
		http.Redirect(w, r, path, http.StatusFound)
		return nil
	}
	code, err := l.sessions.Issue(r.Context(), id, target)
	if err != nil {
		return web.Unavailable(fmt.Errorf("authorize: %w", err))
	}
	http.Redirect(w, r, "https://"+target+web.Prefix+"callback?code="+url.QueryEscape(code)+"&rd="+url.QueryEscape(path), http.StatusFound)
	return nil
}

// callback redeems an exchange code on the host it was issued for and opens
// a session there that belongs to the same login.
func (l *Room) callback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	rd, ok := web.SafeReturnPath(q.Get("rd"))
	if !ok {
		rd = "/"
	}
	ok, err := l.sessions.Redeem(w, r, q.Get("code"), l.site.Here(r), l.site.LoginHost())
	if errors.Is(err, session.ErrBadExchange) {
		return web.Forbidden(policies.ReasonBadGrant, fmt.Errorf("callback: %w", err))
	}
	if err != nil {
		return web.Unavailable(fmt.Errorf("callback: %w", err))
	}
	if !ok {
		http.Redirect(w, r, l.site.SignInURL(r), http.StatusFound)
		return nil
	}
	http.Redirect(w, r, rd, http.StatusFound)
	return nil
}

func (l *Room) logoutPage(w http.ResponseWriter, r *http.Request) error {
	token, err := l.site.CSRFToken(w, r)
	if err != nil {
		return web.Unavailable(err)
	}
	l.site.Render(w, r, http.StatusOK, "logout", web.PageData{Title: "Sign out", CSRF: token})
	return nil
}

// signOut ends the request's login everywhere and clears this host's cookie.
func (l *Room) signOut(w http.ResponseWriter, r *http.Request) error {
	id, ok, err := l.sessions.Current(r)
	if err != nil {
		return web.Unavailable(err)
	}
	if ok {
		if err := l.sessions.EndLogin(r.Context(), id.Session.LoginID); err != nil {
			return web.Unavailable(err)
		}
		l.log.InfoContext(r.Context(), "signed out", "user_id", id.User.ID)
	}
	session.ClearCookie(w)
	return nil
}

func (l *Room) logoutForm(w http.ResponseWriter, r *http.Request) error {
	if err := web.ReadForm(w, r); err != nil {
		return err
	}
	if err := l.signOut(w, r); err != nil {
		return err
	}
	l.site.Render(w, r, http.StatusOK, "message", web.PageData{Title: "Signed out", Message: web.MsgSignedOut, Link: web.Prefix + "login"})
	return nil
}

func (l *Room) apiLogout(w http.ResponseWriter, r *http.Request) error {
	if err := web.CheckJSON(r); err != nil {
		return err
	}
	if err := l.signOut(w, r); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "signed_out", Message: web.MsgSignedOut})
	return nil
}
