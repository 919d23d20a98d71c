package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/outbox"
)

func newSender(t *testing.T, cfg outbox.Config) *outbox.Sender {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "outbox.jsonl")
	}
	s, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendWritesOneLinePerMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("EST", -5*3600))
	s := newSender(t, outbox.Config{Path: path, Now: func() time.Time { return at }})
	msgs := []notify.Message{
		{Channel: notify.SMS, To: "+447700900123", UserID: "u1", Purpose: notify.PurposeLogin, Text: "123456 is your code"},
		{Channel: notify.Email, To: "a@example.com", UserID: "u1", Purpose: notify.PurposeNotice, Subject: "Password changed", Text: "changed"},
	}
	for _, m := range msgs {
		if err := s.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines:\n%s", len(lines), b)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"time": "2026-03-04T10:06:07Z", "channel": "sms", "to": "+447700900123",
		"user_id": "u1", "purpose": "login", "text": "123456 is your code"}
	if fmt.Sprint(first) != fmt.Sprint(want) {
		t.Errorf("first line\n got %v\nwant %v", first, want)
	}
	if !strings.Contains(lines[1], `"subject":"Password changed"`) {
		t.Errorf("email line has no subject: %s", lines[1])
	}

	recs, err := outbox.Messages(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Message != msgs[0] || recs[1].Message != msgs[1] {
		t.Errorf("Messages = %+v", recs)
	}
	if !recs[0].Time.Equal(at) || recs[0].Time.Location() != time.UTC {
		t.Errorf("time %v, want %v in UTC", recs[0].Time, at)
	}
}

func TestConcurrentSendsWriteWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	// Two senders on one file stand for two processes: the mutex of one
	// does not cover the other, O_APPEND with one write per line must.
	a, b := newSender(t, outbox.Config{Path: path}), newSender(t, outbox.Config{Path: path})
	const n = 200
	long := strings.Repeat("x", 4000) // well past any small buffer
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			errs <- s.Send(t.Context(), notify.Message{Channel: notify.SMS, To: "+15550100", UserID: fmt.Sprint("u", i),
				Purpose: notify.PurposeLogin, Text: long})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	recs, err := outbox.Messages(path)
	if err != nil {
		t.Fatal(err) // a torn line fails to decode
	}
	if len(recs) != n {
		t.Fatalf("got %d records, want %d", len(recs), n)
	}
	seen := make(map[string]bool)
	for _, r := range recs {
		if r.Text != long {
			t.Fatalf("record for %s has a damaged text", r.UserID)
		}
		seen[r.UserID] = true
	}
	if len(seen) != n {
		t.Errorf("got %d distinct users, want %d", len(seen), n)
	}
}

func TestRefusesFileOthersCanRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := outbox.New(outbox.Config{Path: path})
	if err == nil {
		t.Fatal("New accepted a 0644 outbox")
	}
	for _, want := range []string{path, "0644", "chmod 600"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestSendChecksModeEveryTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	s := newSender(t, outbox.Config{Path: path})
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	err := s.Send(t.Context(), notify.Message{Channel: notify.SMS, To: "+15550100", Text: "secret 123456"})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Send to a 0640 file: %v", err)
	}
	if strings.Contains(err.Error(), "123456") {
		t.Errorf("error quotes the text: %v", err)
	}
}

func TestRecreatesRemovedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	s := newSender(t, outbox.Config{Path: path})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), notify.Message{Channel: notify.SMS, UserID: "u1", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("recreated with mode %04o", fi.Mode().Perm())
	}
}

func TestRefusesDirectory(t *testing.T) {
	if _, err := outbox.New(outbox.Config{Path: t.TempDir()}); err == nil {
		t.Error("New accepted a directory")
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := outbox.New(outbox.Config{}); err == nil || !strings.Contains(err.Error(), "path") {
		t.Errorf("empty path: %v", err)
	}
	if _, err := outbox.New(outbox.Config{Path: filepath.Join(t.TempDir(), "missing", "outbox.jsonl")}); err == nil {
		t.Error("New accepted a path in a missing directory")
	}
}

func TestSendHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	s := newSender(t, outbox.Config{Path: path})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Send(ctx, notify.Message{Channel: notify.SMS, Text: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled context: %v", err)
	}
	if recs, _ := outbox.Messages(path); len(recs) != 0 {
		t.Errorf("a cancelled send was written: %+v", recs)
	}
}

func TestLogsNeitherTextNorDestination(t *testing.T) {
	var logs bytes.Buffer
	s := newSender(t, outbox.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := s.Send(t.Context(), notify.Message{Channel: notify.SMS, To: "+447700900123", UserID: "u7",
		Purpose: notify.PurposeLogin, Text: "654321 is your code"}); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, secret := range []string{"654321", "7700900123"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %q: %s", secret, out)
		}
	}
	for _, want := range []string{"user_id=u7", "purpose=login", "channel=sms", "**23"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
}

func TestLast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	s := newSender(t, outbox.Config{Path: path})
	for _, m := range []notify.Message{
		{Channel: notify.SMS, UserID: "alice", Purpose: notify.PurposeLogin, Text: "111111"},
		{Channel: notify.SMS, UserID: "bob", Purpose: notify.PurposeLogin, Text: "222222"},
		{Channel: notify.Voice, UserID: "alice", Purpose: notify.PurposeLogin, Text: "333333"},
		{Channel: notify.SMS, UserID: "alice", Purpose: notify.PurposeRecover, Text: "444444"},
	} {
		if err := s.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		filter outbox.Filter
		want   string
	}{
		{"newest of all", outbox.Filter{}, "444444"},
		{"user and purpose", outbox.Filter{UserID: "alice", Purpose: notify.PurposeLogin}, "333333"},
		{"user, purpose and channel", outbox.Filter{UserID: "alice", Purpose: notify.PurposeLogin, Channel: notify.SMS}, "111111"},
		{"other user", outbox.Filter{UserID: "bob"}, "222222"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := outbox.Last(path, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Text != tc.want {
				t.Errorf("Last = %q, want %q", rec.Text, tc.want)
			}
		})
	}
	if _, err := outbox.Last(path, outbox.Filter{UserID: "carol"}); !errors.Is(err, outbox.ErrNoMessage) {
		t.Errorf("Last for nobody: %v", err)
	}
}

func TestReadSkipsLineInProgress(t *testing.T) {
	in := `{"time":"2026-01-01T00:00:00Z","channel":"sms","user_id":"u1","text":"a"}` + "\n\n" +
		`{"time":"2026-01-01T00:00:01Z","channel":"sms","user_id":"u2","te`
	recs, err := outbox.Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].UserID != "u1" {
		t.Errorf("Read = %+v", recs)
	}
	if _, err := outbox.Read(strings.NewReader("not json\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("Read of a bad line: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","channel":"sms","user_id":"u1","text":"a"}` + "\n"))
	f.Add([]byte("\n\n{}\n{\"time\":1}\n"))
	f.Add([]byte(`{"channel":"sms"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := outbox.Read(bytes.NewReader(b))
		if err == nil && len(recs) > bytes.Count(b, []byte("\n")) {
			t.Fatalf("%d records from %d lines", len(recs), bytes.Count(b, []byte("\n")))
		}
	})
}
