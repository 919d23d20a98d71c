package sampleapp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/assertion"
)

// memKeys is an in-memory assertion.KeyStore.
type memKeys struct {
	mu   sync.Mutex
	keys []assertion.Key
}

func (m *memKeys) SigningKeys(context.Context) ([]assertion.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.keys), nil
}

func (m *memKeys) AddSigningKey(_ context.Context, k assertion.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
	return nil
}

func (m *memKeys) RetireSigningKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == id {
			m.keys[i].RetiredAt = at
			return nil
		}
	}
	return errors.New("not found")
}

const issuer = "https://login.localhost"

var now = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func clock() time.Time { return now }

type fixture struct {
	signer  *assertion.Signer
	forger  *assertion.Signer // same issuer, keys the app does not know
	handler http.Handler
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	newSigner := func() *assertion.Signer {
		s, err := assertion.NewSigner(t.Context(), &memKeys{}, assertion.SignerConfig{Issuer: issuer, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f := fixture{signer: newSigner(), forger: newSigner()}
	v, err := assertion.NewVerifier(assertion.VerifierConfig{
		Issuer: issuer, Audience: "savings", Keys: f.signer, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.handler = New(Config{Name: "savings", Title: "Savings", Verifier: v})
	return f
}

func (f fixture) sign(t *testing.T, s *assertion.Signer, aud, user string) string {
	t.Helper()
	tok, err := s.Sign(assertion.Claims{
		Subject: "id-" + user, Audience: aud, Username: user,
		AuthTime: now.Add(-time.Minute), AuthMethods: []string{"pwd", "otp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// gatewayHeaders are the headers the gateway would set for user.
func gatewayHeaders(user, tok string) http.Header {
	h := http.Header{}
	h.Set(assertion.HeaderUser, user)
	h.Set(assertion.HeaderUserID, "id-"+user)
	h.Set(assertion.HeaderAuthMethods, "pwd,otp")
	h.Set(assertion.HeaderAssertion, tok)
	return h
}

func get(t *testing.T, h http.Handler, path string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://bank.localhost"+path, nil)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func whoami(t *testing.T, h http.Handler, hdr http.Header) whoamiResponse {
	t.Helper()
	rec := get(t, h, "/whoami", hdr)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var resp whoamiResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	return resp
}

func TestWhoamiVerified(t *testing.T) {
	f := newFixture(t)
	hdr := gatewayHeaders("alice", f.sign(t, f.signer, "savings", "alice"))
	hdr.Set("X-Request-Id", "r-1")
	got := whoami(t, f.handler, hdr)

	if got.App != "savings" || got.User != "alice" || got.UserID != "id-alice" ||
		!slices.Equal(got.AuthMethods, []string{"pwd", "otp"}) {
		t.Errorf("identity = %q %q %q %v", got.App, got.User, got.UserID, got.AuthMethods)
	}
	a := got.Assertion
	if !a.Present || !a.Verified || a.Error != "" || !a.HeadersMatch || a.Claims == nil {
		t.Fatalf("assertion = %+v", a)
	}
	if a.Claims.Issuer != issuer || a.Claims.Audience != "savings" || a.Claims.Subject != "id-alice" {
		t.Errorf("claims = %+v", a.Claims)
	}
	if got.Received != (receivedIdentity{User: "alice", UserID: "id-alice", AuthMethods: "pwd,otp"}) {
		t.Errorf("received = %+v", got.Received)
	}
	if got.Headers.Get("X-Request-Id") != "r-1" || got.Headers.Get(assertion.HeaderAssertion) == "" {
		t.Errorf("headers = %v, want every header echoed", got.Headers)
	}
	if got.Method != http.MethodGet || got.Host != "bank.localhost" || got.URI != "/whoami" {
		t.Errorf("method, host, uri = %q, %q, %q", got.Method, got.Host, got.URI)
	}
}

func TestWhoamiDoesNotTrustUnverifiedIdentity(t *testing.T) {
	f := newFixture(t)
	valid := f.sign(t, f.signer, "savings", "alice")
	nilVerifier := New(Config{Name: "savings", Title: "Savings"})
	// An app misconfigured with another app's verifier still insists on
	// assertions addressed to itself.
	savingsVerifier, err := assertion.NewVerifier(assertion.VerifierConfig{
		Issuer: issuer, Audience: "savings", Keys: f.signer, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	carloans := New(Config{Name: "carloans", Verifier: savingsVerifier})

	tests := []struct {
		name        string
		handler     http.Handler
		header      http.Header
		wantPresent bool
		wantErr     error // checked against the reported text when set
	}{
		{
			name:   "headers without assertion",
			header: gatewayHeaders("admin", ""),
		},
		{
			name:        "assertion signed by another key",
			header:      gatewayHeaders("admin", f.sign(t, f.forger, "savings", "admin")),
			wantPresent: true,
			wantErr:     assertion.ErrUnknownKey,
		},
		{
			name:        "assertion for another app",
			header:      gatewayHeaders("alice", f.sign(t, f.signer, "carloans", "alice")),
			wantPresent: true,
			wantErr:     assertion.ErrAudience,
		},
		{
			name:        "garbage assertion",
			header:      gatewayHeaders("admin", "eyJhbGciOiJub25lIn0.e30."),
			wantPresent: true,
			wantErr:     assertion.ErrAlgorithm,
		},
		{
			name: "forged assertion next to the real one",
			header: func() http.Header {
				h := gatewayHeaders("alice", valid)
				h.Add(assertion.HeaderAssertion, f.sign(t, f.forger, "savings", "admin"))
				return h
			}(),
			wantPresent: true,
		},
		{
			name:        "verifier for another app",
			handler:     carloans,
			header:      gatewayHeaders("alice", valid),
			wantPresent: true,
			wantErr:     assertion.ErrAudience,
		},
		{
			name:        "no verifier configured",
			handler:     nilVerifier,
			header:      gatewayHeaders("alice", valid),
			wantPresent: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.handler
			if h == nil {
				h = f.handler
			}
			got := whoami(t, h, tc.header)
			if got.Assertion.Verified {
				t.Fatalf("verified: %+v", got.Assertion)
			}
			if got.Assertion.Present != tc.wantPresent {
				t.Errorf("present = %v, want %v", got.Assertion.Present, tc.wantPresent)
			}
			if got.Assertion.Error == "" {
				t.Error("no error reported")
			}
			if tc.wantErr != nil && !strings.Contains(got.Assertion.Error, tc.wantErr.Error()) {
				t.Errorf("error = %q, want it to report %q", got.Assertion.Error, tc.wantErr)
			}
			if got.User != "" || got.UserID != "" || len(got.AuthMethods) != 0 || got.Assertion.Claims != nil {
				t.Errorf("untrusted identity reported as the user: %q %q %v %v", got.User, got.UserID, got.AuthMethods, got.Assertion.Claims)
			}
			// What arrived is still shown, separately.
			if got.Received.User != tc.header.Get(assertion.HeaderUser) {
				t.Errorf("received user = %q, want %q", got.Received.User, tc.header.Get(assertion.HeaderUser))
			}
		})
	}
}

func TestWhoamiHeadersDisagreeWithAssertion(t *testing.T) {
	f := newFixture(t)
	hdr := gatewayHeaders("mallory", f.sign(t, f.signer, "savings", "alice"))
	got := whoami(t, f.handler, hdr)
	if !got.Assertion.Verified || got.User != "alice" {
		t.Fatalf("user = %q, verified = %v; want alice from the assertion", got.User, got.Assertion.Verified)
	}
	if got.Assertion.HeadersMatch {
		t.Error("headers_match = true for a header naming mallory")
	}
	if got.Received.User != "mallory" {
		t.Errorf("received user = %q, want mallory", got.Received.User)
	}
}

func TestHomePage(t *testing.T) {
	f := newFixture(t)
	page := func(user string) string {
		t.Helper()
		rec := get(t, f.handler, "/", gatewayHeaders(user, f.sign(t, f.signer, "savings", user)))
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d", rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
		return rec.Body.String()
	}

	alice := page("alice")
	if !strings.Contains(alice, "Savings — welcome, alice") {
		t.Errorf("page lacks the welcome line:\n%s", alice)
	}
	if !strings.Contains(alice, `href="/whoami"`) {
		t.Error("page lacks the /whoami link")
	}
	_, balance := account("savings", "alice")
	if !strings.Contains(alice, balance) {
		t.Errorf("page lacks the balance %s", balance)
	}
	if page("alice") != alice {
		t.Error("the page changes between requests")
	}
	if _, bob := account("savings", "bob"); bob == balance {
		t.Errorf("alice and bob both have %s", balance)
	}

	evil := page(`<script>alert("x")</script>`)
	if strings.Contains(evil, `<script>alert`) {
		t.Error("username written into the page unescaped")
	}
	if !strings.Contains(evil, "welcome, &lt;script&gt;") {
		t.Errorf("escaped username missing:\n%s", evil)
	}

	forged := get(t, f.handler, "/", gatewayHeaders("admin", "")).Body.String()
	if !strings.Contains(forged, "identity not verified") || strings.Contains(forged, "admin") {
		t.Errorf("page for a forged header:\n%s", forged)
	}
}

func TestStream(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	tok := f.sign(t, f.signer, "savings", "alice")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = gatewayHeaders("alice", tok)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	var events []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var e map[string]any
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
		}
	}
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	for i, e := range events {
		if e["n"] != float64(i+1) || e["user"] != "alice" || e["app"] != "savings" {
			t.Errorf("event %d = %v", i+1, e)
		}
	}
}

// TestStreamFlushes reads the first event while the app is still waiting to
// send the second: only a flushed response can be read that early. (Without
// flushing, not even the response headers would arrive before the second
// event is due, ten seconds later.)
func TestStreamFlushes(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := make(chan string, 1)
	go func() {
		defer close(first)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream?count=2&interval=10s", nil)
		if err != nil {
			return
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				first <- sc.Text()
				return
			}
		}
	}()
	select {
	case line := <-first:
		if !strings.Contains(line, `"n":1`) {
			t.Fatalf("first event = %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first event not delivered before the second was due: not flushed")
	}
}

func TestStreamParameters(t *testing.T) {
	h := New(Config{Name: "savings"})
	for _, q := range []string{"count=0", "count=101", "count=x", "interval=-1s", "interval=1h", "interval=soon"} {
		if rec := get(t, h, "/stream?"+q, nil); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status = %d, want 400", q, rec.Code)
		}
	}
	rec := get(t, h, "/stream?count=5", nil)
	if n := strings.Count(rec.Body.String(), "event: tick"); n != 5 {
		t.Errorf("count=5 sent %d events", n)
	}
}

func TestRoutes(t *testing.T) {
	h := New(Config{Name: "savings", Title: "Savings"})
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodHead, "/whoami", http.StatusOK},
		{http.MethodGet, "/stream", http.StatusOK},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodGet, "/whoami/x", http.StatusNotFound},
		{http.MethodGet, "/index.html", http.StatusNotFound},
		{http.MethodPost, "/whoami", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.want {
				t.Errorf("status = %d, want %d", rec.Code, tc.want)
			}
		})
	}
}

func TestAccount(t *testing.T) {
	n1, b1 := account("savings", "alice")
	n2, b2 := account("savings", "alice")
	if n1 != n2 || b1 != b2 {
		t.Errorf("account changes: %s %s, %s %s", n1, b1, n2, b2)
	}
	if _, b := account("carloans", "alice"); b == b1 {
		t.Errorf("alice has %s in both apps", b)
	}
	if !strings.HasPrefix(n1, "****") || len(n1) != 8 {
		t.Errorf("account number = %q", n1)
	}
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 100009: "100,009", 1234567: "1,234,567"} {
		if got := groupThousands(n); got != want {
			t.Errorf("groupThousands(%d) = %q, want %q", n, got, want)
		}
	}
}
