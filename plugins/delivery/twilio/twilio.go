// Package twilio is a notify.Sender for Twilio's Programmable Messaging and
// Voice REST API (2010-04-01), and for services that copy it. It sends a
// text message with
//
//	POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json
//	To, Body, and MessagingServiceSid or From
//
// and places a voice call that reads the text aloud with
//
//	POST {base}/2010-04-01/Accounts/{AccountSid}/Calls.json
//	To, From, Twiml=<Response><Say>text</Say></Response>
//
// both form-encoded, authenticated with HTTP Basic as the Account SID and
// its auth token, or (as Twilio recommends) an API key SID and its secret.
// The gateway writes the voice text already spoken slowly (digits apart,
// said twice), so the TwiML is a single Say.
//
// A refused request comes back as an *Error carrying Twilio's error code
// (21211 invalid number, 21610 unsubscribed, ...), so callers can tell them
// apart with errors.As. No SDK is used; redirects are never followed.
package twilio

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/internal/endpoint"
	"github.com/portcullis/portcullis/plugins/delivery/internal/redact"
)

// DefaultBaseURL is Twilio's API.
const DefaultBaseURL = "https://api.twilio.com"

// DefaultTimeout bounds one request when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Limits Twilio documents: a message body of at most 1,600 characters, and
// inline TwiML of at most 4,000.
const (
	MaxBody  = 1600
	MaxTwiml = 4000
)

// maxResponse bounds how much of an answer is read.
const maxResponse = 64 << 10

// Config configures the Twilio sender.
type Config struct {
	// BaseURL is the API's address without the version path; empty means
	// DefaultBaseURL. Set it for a regional edge, a compatible provider,
	// or a test server. It must be https (http only for a loopback host).
	BaseURL string
	// AccountSID is the account ("AC…") whose resources are created;
	// required. It is part of the request path.
	AccountSID string
	// APIKeySID is an API key ("SK…") to authenticate with instead of the
	// account's auth token; optional but recommended.
	APIKeySID string
	// Secret is the API key's secret when APIKeySID is set, otherwise the
	// account's auth token; required. Configuration reads it from a file
	// or an environment variable, never inline; it is never logged.
	Secret string
	// From is the sender: an E.164 number of the account, or for text
	// messages an alphanumeric sender ID. Voice calls need it. Required
	// unless MessagingServiceSID is set.
	From string
	// MessagingServiceSID ("MG…") sends text messages through a Messaging
	// Service, which picks the sender; it takes the place of From for
	// text messages. Voice calls still use From.
	MessagingServiceSID string
	// Timeout bounds one request, connection included; zero means
	// DefaultTimeout. A shorter deadline on the Send context wins.
	Timeout time.Duration
	// Client sends the requests; nil means a client of its own. A copy is
	// used that never follows redirects; the Client given is not
	// modified. Set by the caller, not by YAML.
	Client *http.Client
	// Logger receives one line per message accepted, with Twilio's SID and
	// status but without the text or full destination; nil logs nothing.
	// Set by the caller, not by YAML.
	Logger *slog.Logger
}

// Sender sends text messages and places voice calls through Twilio. It is
// safe for concurrent use.
type Sender struct {
	messagesURL string
	callsURL    string
	user        string
	secret      string
	from        string
	service     string
	timeout     time.Duration
	client      *http.Client
	logger      *slog.Logger
}

var _ notify.Sender = (*Sender)(nil)

