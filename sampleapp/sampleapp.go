// Package sampleapp is a stand-in for a legacy account web app: it knows
// nothing of logins and takes the customer's identity from what the gateway
// hands it. The demo puts it behind the gateway, and tests use it as the
// upstream whose view of each request they assert on.
//
// It trusts the identity only when the gateway's signed assertion verifies;
// the plain identity headers are echoed but never believed on their own.
package sampleapp

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/assertion"
)

// Config configures an app.
type Config struct {
	// Name is the route name, which is also the audience the assertion
	// must carry.
	Name string
	// Title is the product name shown on the page, such as "Savings";
	// Name when empty.
	Title string
	// Verifier checks the assertion. When nil, every request is reported
	// as unverified.
	Verifier *assertion.Verifier
}

// Limits on the /stream query parameters.
const (
	maxStreamEvents   = 100
	maxStreamInterval = 10 * time.Second
)

// New returns the app's handler: GET / (the account page), GET /whoami
// (JSON describing what the app received) and GET /stream (server-sent
// events). Other paths are 404.
func New(cfg Config) http.Handler {
	if cfg.Title == "" {
		cfg.Title = cfg.Name
	}
	a := &app{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /whoami", a.whoami)
	mux.HandleFunc("GET /stream", a.stream)
	return mux
}

type app struct {
	cfg Config
}

// identity is what the app concluded about the request's user.
type identity struct {
	Verified bool
	Claims   assertion.Claims
	Present  bool
	Err      error
}

func (a *app) identify(r *http.Request) identity {
	tokens := r.Header.Values(assertion.HeaderAssertion)
	switch {
	case len(tokens) == 0 || (len(tokens) == 1 && tokens[0] == ""):
		return identity{Err: errors.New("no assertion")}
	case len(tokens) > 1:
		return identity{Present: true, Err: fmt.Errorf("%d assertion headers", len(tokens))}
	case a.cfg.Verifier == nil:
		return identity{Present: true, Err: errors.New("no verifier configured")}
	}
	c, err := a.cfg.Verifier.Verify(r.Context(), tokens[0])
	if err != nil {
		return identity{Present: true, Err: err}
	}
	// The verifier checks its own audience; this catches an app given
	// another app's verifier.
	if c.Audience != a.cfg.Name {
		return identity{Present: true, Err: fmt.Errorf("%w: assertion is for %q, this app is %q", assertion.ErrAudience, c.Audience, a.cfg.Name)}
	}
	return identity{Present: true, Verified: true, Claims: c}
}

// whoamiResponse is the /whoami document.
type whoamiResponse struct {
	App string `json:"app"`
	// User, UserID and AuthMethods come from the verified assertion and
	// are empty when it does not verify.
	User        string   `json:"user"`
	UserID      string   `json:"user_id"`
	AuthMethods []string `json:"auth_methods"`
	// Received holds the identity headers exactly as they arrived.
	Received  receivedIdentity `json:"received"`
	Assertion assertionReport  `json:"assertion"`
	Method    string           `json:"method"`
	Host      string           `json:"host"`
	URI       string           `json:"uri"`
	// Headers is every request header the app received.
	Headers http.Header `json:"headers"`
}

type receivedIdentity struct {
	User        string `json:"user"`
	UserID      string `json:"user_id"`
	AuthMethods string `json:"auth_methods"`
}

type assertionReport struct {
	Present  bool   `json:"present"`
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
	// HeadersMatch says whether the identity headers agree with the
	// verified claims.
	HeadersMatch bool              `json:"headers_match"`
	Claims       *assertion.Claims `json:"claims,omitempty"`
}

func (a *app) whoami(w http.ResponseWriter, r *http.Request) {
	id := a.identify(r)
	resp := whoamiResponse{
		App:         a.cfg.Name,
		AuthMethods: []string{},
		Received: receivedIdentity{
			User:        r.Header.Get(assertion.HeaderUser),
			UserID:      r.Header.Get(assertion.HeaderUserID),
			AuthMethods: r.Header.Get(assertion.HeaderAuthMethods),
		},
		Assertion: assertionReport{Present: id.Present, Verified: id.Verified},
		Method:    r.Method,
		Host:      r.Host,
		URI:       r.URL.RequestURI(),
		Headers:   r.Header,
	}
	if id.Err != nil {
		resp.Assertion.Error = id.Err.Error()
	}
	if id.Verified {
		c := id.Claims
		resp.User, resp.UserID = c.Username, c.Subject
		if c.AuthMethods != nil {
			resp.AuthMethods = c.AuthMethods
		}
		resp.Assertion.Claims = &c
		resp.Assertion.HeadersMatch = resp.Received.User == c.Username &&
			resp.Received.UserID == c.Subject &&
			resp.Received.AuthMethods == strings.Join(c.AuthMethods, ",")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(resp) // an error means the client has gone
}

var homePage = template.Must(template.New("home").Parse(`<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{{.Title}} Online</title>
<style>
body { font-family: Georgia, "Times New Roman", serif; background: #f3efe2; color: #222; margin: 0; }
.bar { background: #0b2e59; color: #fff; padding: 10px 16px; font-size: 20px; }
.main { padding: 16px; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #8a8a8a; padding: 6px 14px; text-align: left; }
th { background: #d9d3bf; }
.note { background: #fff4c2; border: 1px solid #c9a800; padding: 8px; }
.foot { font-size: 12px; color: #666; margin-top: 24px; }
</style>
</head>
<body>
<div class="bar"><b>{{.Title}}</b> &middot; Online Account Access</div>
<div class="main">
{{if .Verified -}}
<h1>{{.Title}} — welcome, {{.User}}</h1>
<table>
<tr><th>Account</th><th>Number</th><th>Available balance</th></tr>
<tr><td>{{.Title}}</td><td>{{.Account}}</td><td>{{.Balance}}</td></tr>
</table>
<p>Signed in with: {{.Methods}}</p>
{{- else -}}
<h1>{{.Title}} — identity not verified</h1>
<p class="note">This page received no verified identity: {{.Reason}}</p>
{{- end}}
<p><a href="/whoami">What does this app know about me?</a> &middot; <a href="/stream">Live balance feed</a></p>
<p class="foot">Best viewed in Netscape Navigator 4.0 at 800&times;600.</p>
</div>
</body>
</html>
`))

type homeData struct {
	Title    string
	Verified bool
	User     string
	Account  string
	Balance  string
	Methods  string
	Reason   string
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	id := a.identify(r)
	d := homeData{Title: a.cfg.Title, Verified: id.Verified}
	if id.Verified {
		d.User = cmp.Or(id.Claims.Username, id.Claims.Subject)
		d.Account, d.Balance = account(a.cfg.Name, d.User)
		d.Methods = strings.Join(id.Claims.AuthMethods, ", ")
	} else if id.Err != nil {
		d.Reason = id.Err.Error()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = homePage.Execute(w, d) // an error means the client has gone
}

// account makes up an account number and balance that stay the same for a
// user of an app.
func account(app, user string) (number, balance string) {
	h := fnv.New64a()
	h.Write([]byte(app))
	h.Write([]byte{0})
	h.Write([]byte(user))
	sum := h.Sum64()
	number = fmt.Sprintf("****%04d", (sum>>40)%10000)
	cents := 1000 + sum%10_000_000 // $10.00 to $100,009.99
	return number, "$" + groupThousands(cents/100) + fmt.Sprintf(".%02d", cents%100)
}

func groupThousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// stream sends server-sent events, flushing after each, so that a test
// (or a person with curl -N) can see whether a proxy passes a response
// through as it is written. Query parameters: count (default 3) and
// interval between events (a Go duration, default 0).
func (a *app) stream(w http.ResponseWriter, r *http.Request) {
	count := 3
	if s := r.URL.Query().Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxStreamEvents {
			http.Error(w, fmt.Sprintf("count must be 1 to %d", maxStreamEvents), http.StatusBadRequest)
			return
		}
		count = n
	}
	var interval time.Duration
	if s := r.URL.Query().Get("interval"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxStreamInterval {
			http.Error(w, fmt.Sprintf("interval must be a duration from 0 to %s", maxStreamInterval), http.StatusBadRequest)
			return
		}
		interval = d
	}

	id := a.identify(r)
	user := ""
	if id.Verified {
		user = cmp.Or(id.Claims.Username, id.Claims.Subject)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for i := 1; i <= count; i++ {
		if i > 1 && interval > 0 {
			t := time.NewTimer(interval)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		data, _ := json.Marshal(map[string]any{"app": a.cfg.Name, "n": i, "of": count, "user": user})
		if _, err := fmt.Fprintf(w, "id: %d\nevent: tick\ndata: %s\n\n", i, data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
