package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
)

const (
	// PendingCookie names the login that has passed the password but not
	// yet the step-up the policy asked for.
	PendingCookie = "__Host-portcullis-pending"
	// KindPending is the kind of the records behind pending logins.
	KindPending = "pending"
	// pendingTTL bounds how long a person has to pass the step-up after
	// the password: longer than a code's lifetime, so a code sent late in
	// the window can still be used.
	pendingTTL = 30 * time.Minute
)

// ErrNoPending is a request without a live pending login on this host.
var ErrNoPending = errors.New("no pending login")

// Pending is a login that has passed the password and waits for a step-up.
// Nothing upstream and no setting is reachable with it: it is not a session.
type Pending struct {
	// ID is the record's ID (the SHA-256 of the cookie's token).
	ID     string `json:"-"`
	UserID string `json:"-"`
	// Methods are the step-ups the policy offered, in its order.
	Methods []string `json:"methods"`
	// Lifetime bounds the session the login opens once the step-up passes.
	Lifetime time.Duration `json:"lifetime"`
	// Return is where the person was going (a path or an absolute URL to
	// check again when used).
	Return string `json:"return,omitempty"`
	// Host is the host the login was made on; the pending login is valid
	// there only.
	Host       string    `json:"host"`
	PasswordAt time.Time `json:"password_at"`
	ExpiresAt  time.Time `json:"-"`
	// Purpose is what the step-up is for: "login" for a login from an
	// unrecognised device, "settings" for a fresh step-up inside a session
	// before a security setting changes.
	Purpose string `json:"purpose"`
	// SessionID is the session a settings step-up freshens; empty for a
	// login.
	SessionID string `json:"session_id,omitempty"`
	// DeviceID is the registered device a login's password was typed on
	// ("" for none): the session the login opens names it.
	DeviceID string `json:"device_id,omitempty"`
	// NewPhone is the number a security-phone change confirms (E.164):
	// the code goes there, and the change takes effect when it is typed.
	NewPhone string `json:"new_phone,omitempty"`
}

// Purposes of a pending step-up.
const (
	PurposeLogin       = "login"
	PurposeSettings    = "settings"
	PurposePhoneChange = "phone_change"
)

// Offers reports whether the policy offered method.
func (p Pending) Offers(method string) bool {
	for _, m := range p.Methods {
		if m == method {
			return true
		}
	}
	return false
}

// BeginPending records that user passed the password on this host and must
// now pass one of methods, and sets the pending cookie. Any session the
// browser had on this host is ended: the person is signing in anew.
func (m *Manager) BeginPending(w http.ResponseWriter, r *http.Request, user store.User, methods []string, deviceID string, lifetime time.Duration, rd string) (Pending, error) {
	m.EndCurrent(r)
	token, id, err := web.NewToken(m.rand)
	if err != nil {
		return Pending{}, err
	}
	now := m.now()
	p := Pending{ID: id, UserID: user.ID, Methods: methods, Lifetime: lifetime, Return: rd,
		Host: web.HostName(r.Host), PasswordAt: now, ExpiresAt: now.Add(pendingTTL), Purpose: PurposeLogin, DeviceID: deviceID}
	return p, m.putPending(w, r, token, p)
}

// BeginStepUp is BeginStepUpTo without a return path: once the step-up
// passes, the step-up room sends the browser to "/" (a JSON client carries
// on by itself).
func (m *Manager) BeginStepUp(w http.ResponseWriter, r *http.Request, id Identity, methods []string) (Pending, error) {
	return m.BeginStepUpTo(w, r, id, methods, "")
}

// BeginStepUpTo records that the signed-in person must pass one of methods
// before a security setting changes, and sets the pending cookie. The
// session stays as it is until the step-up passes; then it is replaced by
// one under a new ID, and the person goes to rd (a path on this host, kept
// in Return and checked again when used).
func (m *Manager) BeginStepUpTo(w http.ResponseWriter, r *http.Request, id Identity, methods []string, rd string) (Pending, error) {
	return m.beginInSession(w, r, id, methods, PurposeSettings, "", rd)
}

// BeginPhoneChange records that the signed-in person asked to make phone
// their security phone, to be confirmed with a code sent to it by one of
// methods; once confirmed, the person goes to rd (as for BeginStepUpTo).
func (m *Manager) BeginPhoneChange(w http.ResponseWriter, r *http.Request, id Identity, methods []string, phone, rd string) (Pending, error) {
	return m.beginInSession(w, r, id, methods, PurposePhoneChange, phone, rd)
}

func (m *Manager) beginInSession(w http.ResponseWriter, r *http.Request, id Identity, methods []string, purpose, phone, rd string) (Pending, error) {
	token, pid, err := web.NewToken(m.rand)
	if err != nil {
		return Pending{}, err
	}
	expires := m.now().Add(pendingTTL)
	if id.Session.ExpiresAt.Before(expires) {
		expires = id.Session.ExpiresAt
	}
	p := Pending{ID: pid, UserID: id.User.ID, Methods: methods, Host: web.HostName(r.Host), PasswordAt: id.Session.AuthTime,
		ExpiresAt: expires, Purpose: purpose, SessionID: id.Session.ID, NewPhone: phone, Return: rd}
	return p, m.putPending(w, r, token, p)
}

