package web

import (
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"

	"github.com/portcullis/portcullis/policies"
)

// CSRF defence, in layers:
//   - every state-changing request, to the gateway or proxied to an
//     upstream, must pass the standard library's cross-origin check
//     (Sec-Fetch-Site / Origin);
//   - HTML forms also carry a token that must match the __Host- CSRF cookie
//     (a double-submit token the __Host- prefix keeps other hosts from
//     planting);
//   - the JSON API takes only application/json bodies, which a cross-site
//     page cannot send without a CORS preflight the gateway never approves.

// CSRFCookie holds the double-submit token of the gateway's forms.
const CSRFCookie = "__Host-portcullis-csrf"

var errCSRF = errors.New("csrf check failed")

// errNotJSON is a JSON API request whose body is declared as something else.
var errNotJSON = errors.New("request body is not application/json")

// CSRFToken returns the request's CSRF token, issuing a cookie with a new one
// when there is none.
func (s *Site) CSRFToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(CSRFCookie); err == nil && ValidToken(c.Value) {
		return c.Value, nil
	}
	token, _, err := s.NewToken()
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: CSRFCookie, Value: token, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return token, nil
}

// ReadForm bounds the request body and checks the form's CSRF token against
// the cookie: the first step of every form handler.
func ReadForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	c, err := r.Cookie(CSRFCookie)
	if err != nil || !ValidToken(c.Value) {
		return Forbidden(policies.ReasonCSRF, errCSRF)
	}
	form := r.PostFormValue("csrf")
	if subtle.ConstantTimeCompare([]byte(form), []byte(c.Value)) != 1 {
		return Forbidden(policies.ReasonCSRF, errCSRF)
	}
	return nil
}

// CheckJSON requires a JSON request body.
func CheckJSON(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Reason: policies.ReasonBadRequest,
			Message: "Send the request body as application/json.", Err: errNotJSON}
	}
	return nil
}
