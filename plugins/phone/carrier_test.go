package phone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// provider is a fake carrier-data API. It answers GET /v1/{number} with
// the body configured for that number and counts the requests.
type provider struct {
	mu      sync.Mutex
	answers map[string]func(w http.ResponseWriter)
	calls   atomic.Int32
	srv     *httptest.Server
}

func newProvider(t *testing.T) *provider {
	p := &provider{answers: map[string]func(http.ResponseWriter){}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		if r.Header.Get("X-Api-Key") != "s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		number := strings.TrimPrefix(r.URL.Path, "/v1/")
		if q := r.URL.Query().Get("number"); q != "" {
			number = q
		}
		p.mu.Lock()
		answer, ok := p.answers[number]
		p.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		answer(w)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) answer(number string, f func(w http.ResponseWriter)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[number] = f
}

func jsonBody(body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}
}

func status(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { http.Error(w, "oops", code) }
}

var providerTypes = map[string]string{
	"nonFixedVoip": VoIP,
	"fixedVoip":    VoIP,
	"mobile":       Mobile,
	"landline":     FixedLine,
	"tollFree":     TollFree,
}

func (p *provider) lookup(t *testing.T, url string) *HTTPCarrierLookup {
	t.Helper()
	l, err := NewHTTPCarrierLookup(HTTPCarrierConfig{
		URL:    p.srv.URL + url,
		Header: "X-Api-Key",
		Secret: "s3cret",
		Field:  "carrier.type",
		Types:  providerTypes,
		Client: p.srv.Client(),
	})
	if err != nil {
		t.Fatalf("NewHTTPCarrierLookup: %v", err)
	}
	return l
}

func TestCarrierLookup(t *testing.T) {
	p := newProvider(t)
	p.answer("+16502530000", jsonBody(`{"carrier": {"name": "Google Voice", "type": "nonFixedVoip"}}`))
	p.answer("+16502530001", jsonBody(`{"carrier": {"type": "MOBILE"}}`))
	p.answer("+445612345678", jsonBody(`{"carrier": {"type": "mobile"}}`))
	p.answer("+16502530002", jsonBody(`{"carrier": {"type": "voip"}}`))
	p.answer("+16502530003", jsonBody(`{"carrier": {"type": "landline"}}`))

	for _, tmpl := range []string{"/v1/{e164}", "/v1/lookup?number={e164}&fields=carrier"} {
		t.Run(tmpl, func(t *testing.T) {
			c := newClassifier(t, Config{Carrier: p.lookup(t, tmpl)})
			tests := []struct {
				name, raw, lineType string
				callingCode         int
			}{
				{"us number the provider says is voip", "+1 650 253 0000", VoIP, 1},
				{"provider values are matched regardless of case", "(650) 253-0001", Mobile, 1},
				{"carrier answer overrides a prefix that is not voip", "+1 650 253 0001", Mobile, 1},
				{"our own names need no mapping", "+1 650 253 0002", VoIP, 1},
				{"landline", "+1 650 253 0003", FixedLine, 1},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					facts, _, err := c.Classify(t.Context(), tc.raw)
					if err != nil {
						t.Fatal(err)
					}
					if facts.LineType != tc.lineType || facts.Source != SourceCarrier || !facts.Valid {
						t.Errorf("facts = %+v, want valid %s from carrier", facts, tc.lineType)
					}
					// The carrier answers the line type only; the calling
					// code is the number plan's.
					if facts.CallingCode != tc.callingCode {
						t.Errorf("calling code = %d, want %d", facts.CallingCode, tc.callingCode)
					}
				})
			}
		})
	}
}

// A number the plan types as VoIP is VoIP whatever the carrier says: it is
// refused when either says VoIP, and the carrier is not asked.
func TestPrefixVoIPStaysVoIP(t *testing.T) {
	p := newProvider(t)
	p.answer("+445612345678", jsonBody(`{"carrier": {"type": "mobile"}}`))
	c := newClassifier(t, Config{Carrier: p.lookup(t, "/v1/{e164}")})
	facts, _, err := c.Classify(t.Context(), "+44 56 1234 5678")
	if err != nil || facts.LineType != VoIP || facts.Source != SourcePrefix {
		t.Fatalf("a plan VoIP number the carrier calls mobile: %+v %v, want voip from the prefix", facts, err)
	}
}

