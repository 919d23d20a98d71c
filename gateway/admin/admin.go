// Package admin is the gateway's administration API: JSON endpoints under
// /admin/v1/ on the admin listener for what an administrator does for a
// customer who called the bank (unlock a profile, replace the security
// phone after verifying them offline, end sessions, remove registered
// devices, explain a refused decision) and for the operator (rotate the
// assertion signing key). Every caller presents a bearer token; each token
// is named, and the name is who the audit log says acted. Every request is
// audit-logged, reads included, whatever its outcome.
//
// The same steps are used by `portcullis admin` when it works on the store
// directly (SetSecurityPhone, Unlock), so both ways of administering behave
// alike.
package admin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// Prefix is the path every endpoint of the API lies under.
const Prefix = "/admin/v1/"

// Token is one administrator's bearer token.
type Token struct {
	// Name is who the audit log says acted: a person or a system.
	Name string
	// Secret is the token as the administrator presents it. New keeps
	// only its SHA-256.
	Secret []byte
}

// Users is what the API reads and changes of profiles.
type Users interface {
	// UserByName returns store.ErrNotFound for an unknown username.
	UserByName(ctx context.Context, username string) (store.User, error)
	UnlockUser(ctx context.Context, userID string, at time.Time) (bool, error)
	SetSecurityPhone(ctx context.Context, userID, phone string, at time.Time) error
}

// Sessions lists and ends a user's sessions. *session.Manager implements
// it, and must be the gateway's own manager, so that an ended session
// leaves this instance's cache at once and its next request is refused.
// EndSession returns store.ErrNotFound (wrapped) when the user has no such
// session.
type Sessions interface {
	OfUser(ctx context.Context, userID string) ([]store.Session, error)
	EndSession(ctx context.Context, userID, sessionID string) error
	EndUserSessions(ctx context.Context, userID, keep string) (int, error)
	// EndDeviceSessions ends the user's logins made from the device and
	// returns how many sessions it ended.
	EndDeviceSessions(ctx context.Context, userID, deviceID string) (int, error)
}

// Devices lists and removes a user's registered devices. DeleteDevice
// returns store.ErrNotFound when the user has no device with that ID.
type Devices interface {
	ListDevices(ctx context.Context, userID string, now time.Time) ([]store.Device, error)
	DeleteDevice(ctx context.Context, userID, id string) error
}

// Keys is the assertion signer whose key the API rotates.
// *assertion.Signer implements it.
type Keys interface {
	// KeyID names the key signing now.
	KeyID() string
	// Rotate makes a new key the signing key; the old one stays
	// published until nothing it signed is still valid.
	Rotate(ctx context.Context) error
}

// WhyFunc finds a decision in the decision logs and explains it
// (policies.Why over the configured log); an error wrapping
// policies.ErrDecisionNotFound means no log line has the ID.
type WhyFunc func(ctx context.Context, decisionID string) (*policies.WhyReport, error)

// DecisionsFunc lists the newest decisions about a profile in the decision
// logs, newest first, at most limit (policies.UserDecisions over the
// configured log).
type DecisionsFunc func(ctx context.Context, userID string, limit int) ([]policies.LoggedDecision, error)

