package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/policies"
)

// Error is a failure with two faces: what the person is told (Status, Reason,
// Message: generic, never "this user exists" or "the policy said X") and what
// is logged (Err).
type Error struct {
	Status  int
	Reason  string // stable lowercase code, also in the JSON API
	Message string // shown to the person
	Err     error  // logged, never shown
	// StepUp lists the methods that would let the person through, when
	// the refusal is a request for extra verification.
	StepUp []string
	// RetryAfter, when positive, is the Retry-After a 503 or 429 answers
	// with, in seconds.
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// ErrHandled tells a caller the response has been written already.
var ErrHandled = errors.New("response written")

// Messages shown to people. Kept in one place so that the same situation is
// always described the same way.
const (
	MsgBadCredentials = "The username or password you entered is incorrect."
	MsgUnavailable    = "We can't sign you in right now. Please try again in a few minutes."
	MsgForbidden      = "This request was refused."
	MsgNotFound       = "The page you asked for does not exist."
	MsgSignedOut      = "You have been signed out."
	MsgBadRequest     = "The request could not be understood."
	MsgSessionEnded   = "Your session has ended. Please sign in again."
)

// Unavailable is the answer when a dependency (the store, the randomness)
// fails: the request is refused, never let through.
func Unavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Reason: policies.ReasonUnavailable, Message: MsgUnavailable, Err: err}
}

// Busy is the answer when the gateway is at capacity for the work a request
// needs (every password-hashing slot taken past its queue deadline): 503
// with Retry-After, so the client comes back instead of waiting in a queue
// without end.
func Busy(err error, retryAfter int) *Error {
	e := Unavailable(err)
	e.RetryAfter = retryAfter
	return e
}

// BadRequest is the answer to a request the gateway cannot read.
func BadRequest(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Reason: policies.ReasonBadRequest, Message: MsgBadRequest, Err: err}
}

// Forbidden is a refusal for the given reason that tells the person nothing
// more.
func Forbidden(reason string, err error) *Error {
	return &Error{Status: http.StatusForbidden, Reason: reason, Message: MsgForbidden, Err: err}
}

// NotFound is the answer for a path the gateway does not serve.
func NotFound() *Error {
	return &Error{Status: http.StatusNotFound, Reason: policies.ReasonNotFound, Message: MsgNotFound}
}

// HandlerFunc is a gateway handler that returns its failure instead of
// writing it; Site.Handle renders it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// APIResponse is the JSON API's answer to every flow.
type APIResponse struct {
	Status   string   `json:"status"`
	Reason   string   `json:"reason,omitempty"`
	Message  string   `json:"message,omitempty"`
	StepUp   []string `json:"step_up,omitempty"`
	Redirect string   `json:"redirect,omitempty"`
	User     string   `json:"user,omitempty"`
}

// WriteJSON writes v as the JSON body of a response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WantsJSON reports whether the answer to r should be JSON rather than a
// page: every request to the JSON API, and any request whose Accept header
// prefers application/json to text/html (a script calling an upstream app
// through the gateway), so that a JSON client never gets an HTML error.
func WantsJSON(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, APIPrefix) {
		return true
	}
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return false
	}
	var jsonQ, htmlQ float64 = -1, -1
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := qValue(params["q"])
			switch mt {
			case "application/json":
				jsonQ = max(jsonQ, q)
			case "text/html", "application/xhtml+xml":
				htmlQ = max(htmlQ, q)
			}
		}
	}
	return jsonQ > 0 && jsonQ > htmlQ
}

// qValue reads an Accept quality: 1 when absent, 0 when unreadable.
func qValue(s string) float64 {
	if s == "" {
		return 1
	}
	q, err := strconv.ParseFloat(s, 64)
	if err != nil || q < 0 {
		return 0
	}
	return min(q, 1)
}

// Handle adapts a HandlerFunc, rendering the error it returns.
func (s *Site) Handle(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.RenderError(w, r, err)
		}
	})
}

// StatusClientClosed is the status recorded for a request whose client
// went away before it was answered (nginx's 499).
const StatusClientClosed = 499

// RenderError logs a failure and answers it: JSON for a client that wants
// JSON, the message page otherwise. An error that is not an *Error is a
// failure of a dependency and answers 503.
//
// A request whose client has gone away is not a failure at all, whatever
// it failed with (an upstream request or a policy evaluation cut short):
// it is logged once, at debug level, and answered StatusClientClosed,
// which no one reads but the metrics.
func (s *Site) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		s.log.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelDebug, "client went away",
			slog.String("path", r.URL.Path), slog.String("remote_ip", s.ClientIP(r).String()))
		w.WriteHeader(StatusClientClosed)
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		e = Unavailable(err)
	}
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "request refused",
		slog.String("reason", e.Reason), slog.Int("status", e.Status),
		slog.String("path", r.URL.Path), slog.String("remote_ip", s.ClientIP(r).String()),
		slog.Any("error", e.Err))
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if WantsJSON(r) {
		status := "denied"
		if e.Reason == policies.ReasonStepUpRequired {
			status = policies.ReasonStepUpRequired
		}
		WriteJSON(w, e.Status, APIResponse{Status: status, Reason: e.Reason, Message: e.Message, StepUp: e.StepUp})
		return
	}
	s.Render(w, r, e.Status, "message", PageData{Title: "Sorry", Message: e.Message})
}
