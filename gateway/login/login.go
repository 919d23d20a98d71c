package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/portcullis/portcullis/policies"
)

const (
	maxUsernameLen = 64
	maxPasswordLen = 256
	// grantTTL is how long a cross-host exchange code may be redeemed.
	grantTTL = 30 * time.Second
)

func (s *Server) routesMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET "+reservedPrefix+"login", s.handle(s.loginPage))
	mux.Handle("POST "+reservedPrefix+"login", s.handle(s.loginForm))
	mux.Handle("GET "+reservedPrefix+"authorize", s.handle(s.authorize))
	mux.Handle("GET "+reservedPrefix+"callback", s.handle(s.callback))
	mux.Handle("GET "+reservedPrefix+"logout", s.handle(s.logoutPage))
	mux.Handle("POST "+reservedPrefix+"logout", s.handle(s.logoutForm))
	mux.Handle("GET "+reservedPrefix+"jwks.json", s.signer.JWKSHandler())
	mux.Handle("GET "+reservedPrefix+"static/", http.StripPrefix(reservedPrefix+"static/", http.FileServerFS(staticFS)))
	mux.Handle("POST "+apiPrefix+"login", s.handle(s.apiLogin))
	mux.Handle("POST "+apiPrefix+"logout", s.handle(s.apiLogout))
	mux.Handle("GET "+apiPrefix+"session", s.handle(s.apiSession))
	mux.Handle(reservedPrefix, s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &Error{Status: http.StatusNotFound, Reason: "not_found", Message: msgNotFound}
	}))
	return mux
}

// CanonicalUsername is the form usernames are stored and compared in:
// trimmed, Unicode NFKC, lowercase.
func CanonicalUsername(s string) string {
	return strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))
}

// ValidUsername reports whether a canonical username may be chosen.
func ValidUsername(u string) error {
	if len(u) < 3 || len(u) > maxUsernameLen {
		return fmt.Errorf("a username has 3 to %d characters", maxUsernameLen)
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '@') {
			return errors.New("a username may contain letters, digits and . - _ @ only")
		}
	}
	return nil
}

// ValidPassword reports whether a new password meets the password rules.
func ValidPassword(p string) error {
	n := len([]rune(p))
	if n < 12 || len(p) > maxPasswordLen {
		return fmt.Errorf("a password has at least 12 characters and at most %d bytes", maxPasswordLen)
	}
	return nil
}

// signIn checks a username and password and opens a session on this host.
// The policies decide at two points: "login" before the password is checked
// (network signals, the per-address throttle) and "login_password" after it
// (count, lock, sign in or ask for a step-up). Unknown usernames and wrong
// passwords take the same path, cost one argon2id hash each and get the
// same answer.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, username, password string) (User, error) {
	ctx := r.Context()
	now := s.now()
	ip := s.clientIP(r)
	name := CanonicalUsername(username)
	var user User
	found := false
	if len(name) <= maxUsernameLen && len(password) <= maxPasswordLen && name != "" {
		u, err := s.store.UserByName(ctx, name)
		switch {
		case err == nil:
			user, found = u, true
		case !errors.Is(err, ErrNotFound):
			return User{}, errUnavailable(fmt.Errorf("sign in: %w", err))
		}
	}
	// The attempt takes its place in the address's failure count before
	// anything is judged, and is judged on the count that step returned:
	// a burst of parallel guesses cannot all see the same earlier count.
	// An attempt that does not end as a counted failure gives its place
	// back.
	// An unknown address (an unreadable forwarding header) has no count
	// of its own: every such client would share one. The policies refuse it.
	client := s.clientFacts(ctx, ip)
	ipKey, window := ipFailureKey(ip), s.policy.IPFailureWindow()
	if !client.IPUnknown {
		reserved, err := s.store.AddHit(ctx, ipKey, window, now)
		if err != nil {
			return User{}, errUnavailable(fmt.Errorf("sign in: failures from address: %w", err))
		}
		client.RecentFailures = reserved - 1
	}
	keepHit := false
	defer func() {
		if client.IPUnknown || keepHit {
			return
		}
		if err := s.store.ReleaseHit(context.WithoutCancel(ctx), ipKey, window, now); err != nil {
			s.log.ErrorContext(ctx, "release address attempt", "remote_ip", ip.String(), "error", err)
		}
	}()
	in := policies.Input{
		Point:   policies.PointLogin,
		Now:     now.Unix(),
		Client:  client,
		Account: accountFacts(user, found),
		Request: policies.Request{Host: hostName(r.Host), Path: r.URL.Path, Method: r.Method},
	}
	logAttrs := []slog.Attr{slog.String("remote_ip", ip.String())}
	if found {
		logAttrs = append(logAttrs, slog.String("user_id", user.ID))
	}
	if d := s.policy.Decide(ctx, in); !d.Allow {
		s.log.LogAttrs(ctx, slog.LevelInfo, "sign in refused", append(logAttrs, slog.String("reason", d.Reason), slog.String("policy_rev", d.Revision))...)
		return User{}, s.denial(d)
	}
	ok, err := s.hasher.Verify(ctx, user.PasswordHash, password)
	if err != nil {
		return User{}, errUnavailable(fmt.Errorf("sign in: verify password: %w", err))
	}
	in.Point = policies.PointLoginPassword
	in.Attempt = policies.PasswordAttempt(ok && found)
	d, err := s.judgePassword(ctx, in, user, found, now)
	if err != nil {
		return User{}, errUnavailable(err)
	}
	keepHit = d.CountIPFailure
	if !d.Allow {
		s.log.LogAttrs(ctx, slog.LevelInfo, "sign in refused", append(logAttrs, slog.String("reason", d.Reason), slog.String("policy_rev", d.Revision))...)
		return User{}, s.denial(d)
	}
	if !ok || !found {
		// A policy that lets a wrong password through is a broken policy.
		return User{}, errUnavailable(errors.New("sign in: policy allowed a wrong password"))
	}
	s.upgradeHash(ctx, user, password)
	limit := s.cfg.Session.MaxLifetime
	if p := time.Duration(d.SessionMaxSeconds) * time.Second; p > 0 && p < limit {
		limit = p
	}
	if _, err := s.startSession(w, r, user, []string{"pwd"}, limit); err != nil {
		return User{}, errUnavailable(err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "signed in", logAttrs...)
	return user, nil
}

