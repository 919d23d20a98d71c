package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const deliveryBase = "geoip: {allow_missing: true}\nroutes:\n  - {name: app, host: app.example, upstream: 'http://127.0.0.1:1'}\n"

// writeSecret writes a secret file (0600) and returns its path.
func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeliveryAbsentMeansNoSender(t *testing.T) {
	f, err := Parse([]byte(deliveryBase))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Delivery.Channels(); len(got) != 0 {
		t.Fatalf("channels without a delivery section: %+v", got)
	}
	// A channel given no value is left out, like one not written at all.
	f, err = Parse([]byte(deliveryBase + "delivery:\n  sms:\n  email: {outbox: {path: outbox.jsonl}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range f.Delivery.Channels() {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"email"}) {
		t.Fatalf("channels %q, want only email", names)
	}
}

func TestDeliverySenders(t *testing.T) {
	webhookKey := strings.Repeat("k", 32)
	webhookFile := writeSecret(t, "webhook.key", webhookKey+"\n")
	twilioFile := writeSecret(t, "twilio.token", "token-123\r\n")
	smtpFile := writeSecret(t, "smtp.password", "pass word \n\n") // one newline trimmed, nothing else
	t.Setenv("PORTCULLIS_TEST_WEBHOOK_KEY", strings.Repeat("e", 40))
	f, err := Parse([]byte(deliveryBase + `data_dir: /var/lib/portcullis
delivery:
  sms:
    twilio:
      account_sid: AC0123
      api_key_sid: SK0123
      secret_file: '` + twilioFile + `'
      messaging_service_sid: MG0123
      timeout: 5s
  voice:
    webhook: {url: 'https://hooks.bank.example/voice', secret_env: PORTCULLIS_TEST_WEBHOOK_KEY}
  email:
    smtp:
      host: mail.bank.example
      port: 465
      security: tls
      from: 'Bank Security <security@bank.example>'
      username: portcullis
      password_file: '` + smtpFile + `'
`))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Delivery
	if d.SMS == nil || d.SMS.Twilio == nil || d.Voice == nil || d.Voice.Webhook == nil || d.Email == nil || d.Email.SMTP == nil {
		t.Fatalf("senders: %+v", d)
	}
	if got, err := d.SMS.Twilio.Secret(); err != nil || got != "token-123" {
		t.Errorf("twilio secret = %q, %v; want token-123 (CRLF trimmed)", got, err)
	}
	if got, err := d.Voice.Webhook.Secret(); err != nil || string(got) != strings.Repeat("e", 40) {
		t.Errorf("webhook secret = %q, %v", got, err)
	}
	if got, err := d.Email.SMTP.Password(); err != nil || got != "pass word \n" {
		t.Errorf("smtp password = %q, %v; want one trailing newline trimmed", got, err)
	}
	if got := d.SecretFiles(); !slices.Equal(got, []string{twilioFile, smtpFile}) {
		t.Errorf("secret files %q", got)
	}

	f, err = Parse([]byte(deliveryBase + "delivery:\n  sms: {webhook: {url: 'http://127.0.0.1:9000/hook', secret_file: '" + webhookFile + "'}}\n" +
		"  voice: {outbox: {path: outbox.jsonl}}\n  email: {outbox: {path: /tmp/mail.jsonl}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Delivery.SMS.Webhook.Secret(); err != nil || string(got) != webhookKey {
		t.Errorf("webhook secret from a file = %q, %v", got, err)
	}
	if got, want := f.DataPath(f.Delivery.Voice.Outbox.Path), filepath.Join(f.DataDir, "outbox.jsonl"); got != want {
		t.Errorf("relative outbox path = %q, want %q under data_dir", got, want)
	}
	if got := f.DataPath(f.Delivery.Email.Outbox.Path); got != "/tmp/mail.jsonl" {
		t.Errorf("absolute outbox path = %q", got)
	}
}

// TestDeliverySecretFileIsRelativeToTheConfig: like every file the
// operator names, a secret file is found beside the configuration.
func TestDeliverySecretFileIsRelativeToTheConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "twilio.token"), []byte("token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "portcullis.yaml")
	yaml := deliveryBase + "delivery:\n  sms: {twilio: {account_sid: AC1, secret_file: twilio.token, from: '+12015550100'}}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Delivery.SMS.Twilio.SecretFile, filepath.Join(dir, "twilio.token"); got != want {
		t.Errorf("secret_file = %q, want %q", got, want)
	}
}