// Deps are what a Handler works with. Tokens may be empty: the API is then
// off, and answers 404 to everything. Why may be nil when no decision log
// is configured: the endpoint then answers 404.
type Deps struct {
	Tokens   []Token
	Users    Users
	Sessions Sessions
	Devices  Devices
	Keys     Keys
	// Phones types a new security phone; VoIP numbers and numbers that
	// are not valid are refused.
	Phones facts.Phones
	Why    WhyFunc
	// Decisions, like Why, is nil without a decision log.
	Decisions DecisionsFunc
	// ServerKey is the key sessions are named under in listings (the code
	// key, which replicas share, so that a session listed by one is ended
	// by another): a session's own ID is what the store finds it by, and
	// never leaves the gateway. At least 32 bytes.
	ServerKey []byte
	Log       *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Handler serves the API. Create it with New; it is safe for concurrent
// use.
type Handler struct {
	tokens []namedDigest
	deps   Deps
	mux    *http.ServeMux
	// handleKey names sessions in listings (see handle).
	handleKey []byte
}

type namedDigest struct {
	name   string
	digest [sha256.Size]byte
}

// New validates deps and builds the handler.
func New(deps Deps) (*Handler, error) {
	if deps.Users == nil || deps.Sessions == nil || deps.Devices == nil || deps.Keys == nil || deps.Phones == nil || deps.Log == nil {
		return nil, errors.New("admin: the user, session and device stores, the signer, a phone classifier and a logger are required")
	}
	if len(deps.ServerKey) < 32 {
		return nil, errors.New("admin: the server key must be at least 32 bytes")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	mac := hmac.New(sha256.New, deps.ServerKey)
	mac.Write([]byte("portcullis admin session handles v1"))
	h := &Handler{deps: deps, mux: http.NewServeMux(), handleKey: mac.Sum(nil)}
	seen := map[string]bool{}
	for _, t := range deps.Tokens {
		switch {
		case t.Name == "":
			return nil, errors.New("admin: a token without a name")
		case seen[t.Name]:
			return nil, fmt.Errorf("admin: two tokens are named %q", t.Name)
		case len(t.Secret) == 0:
			return nil, fmt.Errorf("admin: token %q is empty", t.Name)
		}
		seen[t.Name] = true
		h.tokens = append(h.tokens, namedDigest{name: t.Name, digest: sha256.Sum256(t.Secret)})
	}
	users := Prefix + "users/{username}/"
	h.userRoute("POST "+users+"unlock", "user.unlock", h.unlock)
	h.route("PUT "+users+"security-phone", "user.security_phone", h.setPhone)
	h.userRoute("GET "+users+"sessions", "user.sessions.list", h.listSessions)
	h.userRoute("DELETE "+users+"sessions", "user.sessions.end_all", h.endSessions)
	h.userRoute("DELETE "+users+"sessions/{id}", "user.sessions.end", h.endSession)
	h.userRoute("GET "+users+"devices", "user.devices.list", h.listDevices)
	h.userRoute("DELETE "+users+"devices/{id}", "user.devices.remove", h.removeDevice)
	h.userRoute("GET "+users+"decisions", "user.decisions", h.userDecisions)
	h.route("GET "+Prefix+"decisions/{id}/why", "decision.why", h.why)
	h.route("POST "+Prefix+"keys/rotate", "keys.rotate", h.rotate)
	h.mux.Handle("/", h.audited("unknown", func(*http.Request, *audit) (any, error) { return nil, web.NotFound() }))
	return h, nil
}

// ServeHTTP answers a request under Prefix. Without tokens it answers 404
// to everything, and logs nothing: the API is off.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if len(h.tokens) == 0 {
		writeError(w, web.NotFound())
		return
	}
	h.mux.ServeHTTP(w, r)
}

// audit is what one request's audit line says beyond who, what and the
// outcome: the target and the details the action adds.
type audit struct {
	username, target string
	attrs            []slog.Attr
}

// actionFunc performs an action and returns the response body, or the
// error to answer with.
type actionFunc func(r *http.Request, a *audit) (any, error)

func (h *Handler) route(pattern, action string, f actionFunc) {
	h.mux.Handle(pattern, h.audited(action, f))
}

// userRoute routes an action on the profile the path names: f is called
// with it, and an unknown username is a 404.
func (h *Handler) userRoute(pattern, action string, f func(*http.Request, *audit, store.User) (any, error)) {
	h.route(pattern, action, func(r *http.Request, a *audit) (any, error) {
		u, err := h.user(r, a)
		if err != nil {
			return nil, err
		}
		return f(r, a, u)
	})
}