// accountFacts is what the policies know about an account.
func accountFacts(u User, found bool) policies.Account {
	if !found {
		return policies.Account{}
	}
	return policies.Account{
		Exists:              true,
		Locked:              u.Locked,
		ConsecutiveFailures: u.FailedLogins,
		Products:            u.Products,
	}
}

// judgePassword asks the login_password decision and carries out what it
// asks for: counting the failure, locking, resetting the count, notifying.
// The account facts in `in` were read before the password check, and other
// attempts may have counted since, so the outcome is settled on what the
// store's atomic steps return: a failure is judged again on the count its
// own increment gave back, and a success stands only if the reset finds the
// profile still unlocked and under the limit. The decision returned is the
// one that stands.
func (s *Server) judgePassword(ctx context.Context, in policies.Input, user User, found bool, now time.Time) (policies.Decision, error) {
	d := s.policy.Decide(ctx, in)
	if !found {
		// A wrong password for a real account writes its count; an
		// unknown name writes to a counter of its own, so the two cases
		// cost the store the same and cannot be told apart by timing.
		if d.CountIPFailure {
			if _, err := s.store.AddHit(ctx, "login-fail-unknown-user", s.policy.IPFailureWindow(), now); err != nil {
				return d, fmt.Errorf("count failure: %w", err)
			}
		}
		return d, nil
	}
	if d.CountFailure {
		n, err := s.store.AddLoginFailure(ctx, user.ID)
		if err != nil {
			return d, fmt.Errorf("count failure: %w", err)
		}
		if n-1 != in.Account.ConsecutiveFailures {
			in.Account.ConsecutiveFailures = n - 1
			d = s.policy.Decide(ctx, in)
		}
	}
	if d.ResetFailures {
		confirmed, err := s.store.ConfirmLogin(ctx, user.ID, s.policy.MaxConsecutiveFailures())
		if err != nil {
			return d, fmt.Errorf("reset failures: %w", err)
		}
		if !confirmed {
			// A failure that raced this attempt locked the profile (or is
			// about to): the policy answers for a locked profile.
			in.Account.Locked = true
			if d = s.policy.Decide(ctx, in); d.Allow || d.ResetFailures {
				return d, errors.New("sign in: policy signs in a locked profile")
			}
		}
	}
	lockedNow := false
	if d.Lock {
		var err error
		if lockedNow, err = s.store.LockUser(ctx, user.ID, now); err != nil {
			return d, fmt.Errorf("lock profile: %w", err)
		}
		if lockedNow {
			s.log.InfoContext(ctx, "profile locked", "user_id", user.ID, "policy_rev", d.Revision)
		}
	}
	for _, event := range d.Notify {
		if event == "account_locked" && !lockedNow {
			continue // a concurrent failure locked it and notified
		}
		s.log.InfoContext(ctx, "customer notification", "event", event, "user_id", user.ID)
	}
	return d, nil
}

