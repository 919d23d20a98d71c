// Package smtp is a notify.Sender that sends email through a mail server
// (a submission service on port 587, or one with implicit TLS on 465).
//
// The connection is encrypted: STARTTLS is required and a server that does
// not offer it is refused (Security "starttls", the default), or TLS is
// spoken from the start (Security "tls"). Plain text (Security "none") is
// allowed only to a loopback address, for a local relay or a test server.
// Certificates are verified against the system roots or Config.RootCAs.
// Authentication, when configured, is AUTH PLAIN and only ever sent over
// TLS.
//
// Each message is an RFC 5322 text/plain message in UTF-8 with Date,
// Message-ID, MIME-Version and Auto-Submitted headers and a
// quoted-printable body. A destination or subject containing a line break
// is refused, so no header can be injected.
package smtp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	netsmtp "net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/internal/endpoint"
	"github.com/portcullis/portcullis/plugins/delivery/internal/redact"
)

// Security settings: how the connection is encrypted.
const (
	// StartTLS connects in the clear and upgrades with STARTTLS before
	// anything else is said; a server that does not offer it is refused.
	StartTLS = "starttls"
	// ImplicitTLS speaks TLS from the first byte (SMTPS, RFC 8314).
	ImplicitTLS = "tls"
	// None sends in the clear; allowed only to a loopback host.
	None = "none"
)

// DefaultTimeout bounds one message, connection to QUIT, when
// Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// MaxSubject bounds a subject, in characters, so that its header stays
// well within RFC 5322's line limit.
const MaxSubject = 200

// Config configures the mail sender.
type Config struct {
	// Host is the mail server's name, as its certificate names it;
	// required.
	Host string
	// Port is the server's port; zero means 587 for StartTLS, 465 for
	// ImplicitTLS and 25 for None.
	Port int
	// Security is StartTLS (the default when empty), ImplicitTLS, or None
	// (only for a loopback Host).
	Security string
	// From is the sender, as an address ("security@bank.example") or with
	// a display name ("Bank Security <security@bank.example>"); required.
	// Its address is also the envelope sender.
	From string
	// Username, when set, authenticates with AUTH PLAIN (over TLS only).
	Username string
	// Password goes with Username. Configuration reads it from a file or
	// an environment variable, never inline; it is never logged.
	Password string
	// HeloName is the name this client gives in EHLO; empty means
	// "localhost", as net/smtp does. Some servers want the client's own
	// host name.
	HeloName string
	// Timeout bounds one message, connection included; zero means
	// DefaultTimeout. A shorter deadline on the Send context wins.
	Timeout time.Duration
	// RootCAs verifies the server's certificate; nil means the system
	// roots. Configuration may build it from a CA file. Set by the caller,
	// not by YAML.
	RootCAs *x509.CertPool
	// Logger receives one line per message accepted by the server,
	// without its text or full destination; nil logs nothing. Set by the
	// caller, not by YAML.
	Logger *slog.Logger
	// Now is the clock for the Date header; nil means time.Now. Set by the
	// caller, not by YAML.
	Now func() time.Time
	// Rand is the source of Message-IDs; nil means crypto/rand. Set by the
	// caller, not by YAML.
	Rand io.Reader
}

// Sender sends email. It is safe for concurrent use: each message has a
// connection of its own.
type Sender struct {
	host     string
	addr     string
	security string
	from     *mail.Address
	domain   string // of From, for Message-IDs
	username string
	password string
	helo     string
	timeout  time.Duration
	tls      *tls.Config
	logger   *slog.Logger
	now      func() time.Time
	rand     io.Reader
}

var _ notify.Sender = (*Sender)(nil)