// audited authenticates the request, runs f and writes one audit line,
// whatever happened.
func (h *Handler) audited(action string, f actionFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := &audit{username: r.PathValue("username"), target: r.PathValue("id")}
		who, ok := h.authenticate(r)
		var body any
		var err error
		if !ok {
			err = &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonUnauthenticated, Message: "A valid administrator token is required."}
			w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis admin"`)
		} else {
			body, err = f(r, a)
		}
		status, outcome := http.StatusOK, policies.ReasonOK
		var e *web.Error
		switch {
		case err == nil:
		case errors.As(err, &e):
			status, outcome = e.Status, e.Reason
		default:
			e = &web.Error{Status: http.StatusServiceUnavailable, Reason: policies.ReasonUnavailable,
				Message: "The store or another dependency did not answer.", Err: err}
			status, outcome = e.Status, e.Reason
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		attrs := append([]slog.Attr{slog.Bool("audit", true), slog.String("who", who), slog.String("action", action),
			slog.String("username", a.username), slog.String("target_id", a.target),
			slog.String("outcome", outcome), slog.Int("status", status), slog.String("remote_addr", r.RemoteAddr),
			slog.Time("at", h.deps.Now().UTC())}, a.attrs...)
		if err != nil && e.Err != nil && status >= 500 {
			attrs = append(attrs, slog.Any("error", e.Err))
		}
		h.deps.Log.LogAttrs(context.WithoutCancel(r.Context()), level, "admin request", attrs...)
		if err != nil {
			writeError(w, e)
			return
		}
		web.WriteJSON(w, status, body)
	})
}

// authenticate returns the name of the token the request presents. The
// presented token's SHA-256 is compared with every configured token's in
// constant time, all of them each time, so neither the time taken nor the
// token's length says which token, or how much of one, was right.
func (h *Handler) authenticate(r *http.Request) (string, bool) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := -1
	for i := range h.tokens {
		if subtle.ConstantTimeCompare(sum[:], h.tokens[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", false
	}
	return h.tokens[match].name, true
}

// errorBody is every error's JSON.
type errorBody struct {
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, e *web.Error) {
	web.WriteJSON(w, e.Status, errorBody{Status: "error", Reason: e.Reason, Message: e.Message})
}

// notFound is the answer for an unknown user, session, device or decision.
func notFound(what string) *web.Error {
	return &web.Error{Status: http.StatusNotFound, Reason: policies.ReasonNotFound, Message: "No such " + what + "."}
}

func badRequest(message string, err error) *web.Error {
	return &web.Error{Status: http.StatusBadRequest, Reason: policies.ReasonBadRequest, Message: message, Err: err}
}

// user finds the profile the path names; 404 for an unknown one.
func (h *Handler) user(r *http.Request, a *audit) (store.User, error) {
	u, err := h.deps.Users.UserByName(r.Context(), credential.CanonicalUsername(r.PathValue("username")))
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, notFound("user")
	}
	if err != nil {
		return store.User{}, fmt.Errorf("find user: %w", err)
	}
	a.username = u.Username
	a.attrs = append(a.attrs, slog.String("user_id", u.ID))
	return u, nil
}

// UnlockResult is the answer to an unlock.
type UnlockResult struct {
	Username string `json:"username"`
	UserID   string `json:"user_id"`
	// WasLocked is false for a profile that was not locked: its failure
	// counts are reset all the same.
	WasLocked bool `json:"was_locked"`
}

func (h *Handler) unlock(r *http.Request, a *audit, u store.User) (any, error) {
	was, err := h.deps.Users.UnlockUser(r.Context(), u.ID, h.deps.Now())
	if err != nil {
		return nil, fmt.Errorf("unlock: %w", err)
	}
	a.attrs = append(a.attrs, slog.Bool("was_locked", was))
	return UnlockResult{Username: u.Username, UserID: u.ID, WasLocked: was}, nil
}

// PhoneRequest is the body of a security-phone change: the number as the
// customer gave it (read in the classifier's default region unless it
// starts with +), or "" to remove the phone.
type PhoneRequest struct {
	Phone string `json:"phone"`
}

// PhoneResult is the answer to a security-phone change. Phone is masked.
type PhoneResult struct {
	Username string `json:"username"`
	UserID   string `json:"user_id"`
	Removed  bool   `json:"removed"`
	Replaced bool   `json:"replaced"`
	Phone    string `json:"phone,omitempty"`
	LineType string `json:"line_type,omitempty"`
}

