// Package settings is where a signed-in person manages their login
// security: the registered devices (listed with their names and first and
// last use, and removed one by one), the second factors (an authenticator
// app, challenge questions; listed and removed), the security phone, the
// password and the username, and the signed-in sessions (listed, ended one
// by one, or all at once: "log out everywhere"). It
// serves the same changes twice, as the JSON API and as HTML pages under
// /.portcullis/settings, both made by the same functions. A change is asked
// of the policies' settings point first; when it wants a fresh step-up, the
// room starts one inside the session (the step-up room completes it, under
// a new session ID) and the person repeats the change.
package settings

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
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
	// MaxConsecutiveFailures is the number of wrong passwords in a row
	// that locks a profile.
	MaxConsecutiveFailures() int
}

// Users is what the room reads and changes of profiles: the password, the
// username, and the failure count a wrong current password adds to.
type Users interface {
	UserByID(ctx context.Context, id string) (store.User, error)
	SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error
	// SetUsername is ErrConflict for a name another profile has.
	SetUsername(ctx context.Context, userID, username string, at time.Time) error
	AddLoginFailure(ctx context.Context, userID string) (int, error)
	ConfirmLogin(ctx context.Context, userID string, maxFailures int) (bool, error)
	LockUser(ctx context.Context, userID string, at time.Time) (bool, error)
}

// Factors lists the second factors a profile enrolled.
type Factors interface {
	FactorsOf(ctx context.Context, userID string) ([]store.Factor, error)
}

// Deps are what the room works with. Every field must be set, except
// Passwords: without it, password changes are refused.
type Deps struct {
	Site     *web.Site
	Sessions *session.Manager
	Users    Users
	// Passwords measures new passwords for the policies.
	Passwords PasswordChecker
	// HandleKey is the server key the handles of listed sessions are made
	// with (at least 32 bytes; replicas share it, so that a handle one
	// listed another can end).
	HandleKey []byte
	Devices   *device.Registry
	Factors   Factors
	Notices   *notify.Notices
	Facts     *facts.Source
	Policy    Policy
	// TOTP keeps second factors and the enrolments of authenticator apps.
	TOTP TOTP
	// Hasher hashes passwords and challenge answers.
	Hasher *credential.Hasher
	// Org names the issuer in authenticator apps.
	Org  string
	Log  *slog.Logger
	Now  func() time.Time
	Rand io.Reader
}

// Room serves the settings.
type Room struct{ Deps }

// New returns the room.
func New(d Deps) *Room { return &Room{d} }

// Register adds the room's routes to mux.
func (s *Room) Register(mux *http.ServeMux) {
	h := s.Site.Handle
	mux.Handle("GET "+web.APIPrefix+"devices", h(s.apiDevices))
	mux.Handle("POST "+web.APIPrefix+"devices/remove", h(s.apiRemove))
	mux.Handle("POST "+web.APIPrefix+"factors/totp", h(s.totpBegin))
	mux.Handle("POST "+web.APIPrefix+"factors/totp/confirm", h(s.totpConfirm))
	mux.Handle("GET "+web.APIPrefix+"factors/questions", h(s.apiQuestionList))
	mux.Handle("POST "+web.APIPrefix+"factors/questions", h(s.apiSetQuestions))
	mux.Handle("POST "+web.APIPrefix+"security-phone", h(s.apiSetPhone))
	mux.Handle("GET "+web.APIPrefix+"factors", h(s.apiFactors))
	mux.Handle("POST "+web.APIPrefix+"factors/remove", h(s.apiRemoveFactor))
	mux.Handle("POST "+web.APIPrefix+"password", h(s.apiChangePassword))
	mux.Handle("POST "+web.APIPrefix+"username", h(s.apiChangeUsername))
	mux.Handle("GET "+web.APIPrefix+"sessions", h(s.apiSessions))
	mux.Handle("POST "+web.APIPrefix+"sessions/end", h(s.apiEndSession))
	mux.Handle("POST "+web.APIPrefix+"sessions/end-all", h(s.apiEndAllSessions))

	mux.Handle("GET "+settingsPage, h(s.page))
	mux.Handle("POST "+settingsPage+"/devices/remove", h(s.removeDeviceForm))
	mux.Handle("POST "+settingsPage+"/factors/remove", h(s.removeFactorForm))
	mux.Handle("POST "+settingsPage+"/security-phone", h(s.phoneForm))
	mux.Handle("POST "+settingsPage+"/totp", h(s.totpForm))
	mux.Handle("POST "+settingsPage+"/totp/confirm", h(s.totpConfirmForm))
	mux.Handle("GET "+settingsPage+"/questions", h(s.questionsPage))
	mux.Handle("POST "+settingsPage+"/questions", h(s.questionsForm))
	mux.Handle("POST "+settingsPage+"/password", h(s.passwordForm))
	mux.Handle("POST "+settingsPage+"/username", h(s.usernameForm))
	mux.Handle("POST "+settingsPage+"/sessions/end", h(s.endSessionForm))
	mux.Handle("POST "+settingsPage+"/sessions/end-all", h(s.endAllSessionsForm))
}

