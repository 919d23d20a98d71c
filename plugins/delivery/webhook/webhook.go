// Package webhook is a notify.Sender that POSTs every message, signed, to
// an HTTPS endpoint the operator runs (an SMS gateway of their own, a
// message queue bridge), in the manner of Stripe's and Standard Webhooks'
// signed events.
//
// # Request
//
// Each message is one POST with Content-Type application/json and a body
// like
//
//	{"id":"3f1c…","time":"2026-01-02T15:04:05Z","channel":"sms","to":"+447700900123",
//	 "user_id":"u1","purpose":"login","text":"123456 is your …"}
//
// where id is unique per message (use it to drop duplicates), time is RFC
// 3339 in UTC, subject is present for email only, and text is what the
// person reads or, for voice, hears. Three headers go with it:
//
//	Portcullis-Webhook-Id:        the body's id
//	Portcullis-Webhook-Timestamp: the time of signing, in Unix seconds
//	Portcullis-Webhook-Signature: v1=<hex HMAC-SHA256>
//
// Any 2xx answer is success; its body may be a JSON object with an "id"
// naming the message in the receiver's system, which is logged. Any other
// answer is a failure, and redirects are never followed. The request
// carries no other credentials: the signature is the authentication.
//
// # Verifying a request
//
// The secret is shared between the gateway and the receiver. To check a
// request:
//
//  1. Read the raw body, before any JSON parsing (whitespace matters).
//  2. Take the Portcullis-Webhook-Timestamp header, t, and refuse it when
//     it is more than five minutes from your clock: this bounds replays.
//  3. Compute HMAC-SHA256 under the secret over t + "." + body, and
//     hex-encode it in lower case.
//  4. The Portcullis-Webhook-Signature header holds one or more
//     space-separated "v1=<hex>" entries; accept the request when one of
//     them equals your value, compared in constant time. Ignore entries
//     with other version prefixes.
//  5. Optionally keep the ids seen in the last five minutes and drop a
//     repeated one.
//
// In a shell, for a body saved as body.json:
//
//	printf '%s.%s' "$t" "$(cat body.json)" | openssl dgst -sha256 -hmac "$secret"
//
// Go receivers can call Verify, which does steps 2 to 4.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/internal/endpoint"
	"github.com/portcullis/portcullis/plugins/delivery/internal/redact"
)

// Header names of a webhook request.
const (
	HeaderID        = "Portcullis-Webhook-Id"
	HeaderTimestamp = "Portcullis-Webhook-Timestamp"
	HeaderSignature = "Portcullis-Webhook-Signature"
)

// DefaultTimeout bounds one request when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultTolerance is how far a request's timestamp may be from the
// receiver's clock; a suggestion for Verify's callers.
const DefaultTolerance = 5 * time.Minute

// MinSecretLen is the shortest secret New accepts, in bytes: the size of
// the HMAC-SHA256 output, as RFC 2104 recommends.
const MinSecretLen = 32

// maxResponse bounds how much of an answer is read.
const maxResponse = 64 << 10

// Config configures the webhook.
type Config struct {
	// URL receives the POSTs; required. It must be https, except that
	// http is allowed for a loopback host (a local relay or a test). It
	// may carry a query but no user name or password.
	URL string
	// Secret is the HMAC key shared with the receiver, at least
	// MinSecretLen bytes, used byte for byte (a hex or base64 string is
	// not decoded); required. Configuration reads it from a file or an
	// environment variable, never inline; it is never logged.
	Secret []byte
	// Timeout bounds one request, connection included; zero means
	// DefaultTimeout. A shorter deadline on the Send context wins.
	Timeout time.Duration
	// Client sends the requests; nil means a client of its own. A copy is
	// used that never follows redirects; the Client given is not
	// modified. Set by the caller, not by YAML.
	Client *http.Client
	// Logger receives one line per message delivered, without its text or
	// full destination; nil logs nothing. Set by the caller, not by YAML.
	Logger *slog.Logger
	// Now is the clock for the timestamp; nil means time.Now. Set by the
	// caller, not by YAML.
	Now func() time.Time
	// Rand is the source of message ids; nil means crypto/rand. Set by the
	// caller, not by YAML.
	Rand io.Reader
}

