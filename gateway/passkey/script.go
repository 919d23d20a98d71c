package passkey

import (
	_ "embed"
	"net/http"
)

// script is the page side of the ceremonies: navigator.credentials and
// the JSON calls, with the sign-in button of the login page. The gateway's
// page CSP must allow it (script-src 'self') and its calls (connect-src
// 'self').
//
//go:embed static/passkey.js
var script []byte

func serveScript(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	_, _ = w.Write(script)
}