// upgradeHash rehashes a password stored with weaker parameters. Failure is
// logged and otherwise ignored: the old hash still works.
func (s *Server) upgradeHash(ctx context.Context, user User, password string) {
	if !s.hasher.NeedsRehash(user.PasswordHash) {
		return
	}
	h, err := s.hasher.Hash(ctx, password)
	if err == nil {
		err = s.store.SetPasswordHash(ctx, user.ID, h, s.now())
	}
	if err != nil {
		s.log.WarnContext(ctx, "rehash password", "user_id", user.ID, "error", err)
	}
}

// continueURL is where a browser goes after signing in: for an absolute
// target on another host, the authorize step that signs it in there; for a
// path, that path on this host.
func (s *Server) continueURL(r *http.Request, rd string) string {
	if p, ok := SafeReturnPath(rd); ok {
		return p
	}
	if _, _, ok := returnURL(rd, s.knownHost, s.servedPort(r)); ok {
		return reservedPrefix + "authorize?rd=" + url.QueryEscape(rd)
	}
	return "/"
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) error {
	rd := r.URL.Query().Get("rd")
	if _, ok, err := s.currentIdentity(r); err != nil {
		return errUnavailable(err)
	} else if ok {
		http.Redirect(w, r, s.continueURL(r, rd), http.StatusFound)
		return nil
	}
	return s.showLogin(w, r, http.StatusOK, rd, "", "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, status int, rd, username, msg string) error {
	token, err := s.csrfToken(w, r)
	if err != nil {
		return errUnavailable(err)
	}
	if s.continueURL(r, rd) == "/" && rd != "/" {
		rd = ""
	}
	s.render(w, r, status, "login", pageData{Title: "Sign in", CSRF: token, Return: rd, Username: username, Error: msg})
	return nil
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := checkFormCSRF(r); err != nil {
		return err
	}
	rd := r.PostFormValue("rd")
	username := r.PostFormValue("username")
	if _, err := s.signIn(w, r, username, r.PostFormValue("password")); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status < 500 {
			s.log.DebugContext(r.Context(), "login form refused", "reason", e.Reason)
			return s.showLogin(w, r, e.Status, rd, username, e.Message)
		}
		return err
	}
	http.Redirect(w, r, s.continueURL(r, rd), http.StatusSeeOther)
	return nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// decodeJSON reads a JSON API request body into v, a pointer to a struct,
// strictly: field names must match a json tag exactly (encoding/json would
// take "USERNAME" for "username"), no key may appear twice at any depth
// (encoding/json keeps the last), and nothing may follow the value. A
// filter in front of the gateway therefore sees the request the gateway
// acts on.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := checkJSON(r); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	if err != nil {
		return errBadRequest(fmt.Errorf("decode request: %w", err))
	}
	if err := checkJSONKeys(body, jsonFields(v)); err != nil {
		return errBadRequest(fmt.Errorf("decode request: %w", err))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRequest(fmt.Errorf("decode request: %w", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest(errors.New("decode request: trailing data"))
	}
	return nil
}

// jsonFields are the JSON names of the fields of the struct v points to.
func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	names := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
}

// checkJSONKeys checks that body is one JSON object whose keys are all in
// fields, spelt exactly, and that no object in it repeats a key.
func checkJSONKeys(body []byte, fields map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return errors.New("the body is not a JSON object")
	}
	return checkObject(dec, fields, 0)
}

// checkObject reads the rest of an object whose '{' was read. fields, when
// not nil, are the keys it may have.
func checkObject(dec *json.Decoder, fields map[string]bool, depth int) error {
	if depth > 16 {
		return errors.New("nested too deeply")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		if fields != nil && !fields[key] {
			return fmt.Errorf("unknown field %q", key)
		}
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

// checkValue reads one value, checking the objects inside it.
func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, nil, depth+1)
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}

func (s *Server) apiLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	user, err := s.signIn(w, r, req.Username, req.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiResponse{Status: "authenticated", User: user.Username})
	return nil
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request) error {
	id, ok, err := s.currentIdentity(r)
	if err != nil {
		return errUnavailable(err)
	}
	if !ok {
		writeJSON(w, http.StatusUnauthorized, apiResponse{Status: "unauthenticated", Reason: "no_session", Message: msgSessionEnded})
		return nil
	}
	writeJSON(w, http.StatusOK, struct {
		apiResponse
		Methods   []string  `json:"methods"`
		AuthTime  time.Time `json:"auth_time"`
		ExpiresAt time.Time `json:"expires_at"`
	}{apiResponse{Status: "authenticated", User: id.User.Username}, id.Session.Methods, id.Session.AuthTime, id.Session.ExpiresAt})
	return nil
}