// deviceView is a device as the person sees it.
type deviceView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (s *Room) apiDevices(w http.ResponseWriter, r *http.Request) error {
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	ds, err := s.Devices.List(r.Context(), id.User.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	out := make([]deviceView, 0, len(ds))
	for _, d := range ds {
		out = append(out, deviceView{ID: d.ID, Name: d.Name, CreatedAt: d.CreatedAt, LastUsedAt: d.LastUsedAt, ExpiresAt: d.ExpiresAt})
	}
	web.WriteJSON(w, http.StatusOK, struct {
		Status  string       `json:"status"`
		Devices []deviceView `json:"devices"`
	}{"ok", out})
	return nil
}

type removeRequest struct {
	ID string `json:"id"`
}

func (s *Room) apiRemove(w http.ResponseWriter, r *http.Request) error {
	var req removeRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	if err := s.removeDevice(w, r, id, req.ID, ""); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "removed", Message: msgDeviceRemoved})
	return nil
}

const msgDeviceRemoved = "The device was removed and signed out. Signing in from it will ask for a security code again."

// removeDevice removes one of the person's devices after the settings point
// allows a device change, and tells the person. rd is where a step-up the
// policy wants returns to (see allowed).
func (s *Room) removeDevice(w http.ResponseWriter, r *http.Request, id session.Identity, deviceID, rd string) error {
	if err := s.allowed(w, r, id, "device", rd); err != nil {
		return err
	}
	if err := s.Devices.Remove(r.Context(), id.User.ID, deviceID); errors.Is(err, store.ErrNotFound) {
		return &web.Error{Status: http.StatusNotFound, Reason: policies.ReasonNotFound, Message: "That device is not registered to your profile."}
	} else if err != nil {
		return web.Unavailable(err)
	}
	// What was signed in from the device ends with it, on every replica
	// (this session too, if it is the device's own).
	ended, err := s.Sessions.EndDeviceSessions(r.Context(), id.User.ID, deviceID)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "device removed; its sessions not ended", "user_id", id.User.ID, "error", err)
		return web.Unavailable(err)
	}
	s.Log.InfoContext(r.Context(), "device removed", "user_id", id.User.ID, "sessions_ended", ended)
	s.Notices.Send(r.Context(), id.User.ID, id.User.SecurityPhone, id.User.Email, "device_removed")
	return nil
}

// allowed asks the settings point whether the session may make a change of
// kind. When the policy wants a fresh step-up, a step-up bound to this
// session is begun (the person goes to rd once it passes: "" for the JSON
// API, whose client repeats the change by itself) and the refusal lists its
// methods: a refusal with StepUp set always means a step-up was begun.
func (s *Room) allowed(w http.ResponseWriter, r *http.Request, id session.Identity, kind, rd string) error {
	return s.allowedChange(w, r, id, &policies.Change{Kind: kind}, rd)
}

// allowedChange is allowed for a change described in full.
func (s *Room) allowedChange(w http.ResponseWriter, r *http.Request, id session.Identity, change *policies.Change, rd string) error {
	kind := change.Kind
	ctx := r.Context()
	acct := facts.Account(id.User, true)
	fs, err := s.Factors.FactorsOf(ctx, id.User.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	s.Facts.SecondFactors(ctx, &acct, id.User, fs)
	d := s.Policy.Decide(ctx, policies.Input{
		Point: policies.PointSettings, Now: s.Now().Unix(), Client: s.Facts.Client(ctx, s.Site.ClientIP(r)),
		Account: acct, Request: policies.Request{Host: web.HostName(r.Host), Path: r.URL.Path, Method: r.Method},
		Session: session.Facts(id.Session),
		Change:  change,
	})
	if d.Allow {
		return nil
	}
	if len(d.StepUp) > 0 {
		if _, err := s.Sessions.BeginStepUpTo(w, r, id, d.StepUp, rd); err != nil {
			return web.Unavailable(err)
		}
	}
	s.Log.InfoContext(ctx, "settings change refused", "user_id", id.User.ID, "kind", kind, "reason", d.Reason, "policy_rev", d.Revision)
	return s.Site.Denial(d)
}
