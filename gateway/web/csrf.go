package gateway

import (
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
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

var errCSRF = errors.New("csrf check failed")

// errNotJSON is a JSON API request whose body is declared as something else.
var errNotJSON = errors.New("request body is not application/json")

// csrfToken returns the request's CSRF token, issuing a cookie with a new one
// when there is none.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(csrfCookie); err == nil && validToken(c.Value) {
		return c.Value, nil
	}
	token, _, err := newToken(s.rand)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: token, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return token, nil
}

// checkFormCSRF verifies the form's token against the cookie.
func checkFormCSRF(r *http.Request) error {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validToken(c.Value) {
		return errForbidden("csrf", errCSRF)
	}
	form := r.PostFormValue("csrf")
	if subtle.ConstantTimeCompare([]byte(form), []byte(c.Value)) != 1 {
		return errForbidden("csrf", errCSRF)
	}
	return nil
}

// checkJSON requires a JSON request body.
func checkJSON(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Reason: "bad_request",
			Message: "Send the request body as application/json.", Err: errNotJSON}
	}
	return nil
}