// TestCarrierFailureFailsClosed checks that any failure of the lookup
// yields "unknown", never the prefix answer, is logged with the number
// masked, and is not cached.
func TestCarrierFailureFailsClosed(t *testing.T) {
	p := newProvider(t)
	tests := []struct {
		name   string
		answer func(http.ResponseWriter)
		logged string
	}{
		{"server error", status(http.StatusInternalServerError), "500"},
		{"not found", nil, "404"},
		{"bad json", jsonBody(`{"carrier": {"type": `), "decode response"},
		{"not json", jsonBody(`<html>maintenance</html>`), "decode response"},
		{"missing field", jsonBody(`{"carrier": {"name": "x"}}`), "is not a string"},
		{"field not an object", jsonBody(`{"carrier": "x"}`), "response has no field"},
		{"unmapped value", jsonBody(`{"carrier": {"type": "satellite"}}`), "unmapped line type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A number the prefix alone would call mobile, so an
			// optimistic fallback would show.
			if tc.answer != nil {
				p.answer("+447400123456", tc.answer)
			} else {
				p.mu.Lock()
				delete(p.answers, "+447400123456")
				p.mu.Unlock()
			}
			var logs bytes.Buffer
			c := newClassifier(t, Config{
				Carrier: p.lookup(t, "/v1/{e164}"),
				Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
			})
			before := p.calls.Load()
			for range 2 {
				facts, e164, err := c.Classify(t.Context(), "+44 7400 123456")
				if err != nil {
					t.Fatalf("Classify returned an error for a valid number: %v", err)
				}
				if facts.LineType != Unknown || facts.Source != SourceCarrier || !facts.Valid {
					t.Errorf("facts = %+v, want valid unknown from carrier", facts)
				}
				if e164 != "+447400123456" {
					t.Errorf("e164 = %q", e164)
				}
			}
			if n := p.calls.Load() - before; n != 2 {
				t.Errorf("provider called %d times, want 2 (failures are not cached)", n)
			}
			out := logs.String()
			if !strings.Contains(out, "carrier lookup failed") || !strings.Contains(out, tc.logged) {
				t.Errorf("log does not report the failure (%q):\n%s", tc.logged, out)
			}
			if strings.Contains(out, "7400123456") || strings.Contains(out, "s3cret") {
				t.Errorf("log contains the full number or the secret:\n%s", out)
			}
			if !strings.Contains(out, "+44 •••• ••••56") {
				t.Errorf("log lacks the masked number:\n%s", out)
			}
		})
	}
}

