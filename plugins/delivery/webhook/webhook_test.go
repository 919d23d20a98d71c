package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/webhook"
)

var (
	secret = []byte("0123456789abcdef0123456789abcdef")
	at     = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	msg    = notify.Message{Channel: notify.SMS, To: "+447700900123", UserID: "u1", Purpose: notify.PurposeLogin,
		Text: "482913 is your Bank security code."}
)

// received is one request as the receiver saw it.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an httptest server recording requests and answering with
// status and answer.
func receiver(t *testing.T, status int, answer string) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{header: r.Header.Clone(), body: b})
		mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

func newSender(t *testing.T, cfg webhook.Config) *webhook.Sender {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = secret
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return at }
	}
	s, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendSignsTheBody(t *testing.T) {
	srv, got := receiver(t, http.StatusAccepted, `{"id":"rcv-42"}`)
	var logs bytes.Buffer
	s := newSender(t, webhook.Config{URL: srv.URL + "/hooks/sms?tenant=bank", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := s.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	reqs := got()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	r := reqs[0]
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	ts := r.header.Get(webhook.HeaderTimestamp)
	if ts != strconv.FormatInt(at.Unix(), 10) {
		t.Errorf("timestamp %q, want %d", ts, at.Unix())
	}
	// The recipe of the package doc, computed here independently.
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "." + string(r.body)))
	if sig, want := r.header.Get(webhook.HeaderSignature), "v1="+hex.EncodeToString(mac.Sum(nil)); sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
	if err := webhook.Verify(secret, r.header, r.body, at.Add(time.Minute), webhook.DefaultTolerance); err != nil {
		t.Errorf("Verify: %v", err)
	}

	var body map[string]string
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"channel": "sms", "to": msg.To, "user_id": "u1", "purpose": "login", "text": msg.Text,
		"time": "2026-05-06T07:08:09Z", "id": r.header.Get(webhook.HeaderID)}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body %s = %q, want %q", k, body[k], v)
		}
	}
	if len(body["id"]) != 32 {
		t.Errorf("id %q", body["id"])
	}
	if _, ok := body["subject"]; ok {
		t.Error("an SMS carries a subject")
	}

	out := logs.String()
	if strings.Contains(out, "482913") || strings.Contains(out, "7700900123") {
		t.Errorf("log shows the text or the number: %s", out)
	}
	if !strings.Contains(out, "provider_message_id=rcv-42") {
		t.Errorf("log lacks the receiver's id: %s", out)
	}
}

func TestVerifyRefuses(t *testing.T) {
	body := []byte(`{"id":"x"}`)
	header := func(ts int64, sig string) http.Header {
		h := http.Header{}
		h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(webhook.HeaderSignature, sig)
		return h
	}
	good := func(ts int64, b []byte) string {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(strconv.FormatInt(ts, 10) + "." + string(b)))
		return "v1=" + hex.EncodeToString(mac.Sum(nil))
	}
	now := at.Unix()
	tests := []struct {
		name string
		h    http.Header
		body []byte
		ok   bool
	}{
		{"authentic", header(now, good(now, body)), body, true},
		{"one of several signatures", header(now, "v0=abc v1=00 "+good(now, body)), body, true},
		{"changed body", header(now, good(now, body)), []byte(`{"id":"y"}`), false},
		{"other secret", func() http.Header {
			mac := hmac.New(sha256.New, []byte("another secret, 32 bytes long..."))
			mac.Write([]byte(strconv.FormatInt(now, 10) + "." + string(body)))
			return header(now, "v1="+hex.EncodeToString(mac.Sum(nil)))
		}(), body, false},
		{"stale", header(now-3600, good(now-3600, body)), body, false},
		{"from the future", header(now+3600, good(now+3600, body)), body, false},
		{"no timestamp", http.Header{webhook.HeaderSignature: {good(now, body)}}, body, false},
		{"no signature", header(now, ""), body, false},
		{"unversioned", header(now, strings.TrimPrefix(good(now, body), "v1=")), body, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(secret, tc.h, tc.body, at, webhook.DefaultTolerance)
			if tc.ok != (err == nil) {
				t.Fatalf("Verify = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, webhook.ErrSignature) {
				t.Errorf("error %v does not wrap ErrSignature", err)
			}
		})
	}
}

