package notify

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCodeTexts(t *testing.T) {
	text := CodeText("Example Bank", "042917", 20*time.Minute)
	if !strings.HasPrefix(text, "042917 is your Example Bank security code") || !strings.Contains(text, "20 minutes") {
		t.Fatalf("text message: %q", text)
	}
	speech := CodeSpeech("Example Bank", "042917")
	if strings.Count(speech, "0, 4, 2, 9, 1, 7") != 2 || strings.Contains(speech, "042917") {
		t.Fatalf("voice script does not read the code digit by digit, twice: %q", speech)
	}
	if got := CodeText("B", "123456", 30*time.Second); !strings.Contains(got, "1 minute.") {
		t.Fatalf("a short lifetime: %q", got)
	}
}

// A notice never carries a code, a password or a link that asks for one.
func TestNoticesCarryNoSecretsOrLinks(t *testing.T) {
	link := regexp.MustCompile(`(?i)https?://|www\.|\.com\b`)
	digits := regexp.MustCompile(`\d{4,}`)
	for event := range notices {
		text, ok := Notice("Example Bank", event)
		if !ok || !strings.Contains(text, "Example Bank") {
			t.Errorf("%s: %q", event, text)
		}
		if link.MatchString(text) || digits.MatchString(text) || strings.Contains(strings.ToLower(text), "password:") {
			t.Errorf("%s: the notice carries a link or a code: %q", event, text)
		}
	}
	if _, ok := Notice("B", "no_such_event"); ok {
		t.Error("an unknown event has a notice")
	}
}

type recorder struct{ got []Message }

func (r *recorder) Send(_ context.Context, m Message) error { r.got = append(r.got, m); return nil }

func TestRouterAndNoticeChannel(t *testing.T) {
	sms, mail := &recorder{}, &recorder{}
	r := Router{SMS: sms, Email: mail}
	if err := r.Send(t.Context(), Message{Channel: Voice}); !errors.Is(err, ErrNoChannel) {
		t.Fatalf("voice without a sender: %v", err)
	}
	n := &Notices{Sender: r, Org: "B", Log: discard()}
	n.Send(t.Context(), "u1", "+12015550123", "a@example.com", "device_registered")
	n.Send(t.Context(), "u2", "+12015550123", "", "device_registered")
	n.Send(t.Context(), "u3", "", "", "device_registered")
	if len(mail.got) != 1 || mail.got[0].UserID != "u1" || mail.got[0].Subject == "" {
		t.Fatalf("email notices: %+v", mail.got)
	}
	if len(sms.got) != 1 || sms.got[0].UserID != "u2" || sms.got[0].Purpose != PurposeNotice {
		t.Fatalf("text notices: %+v", sms.got)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
