// Package settings is where a signed-in person manages their login
// security. Today: the registered devices, listed with their names and first
// and last use, and removed one by one. A change is asked of the policies'
// settings point first; when it wants a fresh step-up, the room starts one
// inside the session (the step-up room completes it, under a new session
// ID) and the person repeats the change.
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
}

// Factors lists the second factors a profile enrolled.
type Factors interface {
	FactorsOf(ctx context.Context, userID string) ([]store.Factor, error)
}

// Deps are what the room works with. Every field must be set.
type Deps struct {
	Site     *web.Site
	Sessions *session.Manager
	Devices  *device.Registry
	Factors  Factors
	Notices  *notify.Notices
	Facts    *facts.Source
	Policy   Policy
	// TOTP keeps second factors and the enrolments of authenticator apps.
	TOTP TOTP
	// Hasher hashes challenge answers.
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
}

// signedIn returns the request's session, or the refusal for a request
// without one.
func (s *Room) signedIn(r *http.Request) (session.Identity, error) {
	id, ok, err := s.Sessions.Current(r)
	if err != nil {
		return id, web.Unavailable(err)
	}
	if !ok {
		return id, &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonNoSession, Message: web.MsgSessionEnded}
	}
	return id, nil
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
	id, err := s.signedIn(r)
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
	id, err := s.signedIn(r)
	if err != nil {
		return err
	}
	if err := s.allowed(w, r, id, "device"); err != nil {
		return err
	}
	if err := s.Devices.Remove(r.Context(), id.User.ID, req.ID); errors.Is(err, store.ErrNotFound) {
		return &web.Error{Status: http.StatusNotFound, Reason: policies.ReasonNotFound, Message: "That device is not registered to your profile."}
	} else if err != nil {
		return web.Unavailable(err)
	}
	s.Log.InfoContext(r.Context(), "device removed", "user_id", id.User.ID)
	s.Notices.Send(r.Context(), id.User.ID, id.User.SecurityPhone, id.User.Email, "device_removed")
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "removed", Message: "The device was removed. Signing in from it will ask for a security code again."})
	return nil
}

// allowed asks the settings point whether the session may make a change of
// kind. When the policy wants a fresh step-up, a step-up bound to this
// session is begun and the refusal lists its methods.
func (s *Room) allowed(w http.ResponseWriter, r *http.Request, id session.Identity, kind string) error {
	return s.allowedChange(w, r, id, &policies.Change{Kind: kind})
}

// allowedChange is allowed for a change described in full.
func (s *Room) allowedChange(w http.ResponseWriter, r *http.Request, id session.Identity, change *policies.Change) error {
	kind := change.Kind
	ctx := r.Context()
	acct := facts.Account(id.User, true)
	fs, err := s.Factors.FactorsOf(ctx, id.User.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	kinds := make([]string, 0, len(fs))
	for _, f := range fs {
		kinds = append(kinds, f.Kind)
	}
	s.Facts.SecondFactors(ctx, &acct, id.User, kinds)
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
		if _, err := s.Sessions.BeginStepUp(w, r, id, d.StepUp); err != nil {
			return web.Unavailable(err)
		}
	}
	s.Log.InfoContext(ctx, "settings change refused", "user_id", id.User.ID, "kind", kind, "reason", d.Reason, "policy_rev", d.Revision)
	return s.Site.Denial(d)
}
