package settings

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

type usernameRequest struct {
	Username string `json:"username"`
}

// apiChangeUsername changes the username, and answers the new one.
func (s *Room) apiChangeUsername(w http.ResponseWriter, r *http.Request) error {
	var req usernameRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	name, err := s.changeUsername(w, r, id, req.Username, "")
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "username_changed", User: name, Message: msgUsernameChanged})
	return nil
}

const (
	msgUsernameChanged = "Your username is changed. Use the new one the next time you sign in."
	msgUsernameTaken   = "That username is taken. Choose another one."
)

// changeUsername renames the profile to the canonical form of raw, and
// returns it. The settings point wants a fresh step-up (which returns to
// rd, see allowed); whether the name is free is what the store's rename
// answers, not an earlier lookup: a name another profile took meanwhile is
// ErrConflict, on which the policy is asked again with the name taken.
func (s *Room) changeUsername(w http.ResponseWriter, r *http.Request, id session.Identity, raw, rd string) (string, error) {
	ctx := r.Context()
	name := credential.CanonicalUsername(raw)
	if err := credential.ValidUsername(name); err != nil {
		return "", &web.Error{Status: http.StatusBadRequest, Reason: policies.ReasonBadRequest,
			Message: sentence(err.Error()), Err: fmt.Errorf("change username: %w", err)}
	}
	if name == id.User.Username {
		return "", &web.Error{Status: http.StatusBadRequest, Reason: policies.ReasonBadRequest,
			Message: "That is your username already. Choose a different one."}
	}
	change := &policies.Change{Kind: "username", UsernameAvailable: true}
	if err := s.allowedChange(w, r, id, change, rd); err != nil {
		return "", err
	}
	err := s.Users.SetUsername(ctx, id.User.ID, name, s.Now())
	if errors.Is(err, store.ErrConflict) {
		change.UsernameAvailable = false
		if err := s.allowedChange(w, r, id, change, rd); err != nil {
			return "", usernameRefusal(err)
		}
		return "", web.Unavailable(errors.New("change username: policy allows a taken username"))
	}
	if errors.Is(err, store.ErrNotFound) {
		return "", &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonNoSession, Message: web.MsgSessionEnded, Err: err}
	}
	if err != nil {
		return "", web.Unavailable(fmt.Errorf("change username: %w", err))
	}
	// Every session of the profile carries the profile: the cached copies
	// with the old name go.
	s.Sessions.RefreshUser(id.User.ID)
	s.Log.InfoContext(ctx, "username changed", "user_id", id.User.ID)
	s.Notices.Send(ctx, id.User.ID, id.User.SecurityPhone, id.User.Email, "username_changed")
	return name, nil
}

// usernameRefusal says what to change when the policy refused the name as
// taken; any other refusal is returned as it is.
func usernameRefusal(err error) error {
	var e *web.Error
	if errors.As(err, &e) && e.Reason == policies.ReasonUsernameTaken {
		e.Message = msgUsernameTaken
	}
	return err
}

func (s *Room) usernameForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	if err == nil {
		_, err = s.changeUsername(w, r, id, r.PostFormValue("username"), afterStepUp)
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	return done(w, r, "username_changed")
}