func (h *Handler) setPhone(r *http.Request, a *audit) (any, error) {
	var req PhoneRequest
	if err := web.DecodeJSON(nopWriter{}, r, &req); err != nil {
		return nil, badRequest(`The body must be a JSON object {"phone": "+1..."}.`, err)
	}
	c, err := SetSecurityPhone(r.Context(), h.deps.Users, h.deps.Phones, r.PathValue("username"), req.Phone, h.deps.Now())
	if c.User.ID != "" {
		a.username = c.User.Username
		a.attrs = append(a.attrs, slog.String("user_id", c.User.ID))
	}
	var pe *PhoneError
	switch {
	case errors.Is(err, store.ErrNotFound) && c.User.ID == "":
		return nil, notFound("user")
	case errors.As(err, &pe):
		a.attrs = append(a.attrs, slog.String("refused_line_type", pe.LineType))
		return nil, badRequest(pe.Error(), err)
	case err != nil:
		return nil, err
	}
	a.attrs = append(a.attrs, slog.Bool("removed", c.Removed), slog.Bool("replaced", c.Replaced))
	if !c.Removed {
		a.attrs = append(a.attrs, slog.String("phone", policies.MaskPhone(c.E164)), slog.String("line_type", c.Phone.LineType))
	}
	return PhoneResult{Username: c.User.Username, UserID: c.User.ID, Removed: c.Removed, Replaced: c.Replaced,
		Phone: c.Phone.Masked, LineType: c.Phone.LineType}, nil
}

// nopWriter is the ResponseWriter DecodeJSON is given to bound the body
// with: the API writes its own answer.
type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}

