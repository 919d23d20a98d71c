package directory

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/selfservice"
)

const testToken = "directory-token-for-tests"

// fakeService is an HTTP directory for tests: it checks what every
// request carries and answers with the status and body its answer func
// gives for the decoded request.
type fakeService struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(op string, body map[string]string) (int, string)

	mu    sync.Mutex
	got   []map[string]string
	token string // the token the last request carried
}

func newFakeService(t *testing.T, answer func(op string, body map[string]string) (int, string)) *fakeService {
	t.Helper()
	f := &fakeService{t: t, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.URL.Path, "/dir/")
	if r.Method != http.MethodPost || !ok || r.Header.Get("Content-Type") != "application/json" || r.URL.RawQuery != "" {
		f.t.Errorf("request %s %s (Content-Type %q)", r.Method, r.URL, r.Header.Get("Content-Type"))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var body map[string]string
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		f.t.Errorf("request body: %v", err)
	}
	f.mu.Lock()
	f.got = append(f.got, body)
	f.token = r.Header.Get("Authorization")
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+testToken && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer rotated") {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	status, answer := f.answer(op, body)
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusFound {
		w.Header().Set("Location", "https://elsewhere.example/")
	}
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

func (f *fakeService) last() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		return nil
	}
	return f.got[len(f.got)-1]
}