// New checks cfg and returns a sender using it. It does not connect.
func New(cfg Config) (*Sender, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: host is required")
	}
	if strings.ContainsAny(cfg.Host, " \t\r\n/") {
		return nil, fmt.Errorf("smtp: host %q is not a host name", cfg.Host)
	}
	security := cfg.Security
	if security == "" {
		security = StartTLS
	}
	port := cfg.Port
	switch security {
	case StartTLS:
		port = orDefault(port, 587)
	case ImplicitTLS:
		port = orDefault(port, 465)
	case None:
		if !endpoint.Loopback(cfg.Host) {
			return nil, fmt.Errorf("smtp: security %q is allowed only for a loopback host, not %q; use %q or %q",
				None, cfg.Host, StartTLS, ImplicitTLS)
		}
		if cfg.Username != "" {
			return nil, fmt.Errorf("smtp: authentication needs TLS; it cannot be used with security %q", None)
		}
		port = orDefault(port, 25)
	default:
		return nil, fmt.Errorf("smtp: security must be %q, %q or %q, not %q", StartTLS, ImplicitTLS, None, cfg.Security)
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("smtp: port %d is out of range", port)
	}
	if cfg.From == "" {
		return nil, errors.New("smtp: from is required")
	}
	if strings.ContainsAny(cfg.From, "\r\n") {
		return nil, errors.New("smtp: from must be one line")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp: from %q: %w", cfg.From, err)
	}
	if cfg.Username == "" && cfg.Password != "" {
		return nil, errors.New("smtp: password given without a username")
	}
	if cfg.Username != "" && cfg.Password == "" {
		return nil, errors.New("smtp: username given without a password")
	}
	if strings.ContainsAny(cfg.HeloName, " \t\r\n") {
		return nil, fmt.Errorf("smtp: helo_name %q is not a host name", cfg.HeloName)
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("smtp: timeout must not be negative")
	}

	s := &Sender{
		host:     cfg.Host,
		addr:     net.JoinHostPort(cfg.Host, strconv.Itoa(port)),
		security: security,
		from:     from,
		domain:   from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		username: cfg.Username,
		password: cfg.Password,
		helo:     cfg.HeloName,
		timeout:  cfg.Timeout,
		tls:      &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		logger:   cfg.Logger,
		now:      cfg.Now,
		rand:     cfg.Rand,
	}
	if s.helo == "" {
		s.helo = "localhost"
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

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Send sends m, which must be for notify.Email, as one message to one
// recipient.
func (s *Sender) Send(ctx context.Context, m notify.Message) error {
	if m.Channel != notify.Email {
		return fmt.Errorf("smtp: send %q: %w", m.Channel, notify.ErrNoChannel)
	}
	if strings.ContainsAny(m.To, "\r\n") {
		return errors.New("smtp: send email: the address contains a line break")
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("smtp: send email: the address %s is not valid", redact.Destination(m.To))
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("smtp: send email: the subject contains a line break")
	}
	if n := utf8.RuneCountInString(m.Subject); n > MaxSubject {
		return fmt.Errorf("smtp: send email: the subject is %d characters, more than %d", n, MaxSubject)
	}
	msgID, msg, err := s.compose(to, m)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.deliver(ctx, to.Address, msg, m); err != nil {
		return err
	}
	s.logger.Info("message sent", "provider", "smtp", "channel", m.Channel, "to", redact.Destination(to.Address),
		"user_id", m.UserID, "purpose", m.Purpose, "provider_message_id", msgID, "status", "accepted")
	return nil
}

// compose writes the message: headers, a blank line, the body in
// quoted-printable, CRLF throughout. It returns the Message-ID too.
func (s *Sender) compose(to *mail.Address, m notify.Message) (string, []byte, error) {
	var idb [16]byte
	if _, err := io.ReadFull(s.rand, idb[:]); err != nil {
		return "", nil, fmt.Errorf("smtp: send email: message id: %w", err)
	}
	msgID := "<" + hex.EncodeToString(idb[:]) + "@" + s.domain + ">"

	var b strings.Builder
	header := func(k, v string) { b.WriteString(fold(k+": "+v) + "\r\n") }
	header("Date", s.now().Format(time.RFC1123Z))
	header("From", s.from.String())
	header("To", to.String())
	if m.Subject != "" {
		// Encoded (RFC 2047) only when it is not plain ASCII.
		header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	}
	header("Message-ID", msgID)
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	// RFC 3834: machine-written, so auto-responders stay quiet.
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")

	qp := quotedprintable.NewWriter(&b)
	text := strings.ReplaceAll(m.Text, "\r\n", "\n")
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	// Writes to a strings.Builder do not fail; the writer turns each line
	// break into CRLF and keeps lines within 76 characters.
	_, _ = io.WriteString(qp, text)
	_ = qp.Close()
	return msgID, []byte(b.String()), nil
}

// deliver runs one SMTP session: connect, encrypt, authenticate, MAIL,
// RCPT, DATA, QUIT.
func (s *Sender) deliver(ctx context.Context, rcpt string, msg []byte, m notify.Message) error {
	step := "connect"
	fail := func(err error) error { return s.failure(ctx, step, err, m) }

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fail(err)
	}
	// The deadline bounds every read and write; closing on cancellation
	// ends a session the caller gave up on.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if s.security == ImplicitTLS {
		step = "tls handshake"
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fail(err)
		}
		conn = tc
	}

	step = "greeting"
	c, err := netsmtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return fail(err)
	}
	defer c.Close()
	step = "hello"
	if err := c.Hello(s.helo); err != nil {
		return fail(err)
	}
	if s.security == StartTLS {
		step = "starttls"
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fail(errors.New("the server does not offer STARTTLS; refusing to send in the clear"))
		}
		if err := c.StartTLS(s.tls); err != nil {
			return fail(err)
		}
	}
	if s.username != "" {
		step = "auth"
		if _, ok := c.TLSConnectionState(); !ok {
			return fail(errors.New("refusing to authenticate without TLS"))
		}
		if ok, mechs := c.Extension("AUTH"); !ok || !hasWord(mechs, "PLAIN") {
			return fail(errors.New("the server does not offer AUTH PLAIN"))
		}
		if err := c.Auth(netsmtp.PlainAuth("", s.username, s.password, s.host)); err != nil {
			return fail(err)
		}
	}
	step = "mail from"
	if err := c.Mail(s.from.Address); err != nil {
		return fail(err)
	}
	step = "rcpt to"
	if err := c.Rcpt(rcpt); err != nil {
		return fail(err)
	}
	step = "data"
	w, err := c.Data()
	if err != nil {
		return fail(err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail(err)
	}
	if err := w.Close(); err != nil {
		return fail(err)
	}
	step = "quit"
	// The server has taken the message; a failed QUIT does not undo that.
	_ = c.Quit()
	return nil
}

