package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// Error is a failure with two faces: what the person is told (Status, Reason,
// Message: generic, never "this user exists" or "the policy said X") and what
// is logged (Err).
type Error struct {
	Status  int
	Reason  string // stable lowercase code, also in the JSON API
	Message string // shown to the person
	Err     error  // logged, never shown
	// stepUp lists the methods that would let the person through, when
	// the refusal is a request for extra verification.
	stepUp []string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// errHandled tells a caller the response has been written already.
var errHandled = errors.New("response written")

// Messages shown to people. Kept in one place so that the same situation is
// always described the same way.
const (
	msgBadCredentials = "The username or password you entered is incorrect."
	msgUnavailable    = "We can't sign you in right now. Please try again in a few minutes."
	msgForbidden      = "This request was refused."
	msgNotFound       = "The page you asked for does not exist."
	msgSignedOut      = "You have been signed out."
	msgBadRequest     = "The request could not be understood."
	msgSessionEnded   = "Your session has ended. Please sign in again."
)

func errUnavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Reason: "unavailable", Message: msgUnavailable, Err: err}
}

func errBadRequest(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Reason: "bad_request", Message: msgBadRequest, Err: err}
}

func errForbidden(reason string, err error) *Error {
	return &Error{Status: http.StatusForbidden, Reason: reason, Message: msgForbidden, Err: err}
}

// handlerFunc is a gateway handler that returns its failure instead of
// writing it; Server.handle renders it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// apiResponse is the JSON API's answer to every flow.
type apiResponse struct {
	Status   string   `json:"status"`
	Reason   string   `json:"reason,omitempty"`
	Message  string   `json:"message,omitempty"`
	StepUp   []string `json:"step_up,omitempty"`
	Redirect string   `json:"redirect,omitempty"`
	User     string   `json:"user,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, apiPrefix)
}

func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.renderError(w, r, err)
		}
	})
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = errUnavailable(err)
	}
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "request refused",
		slog.String("reason", e.Reason), slog.Int("status", e.Status),
		slog.String("path", r.URL.Path), slog.String("remote_ip", s.clientIP(r).String()),
		slog.Any("error", e.Err))
	if isAPI(r) {
		status := "denied"
		if e.Reason == "step_up_required" {
			status = "step_up_required"
		}
		writeJSON(w, e.Status, apiResponse{Status: status, Reason: e.Reason, Message: e.Message, StepUp: e.stepUp})
		return
	}
	s.render(w, r, e.Status, "message", pageData{Title: "Sorry", Message: e.Message})
}