// tokenFile writes a token file with mode perm.
func tokenFile(t *testing.T, token string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func openFake(t *testing.T, f *fakeService, timeout time.Duration) *HTTP {
	t.Helper()
	h, err := OpenHTTP(Config{URL: f.srv.URL + "/dir/", TokenFile: tokenFile(t, testToken, 0o600), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

const aliceAnswer = `{"match": true, "customer": {"customer_id": "c1001", "last_name": " Liddell", "email": "alice@example.com", "accounts": [
	{"kind": "account", "number": "1000000001", "product": "savings", "status": "open"},
	{"kind": "vehicle", "number": "1fake-000000000001", "product": "carloans", "status": "open"}]}}`

func TestHTTPVerify(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		answer  string
		number  string
		want    string // customer ID; "" for ErrNoMatch
		wantErr string // an error that is not ErrNoMatch
	}{
		{name: "match", status: 200, answer: aliceAnswer, number: "1FAKE-0000-0000-0001", want: "c1001"},
		{name: "match with the asked account not first", status: 200, answer: aliceAnswer, number: "1000000001", want: "c1001"},
		{name: "no match by 404", status: 404, answer: `{"error": "not found"}`, number: "1000000001"},
		{name: "no match by answer", status: 200, answer: `{"match": false}`, number: "1000000001"},
		{name: "server error", status: 500, answer: `{"match": true}`, number: "1000000001", wantErr: "status 500"},
		{name: "unauthorized", status: 401, answer: ``, number: "1000000001", wantErr: "status 401"},
		{name: "redirect", status: 302, answer: ``, number: "1000000001", wantErr: "status 302"},
		{name: "malformed JSON", status: 200, answer: `{"match": tru`, number: "1000000001", wantErr: "malformed answer"},
		{name: "unknown field", status: 200, answer: `{"match": false, "reason": "dob"}`, number: "1000000001", wantErr: `unknown field "reason"`},
		{name: "no match field", status: 200, answer: `{}`, number: "1000000001", wantErr: `no "match"`},
		{name: "match as a string", status: 200, answer: `{"match": "false"}`, number: "1000000001", wantErr: "wrong type"},
		{name: "data after the answer", status: 200, answer: `{"match": false} {"match": true}`, number: "1000000001", wantErr: "data after"},
		{name: "match without customer", status: 200, answer: `{"match": true}`, number: "1000000001", wantErr: "no customer"},
		{name: "no match with a customer", status: 200, answer: `{"match": false, "customer": {"customer_id": "c1"}}`, number: "1000000001", wantErr: "a customer is given"},
		{name: "customer without an ID", status: 200, answer: `{"match": true, "customer": {"accounts": []}}`, number: "1000000001", wantErr: "customer_id is required"},
		{name: "unknown status", status: 200, answer: `{"match": true, "customer": {"customer_id": "c1", "accounts": [{"kind": "account", "number": "1000000001", "product": "savings", "status": "frozen"}]}}`,
			number: "1000000001", wantErr: "accounts[0]: status is not one of"},
		{name: "customer without the account asked about", status: 200, answer: aliceAnswer, number: "1000000002", wantErr: "does not list the account"},
		{name: "oversized answer", status: 200, answer: `{"match": false, "customer": null` + strings.Repeat(" ", MaxResponse) + `}`, number: "1000000001", wantErr: "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeService(t, func(op string, body map[string]string) (int, string) {
				if op != "verify" {
					t.Errorf("op %q, want verify", op)
				}
				return tc.status, tc.answer
			})
			h := openFake(t, f, 0)
			c, err := h.Verify(t.Context(), alice, tc.number)
			switch {
			case tc.wantErr != "":
				if err == nil || errors.Is(err, selfservice.ErrNoMatch) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Verify: %+v, %v; want an error containing %q", c, err, tc.wantErr)
				}
				if c.ID != "" {
					t.Errorf("a failed lookup returned a customer: %+v", c)
				}
			case tc.want == "":
				if !errors.Is(err, selfservice.ErrNoMatch) || c.ID != "" {
					t.Fatalf("Verify: %+v, %v; want ErrNoMatch", c, err)
				}
			default:
				if err != nil || c.ID != tc.want {
					t.Fatalf("Verify: %+v, %v; want %s", c, err, tc.want)
				}
				if c.Accounts[0].Number != NormalizeNumber(tc.number) || len(c.Accounts) != 2 {
					t.Errorf("accounts %+v: want the one asked about first, of two", c.Accounts)
				}
			}
			want := map[string]string{"last_name": "Liddell", "tax_id_last4": "0001", "date_of_birth": "1961-05-04", "number": NormalizeNumber(tc.number)}
			if got := f.last(); !equalMaps(got, want) {
				t.Errorf("the service received %v, want %v", got, want)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestHTTPIdentifyAndCustomer(t *testing.T) {
	f := newFakeService(t, func(op string, body map[string]string) (int, string) {
		switch {
		case op == "identify" && body["last_name"] == "Liddell" && body["tax_id_last4"] == "0001":
			return 200, aliceAnswer
		case op == "identify":
			return 200, `{"match": false}`
		case op == "customer" && body["customer_id"] == "c1001":
			return 200, aliceAnswer
		case op == "customer" && body["customer_id"] == "c1002":
			return 200, aliceAnswer // the wrong record
		case op == "customer":
			return 404, ""
		}
		t.Errorf("op %q", op)
		return 400, ""
	})
	h := openFake(t, f, 0)

	c, err := h.Identify(t.Context(), with(alice, func(i *selfservice.Identity) { i.LastName = "  Liddell " }))
	if err != nil || c.ID != "c1001" {
		t.Errorf("Identify(alice): %+v, %v", c, err)
	}
	if got := f.last(); !equalMaps(got, map[string]string{"last_name": "Liddell", "tax_id_last4": "0001", "date_of_birth": "1961-05-04"}) {
		t.Errorf("identify request %v", got)
	}
	if _, err := h.Identify(t.Context(), jane); !errors.Is(err, selfservice.ErrNoMatch) {
		t.Errorf("Identify(jane): %v, want ErrNoMatch", err)
	}
	if c, err := h.Customer(t.Context(), "c1001"); err != nil || c.ID != "c1001" || c.LastName != "Liddell" || c.Accounts[1].Number != "1FAKE000000000001" {
		t.Errorf("Customer(c1001): %+v, %v", c, err)
	}
	if got := f.last(); !equalMaps(got, map[string]string{"customer_id": "c1001"}) {
		t.Errorf("customer request %v", got)
	}
	if _, err := h.Customer(t.Context(), "c9999"); !errors.Is(err, selfservice.ErrNoMatch) {
		t.Errorf("Customer(c9999): %v, want ErrNoMatch", err)
	}
	if _, err := h.Customer(t.Context(), "c1002"); err == nil || errors.Is(err, selfservice.ErrNoMatch) {
		t.Errorf("Customer(c1002) answered with c1001: %v, want an error", err)
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	f := newFakeService(t, func(string, map[string]string) (int, string) {
		<-release
		return 200, aliceAnswer
	})
	defer close(release) // before the server's Close, which waits for the handler
	h := openFake(t, f, 50*time.Millisecond)
	_, err := h.Verify(t.Context(), alice, "1000000001")
	if err == nil || errors.Is(err, selfservice.ErrNoMatch) || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("Verify against a service that does not answer: %v, want a timeout", err)
	}
	if strings.Contains(err.Error(), f.srv.URL) {
		t.Errorf("the error names the URL: %v", err)
	}
}

func TestHTTPUnreachable(t *testing.T) {
	f := newFakeService(t, func(string, map[string]string) (int, string) { return 200, aliceAnswer })
	h := openFake(t, f, 0)
	f.srv.Close()
	if _, err := h.Identify(t.Context(), alice); err == nil || errors.Is(err, selfservice.ErrNoMatch) {
		t.Fatalf("Identify against a closed server: %v, want an error", err)
	}
}

func TestHTTPTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, aliceAnswer)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	token := tokenFile(t, testToken, 0o600)

	untrusted, err := OpenHTTP(Config{URL: srv.URL, TokenFile: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusted.Identify(t.Context(), alice); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Identify over TLS with an unknown CA: %v, want a certificate error", err)
	}

	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	trusted, err := OpenHTTP(Config{URL: srv.URL, TokenFile: token, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := trusted.Identify(t.Context(), alice); err != nil || c.ID != "c1001" {
		t.Errorf("Identify over TLS with the CA file: %+v, %v", c, err)
	}
}

func TestOpenHTTPRefuses(t *testing.T) {
	good := tokenFile(t, testToken, 0o600)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"token readable by others", Config{URL: "https://customers.example", TokenFile: tokenFile(t, testToken, 0o644)}, "has mode 0644: group or others can read or write it"},
		{"token readable by group", Config{URL: "https://customers.example", TokenFile: tokenFile(t, testToken, 0o640)}, "has mode 0640"},
		{"token writable by others", Config{URL: "https://customers.example", TokenFile: tokenFile(t, testToken, 0o602)}, "has mode 0602"},
		{"empty token", Config{URL: "https://customers.example", TokenFile: tokenFile(t, "", 0o600)}, "is empty"},
		{"token with a space", Config{URL: "https://customers.example", TokenFile: tokenFile(t, "two words", 0o600)}, "characters a header cannot carry"},
		{"token file a directory", Config{URL: "https://customers.example", TokenFile: t.TempDir()}, "not a regular file"},
		{"missing token file", Config{URL: "https://customers.example", TokenFile: filepath.Join(t.TempDir(), "none")}, "no such file"},
		{"no token file", Config{URL: "https://customers.example"}, "token_file is required"},
		{"no URL", Config{TokenFile: good}, "url: is required"},
		{"http to another host", Config{URL: "http://customers.example", TokenFile: good}, "must use https"},
		{"other scheme", Config{URL: "ftp://customers.example", TokenFile: good}, "scheme must be https"},
		{"relative URL", Config{URL: "/verify", TokenFile: good}, "must be absolute"},
		{"credentials in the URL", Config{URL: "https://u:p@customers.example", TokenFile: good}, "user name or password"},
		{"query", Config{URL: "https://customers.example/?key=1", TokenFile: good}, "query"},
		{"negative timeout", Config{URL: "https://customers.example", TokenFile: good, Timeout: -time.Second}, "negative"},
		{"CA file without a certificate", Config{URL: "https://customers.example", TokenFile: good, CAFile: notPEM}, "holds no PEM certificate"},
		{"file with the HTTP settings", Config{URL: "https://customers.example", TokenFile: good, File: "c.json"}, "file is for the file directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenHTTP(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenHTTP: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	for _, u := range []string{"http://127.0.0.1:8080/dir", "http://localhost/dir", "http://[::1]/", "https://customers.example"} {
		if _, err := OpenHTTP(Config{URL: u, TokenFile: good}); err != nil {
			t.Errorf("OpenHTTP(%s): %v", u, err)
		}
	}
	if d, err := Open(Config{URL: "https://customers.example", TokenFile: good}); err != nil {
		t.Errorf("Open(url): %v", err)
	} else if _, ok := d.(*HTTP); !ok {
		t.Errorf("Open(url) returned %T", d)
	}
}

func TestHTTPReloadRotatesToken(t *testing.T) {
	f := newFakeService(t, func(string, map[string]string) (int, string) { return 200, aliceAnswer })
	path := tokenFile(t, testToken, 0o600)
	h, err := OpenHTTP(Config{URL: f.srv.URL + "/dir", TokenFile: path})
	if err != nil {
		t.Fatal(err)
	}
	check := func(want string) {
		t.Helper()
		if _, err := h.Identify(t.Context(), alice); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.token != "Bearer "+want {
			t.Errorf("Authorization %q, want Bearer %s", f.token, want)
		}
	}
	check(testToken)
	if err := os.WriteFile(path, []byte("rotated-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	check("rotated-1")
	if err := os.WriteFile(path, []byte("rotated-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err == nil {
		t.Fatal("Reload accepted a token file readable by others")
	}
	check("rotated-1")
}
