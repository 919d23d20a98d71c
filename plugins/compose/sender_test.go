package compose

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/outbox"
	"github.com/portcullis/portcullis/plugins/delivery/smtp"
	"github.com/portcullis/portcullis/plugins/delivery/webhook"
)

const deliveryRoutes = "geoip: {allow_missing: true}\nroutes:\n  - {name: a, host: a.example, upstream: 'http://127.0.0.1:1'}\n"

// parseDelivery parses a configuration with data_dir dir and the given
// delivery section.
func parseDelivery(t *testing.T, dir, delivery string) *config.File {
	t.Helper()
	cfg, err := config.Parse([]byte(deliveryRoutes + "data_dir: '" + dir + "'\n" + delivery))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// recorder is a test HTTP endpoint that keeps what it was sent.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	path   string
	header http.Header
	body   []byte
}

func (rec *recorder) serve(status int, answer string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.URL.Path, r.Header.Clone(), body})
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	return srv
}

func (rec *recorder) all() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}

// TestNewSenderRoutesEachChannel builds the router from a configuration
// naming a different plugin per channel, and follows one message through
// each: the text message to Twilio, the call to a webhook, the email to an
// outbox under data_dir.
func TestNewSenderRoutesEachChannel(t *testing.T) {
	dir := t.TempDir()
	secrets := t.TempDir()
	webhookSecret := strings.Repeat("s", 32)
	webhookFile := filepath.Join(secrets, "webhook.key")
	twilioFile := filepath.Join(secrets, "twilio.token")
	os.WriteFile(webhookFile, []byte(webhookSecret+"\n"), 0o600)
	os.WriteFile(twilioFile, []byte("auth-token\n"), 0o600)

	var twilioRec, hookRec recorder
	twilioSrv := twilioRec.serve(http.StatusCreated, `{"sid":"SM123","status":"queued"}`)
	defer twilioSrv.Close()
	hookSrv := hookRec.serve(http.StatusOK, `{}`)
	defer hookSrv.Close()

	cfg := parseDelivery(t, dir, `delivery:
  sms:
    twilio: {base_url: '`+twilioSrv.URL+`', account_sid: AC123, secret_file: '`+twilioFile+`', from: '+12015550100'}
  voice:
    webhook: {url: '`+hookSrv.URL+`/hook', secret_file: '`+webhookFile+`', timeout: 5s}
  email:
    outbox: {path: mail.jsonl}
`)
	var logs bytes.Buffer
	router, err := newSender(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(router) != 3 {
		t.Fatalf("router has %d channels, want 3", len(router))
	}
	if _, ok := router[notify.Email].(*outbox.Sender); !ok {
		t.Errorf("email sender is %T, want the outbox", router[notify.Email])
	}
	if _, ok := router[notify.Voice].(*webhook.Sender); !ok {
		t.Errorf("voice sender is %T, want the webhook", router[notify.Voice])
	}

	ctx := t.Context()
	for _, m := range []notify.Message{
		{Channel: notify.SMS, To: "+12015550123", UserID: "u1", Purpose: notify.PurposeLogin, Text: "111111 is your code"},
		{Channel: notify.Voice, To: "+12015550123", UserID: "u1", Purpose: notify.PurposeLogin, Text: "2, 2, 2"},
		{Channel: notify.Email, To: "alice@example.com", UserID: "u1", Purpose: notify.PurposeNotice, Subject: "s", Text: "notice"},
	} {
		if err := router.Send(ctx, m); err != nil {
			t.Fatalf("send %s: %v", m.Channel, err)
		}
	}

	sms := twilioRec.all()
	if len(sms) != 1 || sms[0].path != "/2010-04-01/Accounts/AC123/Messages.json" {
		t.Fatalf("twilio requests: %+v", sms)
	}
	form, _ := url.ParseQuery(string(sms[0].body))
	if form.Get("Body") != "111111 is your code" || form.Get("From") != "+12015550100" {
		t.Errorf("twilio form %v", form)
	}
	if user, pass, ok := (&http.Request{Header: sms[0].header}).BasicAuth(); !ok || user != "AC123" || pass != "auth-token" {
		t.Errorf("twilio auth %q %q (the token file's newline must be trimmed)", user, pass)
	}

	calls := hookRec.all()
	if len(calls) != 1 || calls[0].path != "/hook" {
		t.Fatalf("webhook requests: %+v", calls)
	}
	if err := webhook.Verify([]byte(webhookSecret), calls[0].header, calls[0].body, time.Now(), webhook.DefaultTolerance); err != nil {
		t.Errorf("webhook signature under the secret from the file: %v", err)
	}

	mail, err := outbox.Last(filepath.Join(dir, "mail.jsonl"), outbox.Filter{Channel: notify.Email})
	if err != nil || mail.To != "alice@example.com" {
		t.Errorf("outbox under data_dir: %+v %v", mail, err)
	}
	if strings.Contains(logs.String(), "no delivery configured") {
		t.Errorf("warned of no delivery with three channels:\n%s", logs.String())
	}

	// The secret files and the outbox (it holds codes) are checked for
	// their permissions at start-up.
	files := SecretFiles(cfg)
	for _, want := range []string{webhookFile, twilioFile, filepath.Join(dir, "mail.jsonl")} {
		if !slices.Contains(files, want) {
			t.Errorf("SecretFiles lacks %s: %q", want, files)
		}
	}
}

func TestNewSenderSharesOneOutboxAndBuildsSMTP(t *testing.T) {
	dir := t.TempDir()
	cfg := parseDelivery(t, dir, `delivery:
  sms: {outbox: {path: outbox.jsonl}}
  voice: {outbox: {path: outbox.jsonl}}
  email: {smtp: {host: 127.0.0.1, port: 2525, security: none, from: 'Bank <security@bank.example>'}}
`)
	var logs bytes.Buffer
	router, err := newSender(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if router[notify.SMS] != router[notify.Voice] {
		t.Error("two channels with one outbox file got two senders")
	}
	if n := strings.Count(logs.String(), "written to an outbox file"); n != 1 {
		t.Errorf("outbox warned %d times, want once:\n%s", n, logs.String())
	}
	if _, ok := router[notify.Email].(*smtp.Sender); !ok {
		t.Errorf("email sender is %T, want smtp", router[notify.Email])
	}
	fi, err := os.Stat(filepath.Join(dir, "outbox.jsonl"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("outbox file: %v %v, want it created 0600", fi, err)
	}
}

func TestNewSenderWithoutDelivery(t *testing.T) {
	cfg := parseDelivery(t, t.TempDir(), "")
	var logs bytes.Buffer
	router, err := newSender(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(router) != 0 {
		t.Fatalf("router %v, want no channels", router)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "security codes cannot be sent") {
		t.Errorf("no warning that codes cannot be sent:\n%s", logs.String())
	}
	if err := router.Send(t.Context(), notify.Message{Channel: notify.SMS}); !errors.Is(err, notify.ErrNoChannel) {
		t.Errorf("send without a sender: %v, want ErrNoChannel", err)
	}
}

// A mistake only the plugin sees is reported with the channel it is in.
func TestNewSenderNamesTheChannelOfAPluginError(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "token")
	os.WriteFile(secret, []byte("token"), 0o600)
	cfg := parseDelivery(t, t.TempDir(), "delivery:\n  voice: {twilio: {account_sid: 'AC/../x', secret_file: '"+secret+"', from: '+12015550100'}}\n")
	_, err := newSender(cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.HasPrefix(err.Error(), "delivery.voice: twilio: account_sid") {
		t.Fatalf("newSender = %v, want an error naming delivery.voice", err)
	}
}