func TestServerErrorIsAnError(t *testing.T) {
	// The receiver echoes the request in its error page, as some do: the
	// error must not carry the text or the number on.
	echo := `{"error":"upstream down","request":{"to":"+447700900123","text":"482913 is your Bank security code."},"code":"482913"}`
	srv, _ := receiver(t, http.StatusServiceUnavailable, echo+strings.Repeat(" padding", 100))
	s := newSender(t, webhook.Config{URL: srv.URL})
	err := s.Send(t.Context(), msg)
	if err == nil {
		t.Fatal("Send succeeded on a 503")
	}
	e := err.Error()
	for _, want := range []string{"webhook", "sms", "503", "upstream down"} {
		if !strings.Contains(e, want) {
			t.Errorf("error %q lacks %q", e, want)
		}
	}
	for _, secret := range []string{"482913", "7700900123", "security code"} {
		if strings.Contains(e, secret) {
			t.Errorf("error %q quotes %q", e, secret)
		}
	}
	if len(e) > 400 {
		t.Errorf("error is %d bytes long: the answer's snippet is not bounded", len(e))
	}
}

func TestClientErrorIsAnError(t *testing.T) {
	srv, _ := receiver(t, http.StatusUnauthorized, "")
	s := newSender(t, webhook.Config{URL: srv.URL})
	if err := s.Send(t.Context(), msg); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Send on a 401: %v", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()

	s := newSender(t, webhook.Config{URL: srv.URL})
	err := s.Send(t.Context(), msg)
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("Send on a 307: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), other.URL) {
		t.Errorf("error names the redirect target: %v", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Having read the body, the server notices the client hang up.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer stuck.Close()
	defer close(release) // before Close, which waits for the handlers

	t.Run("configured timeout", func(t *testing.T) {
		s := newSender(t, webhook.Config{URL: stuck.URL, Timeout: 50 * time.Millisecond})
		if err := s.Send(t.Context(), msg); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send to a stuck receiver: %v", err)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		s := newSender(t, webhook.Config{URL: stuck.URL, Timeout: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := s.Send(ctx, msg); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send to a stuck receiver: %v", err)
		}
	})
}

func TestTransportErrorOmitsURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hook?token=s3cr3t"
	srv.Close() // nothing listens any more
	s := newSender(t, webhook.Config{URL: url})
	err := s.Send(t.Context(), msg)
	if err == nil {
		t.Fatal("Send to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error quotes the URL: %v", err)
	}
}

func TestConcurrentSends(t *testing.T) {
	srv, got := receiver(t, http.StatusOK, "")
	s := newSender(t, webhook.Config{URL: srv.URL, Now: time.Now})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := s.Send(t.Context(), msg); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ids := make(map[string]bool)
	for _, r := range got() {
		if err := webhook.Verify(secret, r.header, r.body, time.Now(), webhook.DefaultTolerance); err != nil {
			t.Error(err)
		}
		ids[r.header.Get(webhook.HeaderID)] = true
	}
	if len(ids) != 20 {
		t.Errorf("%d distinct ids for 20 messages", len(ids))
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  webhook.Config
		want string
	}{
		{"no URL", webhook.Config{Secret: secret}, "url is required"},
		{"plain http to a remote host", webhook.Config{URL: "http://hooks.example.com/x", Secret: secret}, "https"},
		{"other scheme", webhook.Config{URL: "ftp://hooks.example.com/x", Secret: secret}, "https"},
		{"relative URL", webhook.Config{URL: "/hooks", Secret: secret}, "absolute"},
		{"credentials in the URL", webhook.Config{URL: "https://u:p@hooks.example.com/", Secret: secret}, "password"},
		{"no secret", webhook.Config{URL: "https://hooks.example.com/"}, "secret"},
		{"short secret", webhook.Config{URL: "https://hooks.example.com/", Secret: []byte("short")}, "at least 32"},
		{"negative timeout", webhook.Config{URL: "https://hooks.example.com/", Secret: secret, Timeout: -1}, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhook.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	for _, ok := range []string{"https://hooks.example.com/x", "http://127.0.0.1:8080/x", "http://[::1]/x", "http://localhost/x"} {
		if _, err := webhook.New(webhook.Config{URL: ok, Secret: secret}); err != nil {
			t.Errorf("New(%s): %v", ok, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(strconv.FormatInt(at.Unix(), 10), "v1=00", []byte(`{"id":"x"}`))
	f.Add("", "", []byte(nil))
	f.Add("-99999999999999999999", "v1= v1=", []byte("{}"))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, sig)
		err := webhook.Verify(secret, h, body, at, webhook.DefaultTolerance)
		if err == nil {
			// Accepted: then it must really be the signature.
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(h.Get(webhook.HeaderTimestamp) + "." + string(body)))
			if !strings.Contains(h.Get(webhook.HeaderSignature), "v1="+hex.EncodeToString(mac.Sum(nil))) {
				t.Fatalf("Verify accepted %q for %q", sig, body)
			}
		} else if !errors.Is(err, webhook.ErrSignature) {
			t.Fatalf("error %v does not wrap ErrSignature", err)
		}
	})
}