// fold breaks a header line at spaces so that its lines keep within 78
// characters where it can (RFC 5322 section 2.2.3): a long subject, encoded
// as many encoded-words, would otherwise pass the 998-character limit.
func fold(line string) string {
	const limit = 78
	if len(line) <= limit {
		return line
	}
	words := strings.Split(line, " ")
	var b strings.Builder
	n := 0
	for i, w := range words {
		switch {
		case i == 0:
		case n+1+len(w) > limit:
			b.WriteString("\r\n")
			n = 0
			fallthrough
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

// failure is the error for a session that failed at step: a server's
// reply becomes an *Error, with the recipient and any digits masked; a
// session cut short by the context's end says so.
func (s *Sender) failure(ctx context.Context, step string, err error, m notify.Message) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("smtp: send email: %s: %w", step, ctxErr)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection's deadline is the context's: it has passed.
		return fmt.Errorf("smtp: send email: %s: %w", step, context.DeadlineExceeded)
	}
	if te, ok := errors.AsType[*textproto.Error](err); ok {
		to := m.To
		if a, perr := mail.ParseAddress(m.To); perr == nil {
			to = a.Address
		}
		return &Error{Step: step, Code: te.Code, Message: redact.Snippet([]byte(te.Msg), m.Text, m.To, to)}
	}
	return fmt.Errorf("smtp: send email: %s: %w", step, err)
}

// Error is a reply of the mail server refusing a step. Code 4xx is a
// temporary failure, 5xx a permanent one (RFC 5321).
type Error struct {
	// Step is the SMTP step refused: "greeting", "hello", "starttls",
	// "auth", "mail from", "rcpt to" or "data".
	Step string
	// Code is the server's reply code.
	Code int
	// Message is the server's reply with the recipient and any run of
	// digits masked, bounded.
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("smtp: send email: %s: server replied %d %s", e.Step, e.Code, e.Message)
}
