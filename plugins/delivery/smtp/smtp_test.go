package smtp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/smtp"
)

var at = time.Date(2026, 7, 8, 9, 10, 11, 0, time.FixedZone("", 2*3600))

var notice = notify.Message{
	Channel: notify.Email,
	To:      "alice@example.com",
	UserID:  "u1",
	Purpose: notify.PurposeNotice,
	Subject: "Votre mot de passe a été changé",
	Text: "Le mot de passe de votre profil a été changé. If this wasn't you, call us on 1-800-555-0100 " +
		"and tell them what happened; this line is long enough to be wrapped by quoted-printable.\n" +
		".a line that begins with a dot\nCode: 482913 = x\n",
}

func newSender(t *testing.T, cfg smtp.Config) *smtp.Sender {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Bank Security <security@bank.example>"
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return at }
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	s, err := smtp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func portOf(t *testing.T, f *fakeServer) int {
	t.Helper()
	p, err := strconv.Atoi(f.port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSendOverSTARTTLSWithAuth(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	f := &fakeServer{tls: serverTLS, user: "gateway", pass: "pa55word"}
	f.start(t)
	var logs bytes.Buffer
	s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, f), RootCAs: roots,
		Username: "gateway", Password: "pa55word", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := s.Send(t.Context(), notice); err != nil {
		t.Fatal(err)
	}
	got := f.got()
	if len(got) != 1 {
		t.Fatalf("server took %d messages", len(got))
	}
	sess := got[0]
	if !sess.tls {
		t.Error("the message went in the clear")
	}
	if sess.authUser != "gateway" || sess.authPass != "pa55word" {
		t.Errorf("auth %q:%q", sess.authUser, sess.authPass)
	}
	if sess.from != "security@bank.example" || len(sess.rcpt) != 1 || sess.rcpt[0] != "alice@example.com" {
		t.Errorf("envelope from %q to %q", sess.from, sess.rcpt)
	}
	checkMessage(t, sess.data, notice)

	out := logs.String()
	for _, secret := range []string{"482913", "alice@", "pa55word"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "a***@example.com") || !strings.Contains(out, "provider_message_id=") {
		t.Errorf("log lacks the masked address or the message id: %s", out)
	}
}

// checkMessage checks the DATA the server received: every line ends in
// CRLF and is at most 78 characters, the headers are RFC 5322's and
// MIME's, and the body decodes to the text.
func checkMessage(t *testing.T, data []byte, m notify.Message) {
	t.Helper()
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "\r\n") || strings.Contains(strings.TrimSuffix(line, "\r\n"), "\r") {
			t.Errorf("line %d does not end in CRLF alone: %q", i+1, line)
		}
		if len(line) > 78+2 {
			t.Errorf("line %d is %d characters long", i+1, len(line)-2)
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, data)
	}
	h := msg.Header
	if d, err := h.Date(); err != nil || !d.Equal(at) {
		t.Errorf("Date %q (%v), want %v", h.Get("Date"), err, at)
	}
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != "security@bank.example" || from.Name != "Bank Security" {
		t.Errorf("From %q (%v)", h.Get("From"), err)
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != m.To {
		t.Errorf("To %q (%v)", h.Get("To"), err)
	}
	var dec mime.WordDecoder
	if subj, err := dec.DecodeHeader(h.Get("Subject")); err != nil || subj != m.Subject {
		t.Errorf("Subject %q decodes to %q (%v)", h.Get("Subject"), subj, err)
	}
	if id := h.Get("Message-ID"); !regexp.MustCompile(`^<[0-9a-f]{32}@bank\.example>$`).MatchString(id) {
		t.Errorf("Message-ID %q", id)
	}
	for k, v := range map[string]string{
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-generated",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s %q, want %q", k, got, v)
		}
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(m.Text, "\n", "\r\n")
	if string(body) != want {
		t.Errorf("body decodes to\n%q\nwant\n%q", body, want)
	}
}

func TestSendOverImplicitTLS(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	f := &fakeServer{tls: serverTLS, implicitTLS: true, user: "gateway", pass: "pw"}
	f.start(t)
	s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, f), Security: smtp.ImplicitTLS, RootCAs: roots,
		Username: "gateway", Password: "pw"})
	if err := s.Send(t.Context(), notice); err != nil {
		t.Fatal(err)
	}
	if got := f.got(); len(got) != 1 || !got[0].tls {
		t.Fatalf("sessions %+v", got)
	}
}

func TestSendInTheClearToLoopback(t *testing.T) {
	f := &fakeServer{}
	f.start(t)
	s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, f), Security: smtp.None})
	m := notice
	m.Subject = "Plain subject"
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	got := f.got()
	if len(got) != 1 {
		t.Fatalf("server took %d messages", len(got))
	}
	if !bytes.Contains(got[0].data, []byte("\r\nSubject: Plain subject\r\n")) {
		t.Errorf("ASCII subject was encoded:\n%s", got[0].data)
	}
	checkMessage(t, got[0].data, m)
}

func TestLongSubjectIsFolded(t *testing.T) {
	f := &fakeServer{}
	f.start(t)
	s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, f), Security: smtp.None})
	for _, subject := range []string{
		string([]rune(strings.Repeat("Пароль изменён ", 20))[:smtp.MaxSubject]),
		strings.Repeat("Your password was changed. ", 7),
	} {
		m := notice
		m.Subject = strings.TrimSpace(subject)
		if err := s.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		got := f.got()
		checkMessage(t, got[len(got)-1].data, m) // checks line lengths and the decoded subject
	}
}

