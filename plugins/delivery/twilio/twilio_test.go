package twilio_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/twilio"
)

const (
	account = "AC00000000000000000000000000000001"
	token   = "auth-token-secret"
	from    = "+15005550006"
	to      = "+447700900123"
)

// request is what the fake API received.
type request struct {
	method, path, contentType string
	user, pass                string
	authOK                    bool
	form                      url.Values
}

// fakeTwilio answers every request with status and answer, recording it.
func fakeTwilio(t *testing.T, status int, answer string) (*httptest.Server, func() []request) {
	t.Helper()
	var mu sync.Mutex
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(b))
		if err != nil {
			t.Errorf("request body is not a form: %v", err)
		}
		user, pass, ok := r.BasicAuth()
		mu.Lock()
		got = append(got, request{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"),
			user: user, pass: pass, authOK: ok, form: form})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []request {
		mu.Lock()
		defer mu.Unlock()
		return append([]request(nil), got...)
	}
}

func newSender(t *testing.T, cfg twilio.Config) *twilio.Sender {
	t.Helper()
	if cfg.AccountSID == "" {
		cfg.AccountSID = account
	}
	if cfg.Secret == "" {
		cfg.Secret = token
	}
	if cfg.From == "" && cfg.MessagingServiceSID == "" {
		cfg.From = from
	}
	s, err := twilio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const created = `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","to":"+447700900123","body":"ignored"}`

func TestSend(t *testing.T) {
	sms := notify.Message{Channel: notify.SMS, To: to, UserID: "u1", Purpose: notify.PurposeLogin,
		Text: "482913 is your Bank security code."}
	voice := notify.Message{Channel: notify.Voice, To: to, UserID: "u1", Purpose: notify.PurposeLogin,
		Text: notify.CodeSpeech("Bank & Trust <Savings>", "482913")}
	tests := []struct {
		name     string
		cfg      twilio.Config
		msg      notify.Message
		path     string
		user     string
		pass     string
		form     map[string]string
		absent   []string
		twimlSay string
	}{
		{
			name: "sms from a number",
			msg:  sms,
			path: "/2010-04-01/Accounts/" + account + "/Messages.json",
			user: account, pass: token,
			form:   map[string]string{"To": to, "From": from, "Body": sms.Text},
			absent: []string{"MessagingServiceSid", "Twiml"},
		},
		{
			name: "sms through a messaging service with an API key",
			cfg:  twilio.Config{MessagingServiceSID: "MG00000000000000000000000000000002", APIKeySID: "SK00000000000000000000000000000003", Secret: "key-secret"},
			msg:  sms,
			path: "/2010-04-01/Accounts/" + account + "/Messages.json",
			user: "SK00000000000000000000000000000003", pass: "key-secret",
			form:   map[string]string{"To": to, "MessagingServiceSid": "MG00000000000000000000000000000002", "Body": sms.Text},
			absent: []string{"From"},
		},
		{
			name: "voice call",
			cfg:  twilio.Config{MessagingServiceSID: "MG00000000000000000000000000000002", From: from},
			msg:  voice,
			path: "/2010-04-01/Accounts/" + account + "/Calls.json",
			user: account, pass: token,
			form:     map[string]string{"To": to, "From": from},
			absent:   []string{"Body", "MessagingServiceSid", "Url"},
			twimlSay: voice.Text,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := fakeTwilio(t, http.StatusCreated, created)
			var logs bytes.Buffer
			tc.cfg.BaseURL = srv.URL + "/"
			tc.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			s := newSender(t, tc.cfg)
			if err := s.Send(t.Context(), tc.msg); err != nil {
				t.Fatal(err)
			}
			reqs := got()
			if len(reqs) != 1 {
				t.Fatalf("the API got %d requests", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.path != tc.path {
				t.Errorf("request %s %s, want POST %s", r.method, r.path, tc.path)
			}
			if r.contentType != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type %q", r.contentType)
			}
			if !r.authOK || r.user != tc.user || r.pass != tc.pass {
				t.Errorf("basic auth %q:%q (%v), want %q:%q", r.user, r.pass, r.authOK, tc.user, tc.pass)
			}
			for k, v := range tc.form {
				if got := r.form.Get(k); got != v {
					t.Errorf("form %s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if r.form.Has(k) {
					t.Errorf("form has %s", k)
				}
			}
			if tc.twimlSay != "" {
				var doc struct {
					XMLName xml.Name `xml:"Response"`
					Say     []string `xml:"Say"`
				}
				if err := xml.Unmarshal([]byte(r.form.Get("Twiml")), &doc); err != nil {
					t.Fatalf("Twiml %q: %v", r.form.Get("Twiml"), err)
				}
				if len(doc.Say) != 1 || doc.Say[0] != tc.twimlSay {
					t.Errorf("Twiml says %q, want %q", doc.Say, tc.twimlSay)
				}
			}
			out := logs.String()
			if !strings.Contains(out, "provider_message_id=SM0123456789abcdef0123456789abcdef") || !strings.Contains(out, "status=queued") {
				t.Errorf("log lacks the SID or status: %s", out)
			}
			for _, secret := range []string{"482913", "4 8 2", "7700900123", token, "key-secret"} {
				if strings.Contains(out, secret) {
					t.Errorf("log shows %q: %s", secret, out)
				}
			}
		})
	}
}

func TestTwimlEscapes(t *testing.T) {
	got := twilio.Twiml(`Bank & Trust <Say>"hi"</Say>`)
	want := `<Response><Say>Bank &amp; Trust &lt;Say&gt;&#34;hi&#34;&lt;/Say&gt;</Say></Response>`
	if got != want {
		t.Errorf("Twiml = %s\nwant %s", got, want)
	}
}

func TestErrorAnswer(t *testing.T) {
	answer := `{"code": 21211, "message": "The 'To' number +447700900123 is not a valid phone number.", ` +
		`"more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`
	srv, _ := fakeTwilio(t, http.StatusBadRequest, answer)
	s := newSender(t, twilio.Config{BaseURL: srv.URL})
	err := s.Send(t.Context(), notify.Message{Channel: notify.SMS, To: to, Text: "482913 is your code"})
	var te *twilio.Error
	if !errors.As(err, &te) {
		t.Fatalf("Send = %v, want a *twilio.Error", err)
	}
	if te.Status != 400 || te.Code != 21211 || te.Channel != notify.SMS || te.MoreInfo != "https://www.twilio.com/docs/errors/21211" {
		t.Errorf("error %+v", te)
	}
	e := err.Error()
	for _, want := range []string{"twilio", "sms", "400", "21211", "not a valid phone number"} {
		if !strings.Contains(e, want) {
			t.Errorf("error %q lacks %q", e, want)
		}
	}
	for _, secret := range []string{"7700900123", "482913"} {
		if strings.Contains(e, secret) {
			t.Errorf("error %q quotes %q", e, secret)
		}
	}
}

func TestNonJSONErrorAnswer(t *testing.T) {
	srv, _ := fakeTwilio(t, http.StatusBadGateway, "<html>bad gateway for +447700900123</html>")
	s := newSender(t, twilio.Config{BaseURL: srv.URL})
	err := s.Send(t.Context(), notify.Message{Channel: notify.Voice, To: to, Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "bad gateway") {
		t.Fatalf("Send on a 502: %v", err)
	}
	if strings.Contains(err.Error(), "7700900123") {
		t.Errorf("error quotes the number: %v", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusPermanentRedirect)
	}))
	defer srv.Close()
	s := newSender(t, twilio.Config{BaseURL: srv.URL})
	if err := s.Send(t.Context(), notify.Message{Channel: notify.SMS, To: to, Text: "x"}); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("Send on a 308: %v", err)
	}
	if elsewhere.Load() != 0 {
		t.Error("the redirect was followed, credentials and all")
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer stuck.Close()
	defer close(release)
	s := newSender(t, twilio.Config{BaseURL: stuck.URL, Timeout: 50 * time.Millisecond})
	if err := s.Send(t.Context(), notify.Message{Channel: notify.SMS, To: to, Text: "x"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send to a stuck API: %v", err)
	}
}

func TestSendRefuses(t *testing.T) {
	srv, got := fakeTwilio(t, http.StatusCreated, created)
	tests := []struct {
		name string
		cfg  twilio.Config
		msg  notify.Message
		want string
	}{
		{"email", twilio.Config{}, notify.Message{Channel: notify.Email, To: "a@example.com", Text: "x"}, "no sender for this channel"},
		{"voice without a from number", twilio.Config{MessagingServiceSID: "MG1"}, notify.Message{Channel: notify.Voice, To: to, Text: "x"}, "needs from"},
		{"long text", twilio.Config{}, notify.Message{Channel: notify.SMS, To: to, Text: strings.Repeat("9", twilio.MaxBody+1)}, "1600"},
		{"long speech", twilio.Config{}, notify.Message{Channel: notify.Voice, To: to, Text: strings.Repeat("9", twilio.MaxTwiml)}, "4000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.BaseURL = srv.URL
			err := newSender(t, tc.cfg).Send(t.Context(), tc.msg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Send = %v, want an error mentioning %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "9999") {
				t.Errorf("error quotes the text: %v", err)
			}
		})
	}
	if n := len(got()); n != 0 {
		t.Errorf("%d refused messages reached the API", n)
	}
	if err := newSender(t, twilio.Config{BaseURL: srv.URL}).Send(t.Context(),
		notify.Message{Channel: notify.Email, Text: "x"}); !errors.Is(err, notify.ErrNoChannel) {
		t.Errorf("email: %v does not wrap notify.ErrNoChannel", err)
	}
}

func TestNewRefuses(t *testing.T) {
	ok := twilio.Config{AccountSID: account, Secret: token, From: from}
	with := func(f func(*twilio.Config)) twilio.Config { c := ok; f(&c); return c }
	tests := []struct {
		name string
		cfg  twilio.Config
		want string
	}{
		{"no account", with(func(c *twilio.Config) { c.AccountSID = "" }), "account_sid is required"},
		{"account with a slash", with(func(c *twilio.Config) { c.AccountSID = "AC1/../x" }), "account_sid"},
		{"no token", with(func(c *twilio.Config) { c.Secret = "" }), "auth token"},
		{"API key without secret", with(func(c *twilio.Config) { c.Secret = ""; c.APIKeySID = "SK1" }), "API key's secret"},
		{"bad API key", with(func(c *twilio.Config) { c.APIKeySID = "SK 1" }), "api_key_sid"},
		{"no sender", with(func(c *twilio.Config) { c.From = "" }), "from or messaging_service_sid"},
		{"plain http", with(func(c *twilio.Config) { c.BaseURL = "http://api.twilio.com" }), "https"},
		{"query in base", with(func(c *twilio.Config) { c.BaseURL = "https://api.example.com/?x=1" }), "query"},
		{"negative timeout", with(func(c *twilio.Config) { c.Timeout = -time.Second }), "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := twilio.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error mentioning %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
	if _, err := twilio.New(ok); err != nil {
		t.Errorf("New with the default base URL: %v", err)
	}
}
