package settings

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// The signed-in sessions: where the profile is signed in, each of which the
// person can end, and "log out everywhere". A session is shown by a handle,
// an HMAC of its ID under a server key: the ID itself is a credential (the
// hash of the cookie is what the store looks a session up by) and never
// leaves the gateway. Ending sessions makes the profile safer, so it needs
// no step-up.

// sessionView is a session as the person sees it.
type sessionView struct {
	// ID is the session's handle, not its ID.
	ID         string    `json:"id"`
	Host       string    `json:"host"`
	SignedInAt time.Time `json:"signed_in_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Current marks the session the request came with.
	Current bool `json:"current"`
}

// handle is the opaque name a session is shown and ended by.
func (s *Room) handle(sessionID string) string {
	mac := hmac.New(sha256.New, s.HandleKey)
	mac.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// sessions lists the profile's live sessions, this one marked.
func (s *Room) sessions(ctx context.Context, id session.Identity) ([]sessionView, []store.Session, error) {
	ss, err := s.Sessions.OfUser(ctx, id.User.ID)
	if err != nil {
		return nil, nil, web.Unavailable(err)
	}
	out := make([]sessionView, 0, len(ss))
	for _, sess := range ss {
		out = append(out, sessionView{ID: s.handle(sess.ID), Host: sess.Host, SignedInAt: sess.AuthTime,
			LastSeenAt: sess.LastSeen, ExpiresAt: sess.ExpiresAt, Current: sess.ID == id.Session.ID})
	}
	return out, ss, nil
}

func (s *Room) apiSessions(w http.ResponseWriter, r *http.Request) error {
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	list, _, err := s.sessions(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, struct {
		Status   string        `json:"status"`
		Sessions []sessionView `json:"sessions"`
	}{"ok", list})
	return nil
}

type endSessionRequest struct {
	ID string `json:"id"`
}

// apiEndSession ends one session; ending this one signs out here.
func (s *Room) apiEndSession(w http.ResponseWriter, r *http.Request) error {
	var req endSessionRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	current, err := s.endSession(w, r, id, req.ID)
	if err != nil {
		return err
	}
	if current {
		web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "signed_out", Message: web.MsgSignedOut})
		return nil
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "ended", Message: msgSessionEnded})
	return nil
}

const (
	msgSessionEnded = "That session is ended: whoever used it has to sign in again."
	msgSignedOutAll = "You have been signed out everywhere, here included."
)

// endSession ends the session of the profile whose handle is given, and
// reports whether it was the request's own (whose cookie it then clears).
func (s *Room) endSession(w http.ResponseWriter, r *http.Request, id session.Identity, handle string) (bool, error) {
	ctx := r.Context()
	_, ss, err := s.sessions(ctx, id)
	if err != nil {
		return false, err
	}
	want := []byte(handle)
	for _, sess := range ss {
		if !hmac.Equal([]byte(s.handle(sess.ID)), want) {
			continue
		}
		if err := s.Sessions.EndSession(ctx, id.User.ID, sess.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, web.Unavailable(err)
		}
		current := sess.ID == id.Session.ID
		if current {
			session.ClearCookie(w)
		}
		s.Log.InfoContext(ctx, "session ended", "user_id", id.User.ID, "current", current)
		return current, nil
	}
	return false, &web.Error{Status: http.StatusNotFound, Reason: policies.ReasonNotFound,
		Message: "That session has ended already, or is not one of yours."}
}

// apiEndAllSessions signs the profile out everywhere.
func (s *Room) apiEndAllSessions(w http.ResponseWriter, r *http.Request) error {
	if err := web.CheckJSON(r); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	if err := s.endAllSessions(w, r, id); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "signed_out", Message: msgSignedOutAll})
	return nil
}

// endAllSessions ends every session of the profile, on every host and of
// every login, this one included, and clears this host's cookie.
func (s *Room) endAllSessions(w http.ResponseWriter, r *http.Request, id session.Identity) error {
	n, err := s.Sessions.EndUserSessions(r.Context(), id.User.ID, "")
	if err != nil {
		return web.Unavailable(err)
	}
	session.ClearCookie(w)
	s.Log.InfoContext(r.Context(), "signed out everywhere", "user_id", id.User.ID, "sessions_ended", n)
	return nil
}

// sessionItems are the sessions as the settings page lists them.
func (s *Room) sessionItems(ctx context.Context, id session.Identity) ([]web.Item, error) {
	list, _, err := s.sessions(ctx, id)
	if err != nil {
		return nil, err
	}
	items := make([]web.Item, 0, len(list))
	for _, v := range list {
		items = append(items, web.Item{ID: v.ID, Name: v.Host, Added: readable(v.SignedInAt), LastUsed: readable(v.LastSeenAt), Current: v.Current})
	}
	return items, nil
}

func (s *Room) endSessionForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	current := false
	if err == nil {
		current, err = s.endSession(w, r, id, r.PostFormValue("session"))
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	if current {
		http.Redirect(w, r, web.Prefix+"login", http.StatusSeeOther)
		return nil
	}
	return done(w, r, "session_ended")
}

// endAllSessionsForm signs out everywhere and shows the sign-in page.
func (s *Room) endAllSessionsForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	if err == nil {
		err = s.endAllSessions(w, r, id)
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	http.Redirect(w, r, web.Prefix+"login", http.StatusSeeOther)
	return nil
}

// accountDoneMessage is what the settings page says after a change of
// password, username or sessions ("" for a key it does not know).
func accountDoneMessage(key string) string {
	switch key {
	case "password_changed":
		return msgPasswordChanged
	case "username_changed":
		return msgUsernameChanged
	case "session_ended":
		return msgSessionEnded
	}
	return ""
}