func (m *Manager) putPending(w http.ResponseWriter, r *http.Request, token string, p Pending) error {
	payload, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := m.records.PutRecord(r.Context(), store.Record{ID: p.ID, Kind: KindPending, Subject: p.UserID,
		Payload: payload, ExpiresAt: p.ExpiresAt}, m.now()); err != nil {
		return fmt.Errorf("begin pending step-up: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: PendingCookie, Value: token, Path: "/", MaxAge: int(p.ExpiresAt.Sub(m.now()) / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return nil
}

// CurrentPending returns the request's pending login on this host;
// ErrNoPending when there is none (no cookie, unknown, expired, used, or for
// another host).
func (m *Manager) CurrentPending(r *http.Request) (Pending, error) {
	c, err := r.Cookie(PendingCookie)
	if err != nil || !web.ValidToken(c.Value) {
		return Pending{}, ErrNoPending
	}
	rec, err := m.records.GetRecord(r.Context(), KindPending, web.TokenID(c.Value), m.now())
	if errors.Is(err, store.ErrNotFound) {
		return Pending{}, ErrNoPending
	}
	if err != nil {
		return Pending{}, fmt.Errorf("pending login: %w", err)
	}
	var p Pending
	if err := json.Unmarshal(rec.Payload, &p); err != nil {
		return Pending{}, fmt.Errorf("pending login: %w", err)
	}
	if p.Host != web.HostName(r.Host) {
		return Pending{}, ErrNoPending
	}
	p.ID, p.UserID, p.ExpiresAt = rec.ID, rec.Subject, rec.ExpiresAt
	return p, nil
}

// CompletePending ends the pending step-up (once: of concurrent completions
// one wins, the rest get ErrNoPending). For a login it opens the session
// with methods (the password and the step-up used); for a settings step-up
// it replaces the session it freshens with one of the same login under a
// new ID, whose methods add the step-up's and whose AuthTime is now.
// ErrNoPending also when that session has ended meanwhile. The session
// names the device deviceID when it is set (one registered as the step-up
// passes), else the login's own (p.DeviceID, or the freshened session's).
func (m *Manager) CompletePending(w http.ResponseWriter, r *http.Request, p Pending, methods []string, deviceID string) (store.Session, error) {
	if _, err := m.records.TakeRecord(r.Context(), KindPending, p.ID, m.now()); errors.Is(err, store.ErrNotFound) {
		return store.Session{}, ErrNoPending
	} else if err != nil {
		return store.Session{}, fmt.Errorf("complete pending step-up: %w", err)
	}
	clearPendingCookie(w)
	if p.Purpose == PurposePhoneChange {
		// A confirmation changes a setting, not the session.
		return store.Session{}, nil
	}
	if p.SessionID == "" {
		if deviceID == "" {
			deviceID = p.DeviceID
		}
		return m.Start(w, r, store.User{ID: p.UserID}, methods, deviceID, p.Lifetime)
	}
	old, ok, err := m.ByID(r.Context(), p.SessionID, web.HostName(r.Host))
	if err != nil {
		return store.Session{}, err
	}
	if !ok || old.User.ID != p.UserID {
		return store.Session{}, ErrNoPending
	}
	m.cache.remove(old.Session.ID)
	if err := m.sessions.DeleteSession(r.Context(), old.Session.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Session{}, fmt.Errorf("complete pending step-up: %w", err)
	}
	used := slices.Clone(old.Session.Methods)
	for _, meth := range methods {
		if !slices.Contains(used, meth) {
			used = append(used, meth)
		}
	}
	if deviceID == "" {
		deviceID = old.Session.DeviceID
	}
	return m.open(w, r, store.Session{LoginID: old.Session.LoginID, UserID: p.UserID, Methods: used,
		AuthTime: m.now(), ExpiresAt: old.Session.ExpiresAt, DeviceID: deviceID})
}

// DropPending ends a pending step-up without a response to clear its
// cookie on (the cookie then names nothing).
func (m *Manager) DropPending(ctx context.Context, p Pending) {
	if _, err := m.records.TakeRecord(ctx, KindPending, p.ID, m.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.ErrorContext(ctx, "drop pending step-up", "error", err)
	}
}

// EndPending abandons the request's pending login, if any.
func (m *Manager) EndPending(w http.ResponseWriter, r *http.Request) {
	if p, err := m.CurrentPending(r); err == nil {
		if _, err := m.records.TakeRecord(r.Context(), KindPending, p.ID, m.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			m.log.ErrorContext(r.Context(), "end pending login", "error", err)
		}
	}
	clearPendingCookie(w)
}

func clearPendingCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: PendingCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}