func TestRefusesServerWithoutSTARTTLS(t *testing.T) {
	f := &fakeServer{} // offers no STARTTLS
	f.start(t)
	s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, f)})
	err := s.Send(t.Context(), notice)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send to a server without STARTTLS: %v", err)
	}
	if len(f.got()) != 0 {
		t.Error("the message was sent in the clear")
	}
}

func TestRefusesUntrustedCertificate(t *testing.T) {
	serverTLS, _ := selfSigned(t)
	f := &fakeServer{tls: serverTLS}
	f.start(t)
	s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, f)}) // system roots
	if err := s.Send(t.Context(), notice); err == nil || !strings.Contains(err.Error(), "starttls") {
		t.Fatalf("Send to a server with an unknown certificate: %v", err)
	}
	if len(f.got()) != 0 {
		t.Error("the message was sent")
	}
}

func TestServerRefusals(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	tests := []struct {
		name     string
		server   *fakeServer
		password string
		step     string
		code     int
	}{
		{"wrong password", &fakeServer{tls: serverTLS, user: "gateway", pass: "right"}, "wrong", "auth", 535},
		{"recipient refused", &fakeServer{tls: serverTLS, user: "gateway", pass: "right", rejectRcpt: true}, "right", "rcpt to", 550},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.server.start(t)
			s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, tc.server), RootCAs: roots,
				Username: "gateway", Password: tc.password})
			err := s.Send(t.Context(), notice)
			var se *smtp.Error
			if !errors.As(err, &se) {
				t.Fatalf("Send = %v, want an *smtp.Error", err)
			}
			if se.Step != tc.step || se.Code != tc.code {
				t.Errorf("error %+v, want step %q code %d", se, tc.step, tc.code)
			}
			for _, secret := range []string{"alice@example.com", "12345678", tc.password} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes %q", err, secret)
				}
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	f := &fakeServer{silent: true} // accepts, never greets
	f.start(t)
	t.Run("configured timeout", func(t *testing.T) {
		s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, f), Timeout: 100 * time.Millisecond})
		if err := s.Send(t.Context(), notice); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send to a silent server: %v", err)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, f), Timeout: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if err := s.Send(ctx, notice); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send to a silent server: %v", err)
		}
	})
}

func TestSendRefusesInjection(t *testing.T) {
	f := &fakeServer{}
	f.start(t)
	s := newSender(t, smtp.Config{Host: "127.0.0.1", Port: portOf(t, f), Security: smtp.None})
	tests := []struct {
		name string
		edit func(*notify.Message)
		want string
	}{
		{"CRLF in the address", func(m *notify.Message) { m.To = "alice@example.com\r\nBcc: eve@evil.example" }, "line break"},
		{"LF in the address", func(m *notify.Message) { m.To = "alice@example.com\nBcc: eve@evil.example" }, "line break"},
		{"CRLF in the subject", func(m *notify.Message) { m.Subject = "Hello\r\nBcc: eve@evil.example" }, "line break"},
		{"CR in the subject", func(m *notify.Message) { m.Subject = "Hello\rBcc: eve@evil.example" }, "line break"},
		{"two addresses", func(m *notify.Message) { m.To = "alice@example.com, eve@evil.example" }, "not valid"},
		{"no address", func(m *notify.Message) { m.To = "" }, "not valid"},
		{"long subject", func(m *notify.Message) { m.Subject = strings.Repeat("x", smtp.MaxSubject+1) }, "subject"},
		{"text message", func(m *notify.Message) { m.Channel = notify.SMS }, "no sender for this channel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := notice
			tc.edit(&m)
			err := s.Send(t.Context(), m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Send = %v, want an error mentioning %q", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "482913") || strings.Contains(err.Error(), "alice@")) {
				t.Errorf("error quotes the text or the address: %v", err)
			}
		})
	}
	if n := len(f.got()); n != 0 {
		t.Errorf("%d refused messages reached the server", n)
	}
	if err := s.Send(t.Context(), notify.Message{Channel: notify.Voice}); !errors.Is(err, notify.ErrNoChannel) {
		t.Errorf("voice: %v does not wrap notify.ErrNoChannel", err)
	}
}

func TestNewRefuses(t *testing.T) {
	ok := smtp.Config{Host: "smtp.bank.example", From: "security@bank.example"}
	with := func(f func(*smtp.Config)) smtp.Config { c := ok; f(&c); return c }
	tests := []struct {
		name string
		cfg  smtp.Config
		want string
	}{
		{"no host", with(func(c *smtp.Config) { c.Host = "" }), "host is required"},
		{"no from", with(func(c *smtp.Config) { c.From = "" }), "from is required"},
		{"bad from", with(func(c *smtp.Config) { c.From = "not an address" }), "from"},
		{"from with a line break", with(func(c *smtp.Config) { c.From = "a@b.example\r\nBcc: x@y" }), "one line"},
		{"clear text to a remote host", with(func(c *smtp.Config) { c.Security = smtp.None }), "loopback"},
		{"auth in the clear", with(func(c *smtp.Config) {
			c.Host, c.Security, c.Username, c.Password = "127.0.0.1", smtp.None, "u", "p"
		}), "needs TLS"},
		{"unknown security", with(func(c *smtp.Config) { c.Security = "ssl" }), "security must be"},
		{"username without password", with(func(c *smtp.Config) { c.Username = "u" }), "without a password"},
		{"password without username", with(func(c *smtp.Config) { c.Password = "p" }), "without a username"},
		{"bad port", with(func(c *smtp.Config) { c.Port = 70000 }), "port"},
		{"negative timeout", with(func(c *smtp.Config) { c.Timeout = -1 }), "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := smtp.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := smtp.New(ok); err != nil {
		t.Errorf("New: %v", err)
	}
}