// New checks cfg and returns a sender using it.
func New(cfg Config) (*Sender, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := endpoint.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("twilio: base_url: %w", err)
	}
	if u.RawQuery != "" {
		return nil, errors.New("twilio: base_url must not have a query")
	}
	if cfg.AccountSID == "" {
		return nil, errors.New("twilio: account_sid is required")
	}
	if !sid(cfg.AccountSID) {
		return nil, errors.New("twilio: account_sid must be letters and digits only, like AC0123…")
	}
	if cfg.APIKeySID != "" && !sid(cfg.APIKeySID) {
		return nil, errors.New("twilio: api_key_sid must be letters and digits only, like SK0123…")
	}
	if cfg.Secret == "" {
		if cfg.APIKeySID != "" {
			return nil, errors.New("twilio: the API key's secret is required")
		}
		return nil, errors.New("twilio: the auth token is required")
	}
	if cfg.From == "" && cfg.MessagingServiceSID == "" {
		return nil, errors.New("twilio: from or messaging_service_sid is required")
	}
	if cfg.MessagingServiceSID != "" && !sid(cfg.MessagingServiceSID) {
		return nil, errors.New("twilio: messaging_service_sid must be letters and digits only, like MG0123…")
	}
	if strings.ContainsAny(cfg.From, "\r\n") {
		return nil, errors.New("twilio: from must be one line")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("twilio: timeout must not be negative")
	}

	account := strings.TrimSuffix(u.String(), "/") + "/2010-04-01/Accounts/" + cfg.AccountSID
	s := &Sender{
		messagesURL: account + "/Messages.json",
		callsURL:    account + "/Calls.json",
		user:        cfg.AccountSID,
		secret:      cfg.Secret,
		from:        cfg.From,
		service:     cfg.MessagingServiceSID,
		timeout:     cfg.Timeout,
		client:      endpoint.Client(cfg.Client),
		logger:      cfg.Logger,
	}
	if cfg.APIKeySID != "" {
		s.user = cfg.APIKeySID
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// sid reports whether v looks like a Twilio SID: letters and digits, so
// that it is safe in a URL path.
func sid(v string) bool {
	for _, c := range []byte(v) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return v != ""
}

// Send sends m as a text message (notify.SMS) or a voice call
// (notify.Voice). Other channels are refused with notify.ErrNoChannel.
func (s *Sender) Send(ctx context.Context, m notify.Message) error {
	var target string
	form := url.Values{"To": {m.To}}
	switch m.Channel {
	case notify.SMS:
		if n := utf8.RuneCountInString(m.Text); n > MaxBody {
			return fmt.Errorf("twilio: send sms: text is %d characters, more than Twilio's %d", n, MaxBody)
		}
		target = s.messagesURL
		form.Set("Body", m.Text)
		if s.service != "" {
			form.Set("MessagingServiceSid", s.service)
		} else {
			form.Set("From", s.from)
		}
	case notify.Voice:
		if s.from == "" {
			return errors.New("twilio: send voice: a call needs from (a messaging service cannot place calls)")
		}
		twiml := Twiml(m.Text)
		if n := utf8.RuneCountInString(twiml); n > MaxTwiml {
			return fmt.Errorf("twilio: send voice: TwiML is %d characters, more than Twilio's %d", n, MaxTwiml)
		}
		target = s.callsURL
		form.Set("From", s.from)
		form.Set("Twiml", twiml)
	default:
		return fmt.Errorf("twilio: send %q: %w", m.Channel, notify.ErrNoChannel)
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("twilio: send %s: %w", m.Channel, endpoint.StripURL(err))
	}
	req.SetBasicAuth(s.user, s.secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Portcullis/1")

	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("twilio: send %s: %w", m.Channel, endpoint.StripURL(err))
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))

	if resp.StatusCode/100 == 3 {
		return fmt.Errorf("twilio: send %s: status %s: redirects are not followed", m.Channel, resp.Status)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Channel: m.Channel, Status: resp.StatusCode}
		var doc struct {
			Code     int    `json:"code"`
			Message  string `json:"message"`
			MoreInfo string `json:"more_info"`
		}
		if json.Unmarshal(body, &doc) == nil && (doc.Code != 0 || doc.Message != "") {
			// Twilio's messages quote the number ("The 'To' number +44…
			// is not a valid phone number"), so they are redacted too.
			e.Code, e.Message = doc.Code, redact.Snippet([]byte(doc.Message), m.Text, m.To)
			if link(doc.MoreInfo) && (m.To == "" || !strings.Contains(doc.MoreInfo, m.To)) {
				e.MoreInfo = doc.MoreInfo
			}
		} else {
			e.Message = redact.Snippet(body, m.Text, m.To)
		}
		return e
	}

	var created struct {
		SID    string `json:"sid"`
		Status string `json:"status"`
	}
	if readErr == nil {
		_ = json.Unmarshal(body, &created) // the answer's details are only logged
	}
	s.logger.Info("message sent", "provider", "twilio", "channel", m.Channel, "to", redact.Destination(m.To),
		"user_id", m.UserID, "purpose", m.Purpose,
		"provider_message_id", plain(created.SID), "status", plain(created.Status))
	return nil
}

// Twiml is the call script that says text: one Say, with text escaped.
func Twiml(text string) string {
	var b strings.Builder
	b.WriteString("<Response><Say>")
	_ = xml.EscapeText(&b, []byte(text)) // a strings.Builder does not fail
	b.WriteString("</Say></Response>")
	return b.String()
}

// plain is v when it is short and made of letters, digits, '-' and '_'
// (as SIDs and statuses are), and "" otherwise, so that logging a
// provider's answer cannot forge a log line.
func plain(v string) string {
	if len(v) > 64 {
		return ""
	}
	for _, c := range []byte(v) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return ""
		}
	}
	return v
}

// link reports whether v is a short https URL without spaces or control
// characters, fit to quote in an error.
func link(v string) bool {
	if !strings.HasPrefix(v, "https://") || len(v) > 200 {
		return false
	}
	for _, c := range []byte(v) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// Error is a request Twilio answered with an error status. Message is
// Twilio's explanation with the destination and any run of digits masked;
// it never holds the message text.
type Error struct {
	// Channel is notify.SMS or notify.Voice.
	Channel string
	// Status is the HTTP status code.
	Status int
	// Code is Twilio's error code (https://www.twilio.com/docs/api/errors),
	// or 0 when the answer had none.
	Code int
	// Message is Twilio's message, redacted and bounded.
	Message string
	// MoreInfo is the documentation link Twilio gave, if any.
	MoreInfo string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("twilio: send " + e.Channel + ": status " + strconv.Itoa(e.Status))
	if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" " + t)
	}
	if e.Code != 0 {
		b.WriteString(": error " + strconv.Itoa(e.Code))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.MoreInfo != "" {
		b.WriteString(" (" + e.MoreInfo + ")")
	}
	return b.String()
}