func TestDeliveryProblems(t *testing.T) {
	short := writeSecret(t, "short.key", "too-short\n")
	empty := writeSecret(t, "empty.key", "\n")
	good := writeSecret(t, "good.key", strings.Repeat("k", 32))
	tests := []struct{ name, delivery, want string }{
		{"twilio cannot send email",
			"  email: {twilio: {account_sid: AC1, secret_env: X, from: '+1'}}\n",
			"delivery.email.twilio: twilio cannot send email; use outbox, webhook or smtp"},
		{"smtp cannot send text messages",
			"  sms: {smtp: {host: mail.example, from: a@b.example}}\n",
			"delivery.sms.smtp: smtp cannot send text messages; use outbox, webhook or twilio"},
		{"smtp cannot place calls",
			"  voice: {smtp: {host: mail.example, from: a@b.example}}\n",
			"delivery.voice.smtp: smtp cannot place voice calls"},
		{"two senders at once",
			"  sms:\n    outbox: {path: o.jsonl}\n    webhook: {url: 'https://h.example', secret_file: '" + good + "'}\n",
			"delivery.sms: sets outbox and webhook: a channel has one sender"},
		{"no sender",
			"  voice: {}\n",
			"delivery.voice: names no sender: set one of outbox, webhook, twilio"},
		{"an outbox without a path",
			"  sms: {outbox: {}}\n",
			"delivery.sms.outbox.path: is required"},
		{"a webhook without a secret",
			"  sms: {webhook: {url: 'https://h.example'}}\n",
			"delivery.sms.webhook: needs secret_file or secret_env (never inline)"},
		{"a twilio account without a secret",
			"  sms: {twilio: {account_sid: AC1, from: '+12015550100'}}\n",
			"delivery.sms.twilio: needs secret_file or secret_env (never inline)"},
		{"smtp user without a password",
			"  email: {smtp: {host: mail.example, from: a@b.example, username: u}}\n",
			"delivery.email.smtp: needs password_file or password_env (never inline)"},
		{"an environment variable that is not set",
			"  sms: {webhook: {url: 'https://h.example', secret_env: PORTCULLIS_TEST_NO_SUCH_VAR}}\n",
			"delivery.sms.webhook.secret_env: PORTCULLIS_TEST_NO_SUCH_VAR is not set"},
		{"a secret file that is missing",
			"  sms: {webhook: {url: 'https://h.example', secret_file: /nonexistent/webhook.key}}\n",
			"delivery.sms.webhook.secret_file: open /nonexistent/webhook.key: no such file or directory"},
		{"a secret file that is empty",
			"  sms: {twilio: {account_sid: AC1, from: '+1', secret_file: '" + empty + "'}}\n",
			"delivery.sms.twilio.secret_file: " + empty + " is empty"},
		{"both secret sources",
			"  sms: {webhook: {url: 'https://h.example', secret_file: '" + good + "', secret_env: HOME}}\n",
			"delivery.sms.webhook.secret_env: set secret_file or secret_env, not both"},
		{"a short webhook secret",
			"  sms: {webhook: {url: 'https://h.example', secret_file: '" + short + "'}}\n",
			"delivery.sms.webhook.secret_file: the secret is 9 bytes; it must be at least 32"},
		{"a webhook over plain http to another host",
			"  sms: {webhook: {url: 'http://h.example/hook', secret_file: '" + good + "'}}\n",
			`delivery.sms.webhook.url: "http://h.example/hook" must be an https URL (http only to a loopback host)`},
		{"a voice call without a number to call from",
			"  voice: {twilio: {account_sid: AC1, secret_file: '" + good + "', messaging_service_sid: MG1}}\n",
			"delivery.voice.twilio.from: is required for voice calls"},
		{"a text message without a sender",
			"  sms: {twilio: {account_sid: AC1, secret_file: '" + good + "'}}\n",
			"delivery.sms.twilio: needs from or messaging_service_sid"},
		{"plain smtp to a remote host",
			"  email: {smtp: {host: mail.example, security: none, from: a@b.example}}\n",
			`delivery.email.smtp.security: none is allowed only for a loopback host, not "mail.example"`},
		{"an smtp password without a user",
			"  email: {smtp: {host: mail.example, from: a@b.example, password_file: '" + good + "'}}\n",
			"delivery.email.smtp.username: is required with a password"},
		{"an smtp security that does not exist",
			"  email: {smtp: {host: mail.example, from: a@b.example, security: ssl}}\n",
			`delivery.email.smtp.security: "ssl" is not one of starttls, tls, none`},
		{"an smtp sender that is not an address",
			"  email: {smtp: {host: mail.example, from: security}}\n",
			`delivery.email.smtp.from: "security" is not an email address`},
		{"an unknown sender",
			"  sms: {carrier_pigeon: {}}\n",
			"delivery.sms.carrier_pigeon: unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(deliveryBase + "delivery:\n" + tc.delivery))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("problems:\n%s\nwant one containing:\n%s", err, tc.want)
			}
		})
	}
}

// TestDeliveryProblemsArePlaced: each problem once, on the line of the key
// it names, or of the nearest key the file has.
func TestDeliveryProblemsArePlaced(t *testing.T) {
	_, err := Parse([]byte(deliveryBase + `delivery:
  sms:
    outbox: {path: o.jsonl}
    twilio: {account_sid: AC1, from: '+12015550100'}
  voice:
    smtp: {host: mail.example, from: a@b.example}
  email:
    twilio: {account_sid: AC1}
    webhook:
      url: ftp://h.example
      secret_env: PORTCULLIS_TEST_NO_SUCH_VAR
      timeout: -1s
`))
	if err == nil {
		t.Fatal("accepted")
	}
	want := strings.Join([]string{
		"5:3: delivery.sms: sets outbox and twilio: a channel has one sender",
		"7:5: delivery.sms.twilio: needs secret_file or secret_env (never inline)",
		"9:5: delivery.voice.smtp: smtp cannot place voice calls; use outbox, webhook or twilio",
		"10:3: delivery.email: sets webhook and twilio: a channel has one sender",
		"11:5: delivery.email.twilio: twilio cannot send email; use outbox, webhook or smtp",
		`13:7: delivery.email.webhook.url: "ftp://h.example" must be an https URL (http only to a loopback host)`,
		"14:7: delivery.email.webhook.secret_env: PORTCULLIS_TEST_NO_SUCH_VAR is not set",
		"15:7: delivery.email.webhook.timeout: must not be negative",
	}, "\n")
	if err.Error() != want {
		t.Fatalf("problems:\n%s\nwant:\n%s", err, want)
	}
}