func TestCarrierWrongSecret(t *testing.T) {
	p := newProvider(t)
	p.answer("+16502530000", jsonBody(`{"carrier": {"type": "mobile"}}`))
	l, err := NewHTTPCarrierLookup(HTTPCarrierConfig{
		URL: p.srv.URL + "/v1/{e164}", Header: "X-Api-Key", Secret: "wrong", Field: "carrier.type",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.LineType(t.Context(), "+16502530000"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("LineType error = %v, want status 401", err)
	}
}

// TestCarrierErrorsHideTheNumber checks that transport errors, which
// normally quote the request URL, do not carry the number.
func TestCarrierErrorsHideTheNumber(t *testing.T) {
	p := newProvider(t)
	url := p.srv.URL
	p.srv.Close() // connection refused from now on
	l, err := NewHTTPCarrierLookup(HTTPCarrierConfig{URL: url + "/v1/{e164}", Field: "line_type"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.LineType(t.Context(), "+16502530000")
	if err == nil {
		t.Fatal("LineType succeeded against a closed server")
	}
	if strings.Contains(err.Error(), "6502530000") {
		t.Errorf("error %q contains the number", err)
	}
}

func TestCarrierCache(t *testing.T) {
	p := newProvider(t)
	p.answer("+16502530000", jsonBody(`{"carrier": {"type": "nonFixedVoip"}}`))
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	c := newClassifier(t, Config{
		Carrier:  p.lookup(t, "/v1/{e164}"),
		CacheTTL: time.Hour,
		Now:      func() time.Time { return now },
	})
	classify := func(raw string) {
		t.Helper()
		facts, _, err := c.Classify(t.Context(), raw)
		if err != nil || facts.LineType != VoIP {
			t.Fatalf("Classify(%q) = %+v, %v; want voip", raw, facts, err)
		}
	}

	classify("+1 650 253 0000")
	// The same number written differently is the same cache entry.
	classify("(650) 253-0000")
	classify("+16502530000")
	if n := p.calls.Load(); n != 1 {
		t.Errorf("provider called %d times, want 1", n)
	}

	now = now.Add(59 * time.Minute)
	classify("+1 650 253 0000")
	if n := p.calls.Load(); n != 1 {
		t.Errorf("within the TTL: provider called %d times, want 1", n)
	}

	now = now.Add(2 * time.Minute) // past the TTL: numbers get ported
	classify("+1 650 253 0000")
	if n := p.calls.Load(); n != 2 {
		t.Errorf("after the TTL: provider called %d times, want 2", n)
	}
}

func TestCarrierNotCalledForInvalidNumbers(t *testing.T) {
	p := newProvider(t)
	c := newClassifier(t, Config{Carrier: p.lookup(t, "/v1/{e164}")})
	if _, _, err := c.Classify(t.Context(), "12"); !errors.Is(err, ErrInvalidNumber) {
		t.Fatalf("Classify(12) error = %v", err)
	}
	if n := p.calls.Load(); n != 0 {
		t.Errorf("provider called %d times for an invalid number", n)
	}
}

// blockingTransport never answers; only the request's context ends it.
type blockingTransport struct{}

func (blockingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

func TestCarrierTimeoutFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := NewHTTPCarrierLookup(HTTPCarrierConfig{
			URL:     "https://lookup.example/v1/{e164}",
			Field:   "line_type",
			Client:  &http.Client{Transport: blockingTransport{}},
			Timeout: 2 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		c := newClassifier(t, Config{Carrier: l, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		start := time.Now()
		facts, _, err := c.Classify(t.Context(), "+44 7400 123456")
		if err != nil {
			t.Fatal(err)
		}
		if facts.LineType != Unknown || facts.Source != SourceCarrier {
			t.Errorf("facts = %+v, want unknown from carrier", facts)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("gave up after %v, want the 2s timeout", d)
		}
		if !strings.Contains(logs.String(), "deadline exceeded") {
			t.Errorf("timeout not logged:\n%s", logs.String())
		}
	})
}

// fakeCarrier is a CarrierLookup that answers when released.
type fakeCarrier struct {
	release chan struct{}
	calls   atomic.Int32
	answer  string
	err     error
}

func (f *fakeCarrier) LineType(ctx context.Context, e164 string) (string, error) {
	f.calls.Add(1)
	if f.release != nil {
		<-f.release
	}
	return f.answer, f.err
}

func TestCarrierConcurrentCallsShareOneLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCarrier{release: make(chan struct{}), answer: Mobile}
		c := newClassifier(t, Config{Carrier: f})
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				facts, _, err := c.Classify(t.Context(), "+1 650 253 0000")
				if err != nil || facts.LineType != Mobile {
					t.Errorf("Classify = %+v, %v", facts, err)
				}
			})
		}
		synctest.Wait() // all ten are waiting on the one lookup
		close(f.release)
		wg.Wait()
		if n := f.calls.Load(); n != 1 {
			t.Errorf("lookup called %d times, want 1", n)
		}
	})
}

func TestCarrierCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCarrier{release: make(chan struct{}), answer: Mobile}
		c := newClassifier(t, Config{Carrier: f})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		facts, _, err := c.Classify(ctx, "+1 650 253 0000")
		if err != nil || facts.LineType != Unknown {
			t.Errorf("Classify = %+v, %v; want unknown", facts, err)
		}
		// The lookup itself carries on and its answer is cached.
		close(f.release)
		synctest.Wait()
		facts, _, _ = c.Classify(t.Context(), "+1 650 253 0000")
		if facts.LineType != Mobile || f.calls.Load() != 1 {
			t.Errorf("after the lookup finished: %+v, %d calls; want mobile from one call", facts, f.calls.Load())
		}
	})
}

func TestCarrierAnswerOutsideVocabulary(t *testing.T) {
	c := newClassifier(t, Config{Carrier: &fakeCarrier{answer: "cellular"}})
	facts, _, err := c.Classify(t.Context(), "+1 650 253 0000")
	if err != nil || facts.LineType != Unknown {
		t.Errorf("Classify = %+v, %v; want unknown", facts, err)
	}
}