// authorize runs on the login host. With a session there, it issues a
// single-use grant for the target host and sends the browser to that host's
// callback; without one, it shows the login page first.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.LoginHost == "" || hostName(r.Host) != s.cfg.LoginHost {
		return &Error{Status: http.StatusNotFound, Reason: "not_found", Message: msgNotFound}
	}
	rd := r.URL.Query().Get("rd")
	target, path, ok := returnURL(rd, s.knownHost, s.servedPort(r))
	if !ok {
		return errBadRequest(errors.New("authorize: bad return target"))
	}
	id, signedIn, err := s.currentIdentity(r)
	if err != nil {
		return errUnavailable(err)
	}
	if !signedIn {
		http.Redirect(w, r, reservedPrefix+"login?rd="+url.QueryEscape(rd), http.StatusFound)
		return nil
	}
	if hostName(target) == hostName(r.Host) {
		http.Redirect(w, r, path, http.StatusFound)
		return nil
	}
	code, gid, err := newToken(s.rand)
	if err != nil {
		return errUnavailable(err)
	}
	g := Grant{SessionID: id.Session.ID, Host: target, ExpiresAt: s.now().Add(grantTTL)}
	if err := s.store.PutGrant(r.Context(), gid, g); err != nil {
		return errUnavailable(fmt.Errorf("authorize: %w", err))
	}
	http.Redirect(w, r, "https://"+target+reservedPrefix+"callback?code="+url.QueryEscape(code)+"&rd="+url.QueryEscape(path), http.StatusFound)
	return nil
}

// callback redeems a grant on the host it was issued for and opens a session
// there that belongs to the same login.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	code := q.Get("code")
	rd, ok := SafeReturnPath(q.Get("rd"))
	if !ok {
		rd = "/"
	}
	if !validToken(code) {
		return errForbidden("bad_grant", errors.New("callback: malformed code"))
	}
	g, err := s.store.TakeGrant(r.Context(), tokenID(code), s.now())
	if errors.Is(err, ErrNotFound) {
		return errForbidden("bad_grant", errors.New("callback: unknown, used or expired code"))
	}
	if err != nil {
		return errUnavailable(fmt.Errorf("callback: %w", err))
	}
	if here := authority(hostName(r.Host), s.servedPort(r)); g.Host != here {
		return errForbidden("bad_grant", fmt.Errorf("callback: code for %s redeemed on %s", g.Host, here))
	}
	src, ok, err := s.identityByID(r.Context(), g.SessionID, s.cfg.LoginHost)
	if err != nil {
		return errUnavailable(err)
	}
	if !ok {
		http.Redirect(w, r, s.signInURL(r), http.StatusFound)
		return nil
	}
	s.endCurrentSession(r)
	tmpl := src.Session
	if _, err := s.openSession(w, r, Session{LoginID: tmpl.LoginID, UserID: tmpl.UserID, Methods: tmpl.Methods,
		AuthTime: tmpl.AuthTime, ExpiresAt: tmpl.ExpiresAt}); err != nil {
		return errUnavailable(err)
	}
	http.Redirect(w, r, rd, http.StatusFound)
	return nil
}

func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) error {
	token, err := s.csrfToken(w, r)
	if err != nil {
		return errUnavailable(err)
	}
	s.render(w, r, http.StatusOK, "logout", pageData{Title: "Sign out", CSRF: token})
	return nil
}

// signOut ends the request's login everywhere and clears this host's cookie.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) error {
	id, ok, err := s.currentIdentity(r)
	if err != nil {
		return errUnavailable(err)
	}
	if ok {
		if err := s.endLogin(r.Context(), id.Session.LoginID); err != nil {
			return errUnavailable(err)
		}
		s.log.InfoContext(r.Context(), "signed out", "user_id", id.User.ID)
	}
	clearCookie(w, sessionCookie)
	return nil
}

func (s *Server) logoutForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := checkFormCSRF(r); err != nil {
		return err
	}
	if err := s.signOut(w, r); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "message", pageData{Title: "Signed out", Message: msgSignedOut, Link: reservedPrefix + "login"})
	return nil
}

func (s *Server) apiLogout(w http.ResponseWriter, r *http.Request) error {
	if err := checkJSON(r); err != nil {
		return err
	}
	if err := s.signOut(w, r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiResponse{Status: "signed_out", Message: msgSignedOut})
	return nil
}