// Sender posts messages to the webhook. It is safe for concurrent use.
type Sender struct {
	url     string
	secret  []byte
	timeout time.Duration
	client  *http.Client
	logger  *slog.Logger
	now     func() time.Time
	rand    io.Reader
}

var _ notify.Sender = (*Sender)(nil)

// New checks cfg and returns a sender using it.
func New(cfg Config) (*Sender, error) {
	if cfg.URL == "" {
		return nil, errors.New("webhook: url is required")
	}
	u, err := endpoint.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("webhook: secret is %d bytes; it must be at least %d (e.g. `openssl rand -hex 32`)",
			len(cfg.Secret), MinSecretLen)
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("webhook: timeout must not be negative")
	}
	s := &Sender{
		url:     u.String(),
		secret:  bytes.Clone(cfg.Secret),
		timeout: cfg.Timeout,
		client:  endpoint.Client(cfg.Client),
		logger:  cfg.Logger,
		now:     cfg.Now,
		rand:    cfg.Rand,
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s, nil
}

// payload is the request body.
type payload struct {
	ID   string `json:"id"`
	Time string `json:"time"`
	notify.Message
}

// Send posts m. An error names the failure (status, timeout, refused
// redirect) but never the text or the full destination.
func (s *Sender) Send(ctx context.Context, m notify.Message) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	var idb [16]byte
	if _, err := io.ReadFull(s.rand, idb[:]); err != nil {
		return fmt.Errorf("webhook: message id: %w", err)
	}
	id := hex.EncodeToString(idb[:])
	now := s.now()
	body, err := json.Marshal(payload{ID: id, Time: now.UTC().Format(time.RFC3339), Message: m})
	if err != nil {
		return fmt.Errorf("webhook: encode message: %w", err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: send %s: %w", m.Channel, endpoint.StripURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Portcullis-Webhook/1")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, "v1="+sign(s.secret, ts, body))

	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: send %s: %w", m.Channel, endpoint.StripURL(err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil && resp.StatusCode/100 == 2 {
		// The receiver said yes; a broken body after that changes nothing.
		answer = nil
	}
	switch {
	case resp.StatusCode/100 == 3:
		// Location is not reported: it is the receiver's to name, and may
		// carry anything.
		return fmt.Errorf("webhook: send %s: status %s: redirects are not followed", m.Channel, resp.Status)
	case resp.StatusCode/100 != 2:
		if snip := redact.Snippet(answer, m.Text, m.To); snip != "" {
			return fmt.Errorf("webhook: send %s: status %s: %s", m.Channel, resp.Status, snip)
		}
		return fmt.Errorf("webhook: send %s: status %s", m.Channel, resp.Status)
	}

	providerID := id
	var ack struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(answer, &ack) == nil && plainID(ack.ID) {
		providerID = ack.ID
	}
	s.logger.Info("message sent", "provider", "webhook", "channel", m.Channel, "to", redact.Destination(m.To),
		"user_id", m.UserID, "purpose", m.Purpose, "provider_message_id", providerID, "status", resp.StatusCode)
	return nil
}

// plainID reports whether id looks like an identifier (short, letters,
// digits and a little punctuation), so that logging it cannot inject a log
// line or echo a message back.
func plainID(id string) bool {
	if id == "" || len(id) > 100 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:-", c) >= 0) {
			return false
		}
	}
	return true
}

// sign is the hex HMAC-SHA256 under secret of ts + "." + body.
func sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// ErrSignature is the error Verify wraps for a request that is not
// authentic or not fresh.
var ErrSignature = errors.New("webhook: invalid signature")

// Verify checks a webhook request's headers h and raw body under secret:
// the timestamp must be within tolerance of now, and one of the v1
// signatures must match. It is for receivers written in Go, and for tests.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: missing or malformed %s", ErrSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp is %s away from now", ErrSignature, d.Round(time.Second))
	}
	want := []byte(sign(secret, ts, body))
	for _, entry := range strings.Fields(h.Get(HeaderSignature)) {
		got, ok := strings.CutPrefix(entry, "v1=")
		if ok && hmac.Equal([]byte(got), want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no matching v1 signature", ErrSignature)
}
