package settings

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// apiQuestionList answers the challenge questions a person may choose from.
func (s *Room) apiQuestionList(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.Sessions.Require(r); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, struct {
		Status    string                `json:"status"`
		Questions []credential.Question `json:"questions"`
		Min       int                   `json:"min_answers"`
	}{"ok", credential.Questions(), credential.MinAnswers})
	return nil
}

type questionsRequest struct {
	Answers map[string]string `json:"answers"`
}

// apiSetQuestions sets (or replaces) the challenge questions.
func (s *Room) apiSetQuestions(w http.ResponseWriter, r *http.Request) error {
	var req questionsRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	if err := s.setQuestions(w, r, id, req.Answers, ""); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "saved", Message: msgQuestionsSaved})
	return nil
}

const msgQuestionsSaved = "Your challenge questions are saved."

// setQuestions sets (or replaces) the challenge questions: after the
// settings point allows a questions change, the answers are normalised and
// hashed with argon2id, and replace any set before. A set of answers
// SealAnswers refuses is a 400 saying what to change (answersRefused). rd
// is where a step-up the policy wants returns to (see allowed).
func (s *Room) setQuestions(w http.ResponseWriter, r *http.Request, id session.Identity, answers map[string]string, rd string) error {
	if err := s.allowed(w, r, id, "questions", rd); err != nil {
		return err
	}
	sealed, err := credential.SealAnswers(r.Context(), s.Hasher, answers)
	if err != nil {
		if answersRefused(err) {
			return &web.Error{Status: http.StatusBadRequest, Reason: policies.ReasonBadRequest, Message: questionsMessage(err), Err: err}
		}
		return web.Unavailable(err)
	}
	ctx := r.Context()
	fs, err := s.Factors.FactorsOf(ctx, id.User.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	_, fid, err := s.Site.NewToken()
	if err != nil {
		return web.Unavailable(err)
	}
	now := s.Now()
	if err := s.TOTP.AddFactor(ctx, store.Factor{ID: fid, UserID: id.User.ID, Kind: "questions", Name: "Challenge questions",
		Secret: sealed, CreatedAt: now}); err != nil {
		return web.Unavailable(fmt.Errorf("set questions: %w", err))
	}
	for _, f := range fs {
		if f.Kind == "questions" {
			if err := s.TOTP.DeleteFactor(ctx, id.User.ID, f.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return web.Unavailable(fmt.Errorf("set questions: %w", err))
			}
		}
	}
	s.Log.InfoContext(ctx, "challenge questions set", "user_id", id.User.ID)
	s.Notices.Send(ctx, id.User.ID, id.User.SecurityPhone, id.User.Email, "questions_changed")
	return nil
}

// answersRefused reports whether err is SealAnswers refusing the answers
// given (rather than failing).
func answersRefused(err error) bool {
	return errors.Is(err, credential.ErrUnknownQuestion) || errors.Is(err, credential.ErrTooFewAnswers) ||
		errors.Is(err, credential.ErrAnswerTooShort) || errors.Is(err, credential.ErrAnswerTooLong) ||
		errors.Is(err, credential.ErrDuplicateAnswer)
}

// questionsMessage says what to change in a refused set of answers.
func questionsMessage(err error) string {
	switch {
	case errors.Is(err, credential.ErrTooFewAnswers):
		return fmt.Sprintf("Answer at least %d questions.", credential.MinAnswers)
	case errors.Is(err, credential.ErrAnswerTooShort):
		return fmt.Sprintf("Each answer needs at least %d letters or digits.", credential.MinAnswerLen)
	case errors.Is(err, credential.ErrAnswerTooLong):
		return "One of the answers is too long."
	case errors.Is(err, credential.ErrDuplicateAnswer):
		return "Give a different answer to each question."
	}
	return "Choose questions from the list."
}

type removeFactorRequest struct {
	ID string `json:"id"`
}

// apiFactors lists the second factors enrolled (never their secrets).
func (s *Room) apiFactors(w http.ResponseWriter, r *http.Request) error {
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	fs, err := s.Factors.FactorsOf(r.Context(), id.User.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	type view struct {
		ID         string    `json:"id"`
		Kind       string    `json:"kind"`
		Name       string    `json:"name"`
		CreatedAt  time.Time `json:"created_at"`
		LastUsedAt time.Time `json:"last_used_at"`
	}
	out := make([]view, 0, len(fs))
	for _, f := range fs {
		out = append(out, view{f.ID, f.Kind, f.Name, f.CreatedAt, f.LastUsedAt})
	}
	web.WriteJSON(w, http.StatusOK, struct {
		Status  string `json:"status"`
		Factors []view `json:"factors"`
	}{"ok", out})
	return nil
}

// apiRemoveFactor removes a second factor.
func (s *Room) apiRemoveFactor(w http.ResponseWriter, r *http.Request) error {
	var req removeFactorRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.Sessions.Require(r)
	if err != nil {
		return err
	}
	if err := s.removeFactor(w, r, id, req.ID, ""); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, web.APIResponse{Status: "removed", Message: msgFactorRemoved})
	return nil
}

const msgFactorRemoved = "The sign-in method was removed."

// removeFactor removes a second factor after the settings point allows a
// two-factor change, and tells the person. rd is where a step-up the policy
// wants returns to (see allowed).
func (s *Room) removeFactor(w http.ResponseWriter, r *http.Request, id session.Identity, factorID, rd string) error {
	if err := s.allowed(w, r, id, "two_factor", rd); err != nil {
		return err
	}
	if err := s.TOTP.DeleteFactor(r.Context(), id.User.ID, factorID); errors.Is(err, store.ErrNotFound) {
		return &web.Error{Status: http.StatusNotFound, Reason: policies.ReasonNotFound, Message: "That is not one of your sign-in methods."}
	} else if err != nil {
		return web.Unavailable(err)
	}
	s.Log.InfoContext(r.Context(), "second factor removed", "user_id", id.User.ID)
	s.Notices.Send(r.Context(), id.User.ID, id.User.SecurityPhone, id.User.Email, "two_factor_changed")
	return nil
}
