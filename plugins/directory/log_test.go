package directory

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/gateway/selfservice"
)

// Identity data used only here, so that finding it in a log line can mean
// only that a lookup logged it.
const (
	logLast4  = "0042"
	logDOB    = "1931-07-14"
	logNumber = "9876543210"
	logVIN    = "1FAKE000000004242"
)

var logSecrets = []string{logLast4, logDOB, logNumber, logVIN, "07/14/1931", "9876-543210"}

// captureLog is a logger writing JSON lines, without times (digits that
// could look like a secret), at every level to the returned buffer.
func captureLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})
	return slog.New(h), &buf
}

func checkNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range logSecrets {
		if strings.Contains(text, s) {
			t.Errorf("%s holds %q:\n%s", what, s, text)
		}
	}
}

func TestFileLogsNoIdentityData(t *testing.T) {
	logger, buf := captureLog()
	content := `{"customers": [{"customer_id": "c42", "last_name": "Quixote", "tax_id_last4": "` + logLast4 + `", "date_of_birth": "` + logDOB + `",
		"accounts": [{"kind": "account", "number": "` + logNumber + `", "product": "savings", "status": "open"},
		{"kind": "vehicle", "number": "` + logVIN + `", "product": "carloans", "status": "open"}]}]}`
	path := writeFile(t, "c.json", content)
	if err := os.Chmod(path, 0o644); err != nil { // so that the warning is logged too
		t.Fatal(err)
	}
	d, err := OpenFile(Config{File: path, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	id := selfservice.Identity{LastName: "Quixote", TaxIDLast4: logLast4, DateOfBirth: logDOB}
	var errs []string
	for _, number := range []string{logNumber, logVIN, "9876-543210", "1111"} {
		if _, err := d.Verify(t.Context(), id, number); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if _, err := d.Identify(t.Context(), with(id, func(i *selfservice.Identity) { i.DateOfBirth = "07/14/1931" })); err != nil {
		errs = append(errs, err.Error())
	}
	if err := os.WriteFile(path, []byte(strings.Replace(content, `"`+logLast4+`"`, `"`+logLast4+`1"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err == nil {
		t.Fatal("Reload accepted a five-digit last 4")
	} else {
		errs = append(errs, err.Error())
	}
	out := buf.String()
	if !strings.Contains(out, "customer directory loaded") || !strings.Contains(out, "customer file is open to other users") {
		t.Fatalf("the log lacks the load lines; the capture is broken:\n%s", out)
	}
	checkNoSecrets(t, "the log", out)
	checkNoSecrets(t, "the errors", strings.Join(errs, "\n"))
}

func TestHTTPLogsNoIdentityData(t *testing.T) {
	match := `{"match": true, "customer": {"customer_id": "c42", "accounts": [{"kind": "account", "number": "` + logNumber + `", "product": "savings", "status": "open"}]}}`
	answers := []struct {
		status int
		body   string
	}{
		{200, match},
		{404, ""},
		{200, `{"match": false}`},
		// A faulty service echoing the request back, in an error and in
		// fields of a malformed answer.
		{500, `{"error": "no customer with tax id ` + logLast4 + ` born ` + logDOB + `"}`},
		{200, `{"match": true, "customer": {"customer_id": "c42", "accounts": [{"kind": "` + logDOB + `", "number": "` + logNumber + `x!", "product": "` + logLast4 + `", "status": "` + logVIN + `"}]}}`},
		{200, `{"match": "` + logNumber + `"}`},
		{200, `{"match": true, "customer": {"customer_id": "c42", "accounts": [{"kind": "account", "number": "1111", "product": "savings", "status": "open"}]}}`},
	}
	n := 0
	f := newFakeService(t, func(op string, body map[string]string) (int, string) {
		a := answers[n%len(answers)]
		n++
		return a.status, a.body
	})
	logger, buf := captureLog()
	h, err := OpenHTTP(Config{URL: f.srv.URL + "/dir", TokenFile: tokenFile(t, testToken, 0o600), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	id := selfservice.Identity{LastName: "Quixote", TaxIDLast4: logLast4, DateOfBirth: logDOB}
	var errs []string
	failures := 0
	for range answers {
		_, err := h.Verify(t.Context(), id, logNumber)
		if err != nil {
			errs = append(errs, err.Error())
			if !errors.Is(err, selfservice.ErrNoMatch) {
				failures++
			}
		}
		if _, err := h.Identify(t.Context(), id); err != nil {
			errs = append(errs, err.Error())
		}
	}
	out := buf.String()
	if failures == 0 || strings.Count(out, "customer directory lookup failed") < 2 || !strings.Contains(out, `"match":true`) {
		t.Fatalf("the log lacks the lookup lines; the capture is broken:\n%s", out)
	}
	checkNoSecrets(t, "the log", out)
	checkNoSecrets(t, "the errors", strings.Join(errs, "\n"))
}