func TestNewHTTPCarrierLookupErrors(t *testing.T) {
	valid := HTTPCarrierConfig{URL: "https://lookup.example/v1/{e164}", Field: "line_type"}
	if _, err := NewHTTPCarrierLookup(valid); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	tests := []struct {
		name   string
		modify func(*HTTPCarrierConfig)
	}{
		{"no placeholder", func(c *HTTPCarrierConfig) { c.URL = "https://lookup.example/v1/" }},
		{"relative url", func(c *HTTPCarrierConfig) { c.URL = "/v1/{e164}" }},
		{"other scheme", func(c *HTTPCarrierConfig) { c.URL = "ftp://lookup.example/{e164}" }},
		{"no field", func(c *HTTPCarrierConfig) { c.Field = "" }},
		{"empty field element", func(c *HTTPCarrierConfig) { c.Field = "carrier..type" }},
		{"secret without header", func(c *HTTPCarrierConfig) { c.Secret = "x" }},
		{"mapping to an unknown line type", func(c *HTTPCarrierConfig) { c.Types = map[string]string{"cell": "cellular"} }},
		{"negative timeout", func(c *HTTPCarrierConfig) { c.Timeout = -time.Second }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.modify(&cfg)
			if _, err := NewHTTPCarrierLookup(cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func BenchmarkClassifyWithCarrier(b *testing.B) {
	f := &fakeCarrier{answer: Mobile}
	c := newClassifier(b, Config{Carrier: f})
	ctx := b.Context()
	for b.Loop() {
		c.Classify(ctx, "+1 650 253 0000")
	}
}

// TestCarrierRedirectIsNotFollowed checks that a redirect from the
// provider, to another host or the same one, is a failed lookup: the
// target never receives a request (so never sees the secret), the answer
// is unknown, and the client passed in is left as it was.
func TestCarrierRedirectIsNotFollowed(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for _, shared := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d shared client %v", code, shared), func(t *testing.T) {
				var (
					mu      sync.Mutex
					leaked  []string // X-Api-Key values the redirect target received
					targets atomic.Int32
				)
				target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					targets.Add(1)
					mu.Lock()
					leaked = append(leaked, r.Header.Get("X-Api-Key"))
					mu.Unlock()
					jsonBody(`{"carrier": {"type": "landline"}}`)(w)
				}))
				t.Cleanup(target.Close)

				var provider atomic.Int32
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					provider.Add(1)
					http.Redirect(w, r, target.URL+r.URL.Path, code)
				}))
				t.Cleanup(srv.Close)
				var client *http.Client
				if shared {
					client = srv.Client()
				}
				l, err := NewHTTPCarrierLookup(HTTPCarrierConfig{
					URL:    srv.URL + "/v1/{e164}",
					Header: "X-Api-Key",
					Secret: "s3cret",
					Field:  "carrier.type",
					Types:  providerTypes,
					Client: client,
				})
				if err != nil {
					t.Fatal(err)
				}
				if client != nil && client.CheckRedirect != nil {
					t.Error("NewHTTPCarrierLookup modified the client passed in")
				}

				if _, err := l.LineType(t.Context(), "+16502530000"); err == nil ||
					!strings.Contains(err.Error(), fmt.Sprint(code)) {
					t.Errorf("LineType error = %v, want status %d", err, code)
				}

				var logs bytes.Buffer
				c := newClassifier(t, Config{Carrier: l, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				facts, _, err := c.Classify(t.Context(), "+44 7400 123456")
				if err != nil {
					t.Fatal(err)
				}
				if facts.LineType != Unknown || facts.Source != SourceCarrier {
					t.Errorf("facts = %+v, want unknown from carrier (failed closed)", facts)
				}
				if !strings.Contains(logs.String(), "carrier lookup failed") {
					t.Errorf("redirect not logged as a failed lookup:\n%s", logs.String())
				}
				if provider.Load() != 2 {
					t.Errorf("provider called %d times, want 2", provider.Load())
				}
				if n := targets.Load(); n != 0 {
					mu.Lock()
					defer mu.Unlock()
					t.Errorf("redirect target received %d requests (X-Api-Key %q)", n, leaked)
				}
			})
		}
	}
}