// SessionInfo is one session as the API lists it. ID is the session's
// handle, an HMAC of its ID that replicas share: the ID itself (what the
// store finds a session by) never leaves the gateway.
type SessionInfo struct {
	ID        string    `json:"id"`
	Host      string    `json:"host"`
	Methods   []string  `json:"methods"`
	AuthTime  time.Time `json:"auth_time"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SessionList is the answer to a session listing, most recently seen
// first.
type SessionList struct {
	Username string        `json:"username"`
	Sessions []SessionInfo `json:"sessions"`
}

func (h *Handler) listSessions(r *http.Request, a *audit, u store.User) (any, error) {
	live, err := h.deps.Sessions.OfUser(r.Context(), u.ID)
	if err != nil {
		return nil, err
	}
	out := SessionList{Username: u.Username, Sessions: make([]SessionInfo, 0, len(live))}
	for _, s := range live {
		out.Sessions = append(out.Sessions, SessionInfo{ID: h.handle(s.ID), Host: s.Host, Methods: s.Methods,
			AuthTime: s.AuthTime.UTC(), LastSeen: s.LastSeen.UTC(), ExpiresAt: s.ExpiresAt.UTC()})
	}
	return out, nil
}

// Ended is the answer to ending sessions or removing a device: how many
// went.
type Ended struct {
	Username string `json:"username"`
	Ended    int    `json:"ended"`
}

func (h *Handler) endSessions(r *http.Request, a *audit, u store.User) (any, error) {
	n, err := h.deps.Sessions.EndUserSessions(r.Context(), u.ID, "")
	if err != nil {
		return nil, err
	}
	a.attrs = append(a.attrs, slog.Int("ended", n))
	return Ended{Username: u.Username, Ended: n}, nil
}

func (h *Handler) endSession(r *http.Request, a *audit, u store.User) (any, error) {
	live, err := h.deps.Sessions.OfUser(r.Context(), u.ID)
	if err != nil {
		return nil, err
	}
	want := []byte(r.PathValue("id"))
	for _, s := range live {
		if !hmac.Equal([]byte(h.handle(s.ID)), want) {
			continue
		}
		err := h.deps.Sessions.EndSession(r.Context(), u.ID, s.ID)
		if errors.Is(err, store.ErrNotFound) {
			break // ended meanwhile
		}
		if err != nil {
			return nil, err
		}
		return Ended{Username: u.Username, Ended: 1}, nil
	}
	return nil, notFound("session")
}

// handle is the name a session is listed and ended by.
func (h *Handler) handle(sessionID string) string {
	mac := hmac.New(sha256.New, h.handleKey)
	mac.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// DeviceInfo is one registered device as the API lists it. ID is the
// store's ID (the SHA-256 of the device cookie's secret).
type DeviceInfo struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// DeviceList is the answer to a device listing, most recently used
// first.
type DeviceList struct {
	Username string       `json:"username"`
	Devices  []DeviceInfo `json:"devices"`
}

func (h *Handler) listDevices(r *http.Request, a *audit, u store.User) (any, error) {
	ds, err := h.deps.Devices.ListDevices(r.Context(), u.ID, h.deps.Now())
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	out := DeviceList{Username: u.Username, Devices: make([]DeviceInfo, 0, len(ds))}
	for _, d := range ds {
		out.Devices = append(out.Devices, DeviceInfo{ID: d.ID, Name: d.Name, CreatedAt: d.CreatedAt.UTC(),
			LastUsedAt: d.LastUsedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()})
	}
	return out, nil
}

// RemovedDevice is the answer to a device's removal: the device removed
// (Ended is 1) and the sessions signed in from it, ended with it.
type RemovedDevice struct {
	Username      string `json:"username"`
	Ended         int    `json:"ended"`
	SessionsEnded int    `json:"sessions_ended"`
}

// removeDevice removes the device and ends the logins made from it, on
// every replica: the removed device keeps no access, and its next login
// asks for the extra verification. The profile's other sessions go on.
// When its sessions cannot be ended the device is gone all the same and
// the answer is an error: ending the profile's sessions (DELETE sessions)
// completes it.
func (h *Handler) removeDevice(r *http.Request, a *audit, u store.User) (any, error) {
	id := r.PathValue("id")
	err := h.deps.Devices.DeleteDevice(r.Context(), u.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("device")
	}
	if err != nil {
		return nil, fmt.Errorf("remove device: %w", err)
	}
	n, err := h.deps.Sessions.EndDeviceSessions(r.Context(), u.ID, id)
	if err != nil {
		return nil, fmt.Errorf("remove device: removed, but its sessions were not ended: %w", err)
	}
	a.attrs = append(a.attrs, slog.Int("sessions_ended", n))
	return RemovedDevice{Username: u.Username, Ended: 1, SessionsEnded: n}, nil
}

// DefaultDecisions is how many decisions a user's listing gives without a
// limit.
const DefaultDecisions = 50

// DecisionList is a profile's newest decisions, newest first.
type DecisionList struct {
	Username  string                    `json:"username"`
	Decisions []policies.LoggedDecision `json:"decisions"`
}

func (h *Handler) userDecisions(r *http.Request, a *audit, u store.User) (any, error) {
	if h.deps.Decisions == nil {
		return nil, noDecisionLog()
	}
	limit := DefaultDecisions
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > policies.MaxUserDecisions {
			return nil, badRequest(fmt.Sprintf("limit must be a number from 1 to %d.", policies.MaxUserDecisions), err)
		}
		limit = n
	}
	ds, err := h.deps.Decisions(r.Context(), u.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("list decisions: %w", err)
	}
	a.attrs = append(a.attrs, slog.Int("decisions", len(ds)))
	return DecisionList{Username: u.Username, Decisions: append([]policies.LoggedDecision{}, ds...)}, nil
}

// noDecisionLog answers a question only the decision log can answer.
func noDecisionLog() *web.Error {
	return &web.Error{Status: http.StatusNotFound, Reason: policies.ReasonNotFound,
		Message: "No decision log is configured (policies.decision_log)."}
}

func (h *Handler) why(r *http.Request, a *audit) (any, error) {
	if h.deps.Why == nil {
		return nil, noDecisionLog()
	}
	rep, err := h.deps.Why(r.Context(), r.PathValue("id"))
	if errors.Is(err, policies.ErrDecisionNotFound) {
		return nil, notFound("decision in the decision logs")
	}
	if err != nil {
		return nil, fmt.Errorf("explain decision: %w", err)
	}
	a.attrs = append(a.attrs, slog.Bool("same_result", rep.SameResult))
	return rep, nil
}

// Rotated is the answer to a key rotation.
type Rotated struct {
	KeyID   string `json:"key_id"`
	Retired string `json:"retired"`
}

func (h *Handler) rotate(r *http.Request, a *audit) (any, error) {
	old := h.deps.Keys.KeyID()
	if err := h.deps.Keys.Rotate(r.Context()); err != nil {
		return nil, fmt.Errorf("rotate signing key: %w", err)
	}
	now := h.deps.Keys.KeyID()
	a.target = now
	a.attrs = append(a.attrs, slog.String("retired", old))
	return Rotated{KeyID: now, Retired: old}, nil
}
