package directory

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/portcullis/portcullis/gateway/selfservice"
)

// DefaultTimeout bounds one HTTP directory request when Config.Timeout is
// zero.
const DefaultTimeout = 5 * time.Second

// MaxResponse is the largest answer the HTTP directory reads, in bytes; a
// longer one is an error.
const MaxResponse = 1 << 20

// maxToken bounds the token file.
const maxToken = 16 << 10

// HTTP is a selfservice.Directory that asks the bank's customer service
// over HTTPS; the contract is in the package documentation and
// docs/directory.md. Anything but a clear answer (a 404, or "match" true
// or false) is an error, which callers treat as a denial. It is safe for
// concurrent use.
type HTTP struct {
	base      string
	tokenFile string
	timeout   time.Duration
	client    *http.Client
	logger    *slog.Logger

	mu    sync.Mutex // serialises reloads
	token atomic.Pointer[string]
}

var _ selfservice.Directory = (*HTTP)(nil)

// OpenHTTP checks cfg, reads the token file and returns a directory that
// asks cfg.URL.
func OpenHTTP(cfg Config) (*HTTP, error) {
	if cfg.File != "" {
		return nil, errors.New("directory: file is for the file directory, not the HTTP one")
	}
	base, err := parseBase(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("directory: url: %w", err)
	}
	if cfg.TokenFile == "" {
		return nil, errors.New("directory: token_file is required with url")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("directory: timeout must not be negative")
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("directory: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("directory: ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	h := &HTTP{
		base:      base,
		tokenFile: cfg.TokenFile,
		timeout:   cfg.Timeout,
		logger:    cfg.logger(),
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				TLSClientConfig:     tlsCfg,
				ForceAttemptHTTP2:   true,
				MaxIdleConnsPerHost: 16,
				IdleConnTimeout:     90 * time.Second,
				TLSHandshakeTimeout: 10 * time.Second,
			},
			// A redirect would resend the token and the identity to
			// whatever address the answer names.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if h.timeout == 0 {
		h.timeout = DefaultTimeout
	}
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Reload reads the token file again (a rotated token); on error the
// previous token stays in use.
func (h *HTTP) Reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	tok, err := readToken(h.tokenFile)
	if err != nil {
		return err
	}
	h.token.Store(&tok)
	return nil
}

// Close releases idle connections.
func (h *HTTP) Close() {
	h.client.CloseIdleConnections()
}

// readToken reads a bearer token from path, refusing a file that is not
// regular or that group or others can read or write, as the gateway
// refuses every file that holds a secret.
func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("directory: token_file: %w", err)
	}
	defer f.Close()
	// Checked on the open file, so that what is checked is what is read.
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("directory: token_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("directory: token_file: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("directory: token_file: %s has mode %04o: group or others can read or write it, and it holds a secret; fix it with `chmod 600 %s`",
			path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxToken+1))
	if err != nil {
		return "", fmt.Errorf("directory: token_file: %w", err)
	}
	if len(b) > maxToken {
		return "", fmt.Errorf("directory: token_file: %s is larger than %d bytes", path, maxToken)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("directory: token_file: %s is empty", path)
	}
	for _, c := range []byte(tok) {
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("directory: token_file: %s holds spaces or characters a header cannot carry", path)
		}
	}
	return tok, nil
}

// parseBase checks that raw is an absolute https URL, or http to a
// loopback host (a local service or a test: the identity and the token
// never cross a network in the clear), without credentials, query or
// fragment, and returns it without a trailing slash.
func parseBase(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", err
	}
	switch {
	case u.Host == "" || u.Opaque != "":
		return "", errors.New("must be absolute, like https://customers.bank.example/portcullis")
	case u.User != nil:
		return "", errors.New("must not carry a user name or password; the token comes from token_file")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", errors.New("must not have a query or a fragment")
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback(u.Hostname()):
	case u.Scheme == "http":
		return "", fmt.Errorf("must use https (http is allowed only for a loopback host, not %q)", u.Hostname())
	default:
		return "", fmt.Errorf("scheme must be https, not %q", u.Scheme)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// loopback reports whether host is "localhost" or a loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// identityRequest is the body of /verify (with Number) and /identify.
type identityRequest struct {
	LastName    string `json:"last_name"`
	TaxIDLast4  string `json:"tax_id_last4"`
	DateOfBirth string `json:"date_of_birth"`
	Number      string `json:"number,omitempty"`
}

// customerRequest is the body of /customer.
type customerRequest struct {
	CustomerID string `json:"customer_id"`
}

// answer is every endpoint's 200 body.
type answer struct {
	Match    *bool           `json:"match"`
	Customer *customerAnswer `json:"customer"`
}

// customerAnswer is the customer in a matching answer.
type customerAnswer struct {
	ID       string          `json:"customer_id"`
	LastName string          `json:"last_name"`
	Email    string          `json:"email"`
	Accounts []accountRecord `json:"accounts"`
}

func identityBody(id selfservice.Identity, number string) identityRequest {
	return identityRequest{
		LastName:    norm.NFC.String(strings.TrimSpace(id.LastName)),
		TaxIDLast4:  strings.TrimSpace(id.TaxIDLast4),
		DateOfBirth: strings.TrimSpace(id.DateOfBirth),
		Number:      NormalizeNumber(number),
	}
}

// Verify asks /verify for the customer with identity id holding the
// account numbered number. The answer must list that account; it is put
// first.
func (h *HTTP) Verify(ctx context.Context, id selfservice.Identity, number string) (selfservice.Customer, error) {
	n := NormalizeNumber(number)
	if n == "" {
		// Nothing can hold an empty number; the service is not asked.
		return selfservice.Customer{}, selfservice.ErrNoMatch
	}
	c, err := h.call(ctx, "verify", identityBody(id, number))
	if err != nil {
		return c, err
	}
	at := -1
	for i, a := range c.Accounts {
		if subtle.ConstantTimeCompare([]byte(a.Number), []byte(n)) == 1 {
			at = i
		}
	}
	if at < 0 {
		err := errors.New("directory: verify: the matching customer does not list the account asked about")
		h.logger.Warn("customer directory answer refused", "op", "verify", "error", err.Error())
		return selfservice.Customer{}, err
	}
	return copyCustomer(&c, at), nil
}

// Identify asks /identify for the customer with identity id.
func (h *HTTP) Identify(ctx context.Context, id selfservice.Identity) (selfservice.Customer, error) {
	return h.call(ctx, "identify", identityBody(id, ""))
}

// Customer asks /customer for the record with customerID. The customer ID
// travels in the body, not the URL, to keep it out of access logs.
func (h *HTTP) Customer(ctx context.Context, customerID string) (selfservice.Customer, error) {
	if customerID == "" {
		return selfservice.Customer{}, selfservice.ErrNoMatch
	}
	c, err := h.call(ctx, "customer", customerRequest{CustomerID: customerID})
	if err != nil {
		return c, err
	}
	if c.ID != customerID {
		err := errors.New("directory: customer: the answer is for another customer ID")
		h.logger.Warn("customer directory answer refused", "op", "customer", "error", err.Error())
		return selfservice.Customer{}, err
	}
	return c, nil
}

// call posts body to the endpoint op and reads the answer: the customer,
// ErrNoMatch, or an error for anything else. Failures are logged with the
// operation, status and error, which never hold identity data.
func (h *HTTP) call(ctx context.Context, op string, body any) (selfservice.Customer, error) {
	start := time.Now()
	c, status, err := h.do(ctx, op, body)
	switch {
	case errors.Is(err, selfservice.ErrNoMatch):
		h.logger.Debug("customer directory lookup", "op", op, "status", status, "match", false,
			"duration_ms", time.Since(start).Milliseconds())
	case err != nil:
		h.logger.Warn("customer directory lookup failed", "op", op, "status", status, "error", err.Error(),
			"duration_ms", time.Since(start).Milliseconds())
	default:
		h.logger.Debug("customer directory lookup", "op", op, "status", status, "match", true,
			"duration_ms", time.Since(start).Milliseconds())
	}
	return c, err
}

func (h *HTTP) do(ctx context.Context, op string, body any) (selfservice.Customer, int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	b, err := json.Marshal(body)
	if err != nil {
		return selfservice.Customer{}, 0, fmt.Errorf("directory: %s: encode request: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/"+op, bytes.NewReader(b))
	if err != nil {
		return selfservice.Customer{}, 0, fmt.Errorf("directory: %s: %w", op, withoutURL(err))
	}
	req.Header.Set("Authorization", "Bearer "+*h.token.Load())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Portcullis-Directory/1")
	resp, err := h.client.Do(req)
	if err != nil {
		return selfservice.Customer{}, 0, fmt.Errorf("directory: %s: %w", op, withoutURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return selfservice.Customer{}, resp.StatusCode, fmt.Errorf("directory: %s: read answer: %w", op, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return selfservice.Customer{}, resp.StatusCode, selfservice.ErrNoMatch
	case resp.StatusCode != http.StatusOK:
		// The body is not reported: a service may echo the request.
		return selfservice.Customer{}, resp.StatusCode, fmt.Errorf("directory: %s: status %s", op, resp.Status)
	case len(data) > MaxResponse:
		return selfservice.Customer{}, resp.StatusCode, fmt.Errorf("directory: %s: answer is larger than %d bytes", op, MaxResponse)
	}
	c, err := decodeAnswer(data)
	if err != nil && !errors.Is(err, selfservice.ErrNoMatch) {
		err = fmt.Errorf("directory: %s: %w", op, err)
	}
	return c, resp.StatusCode, err
}

// decodeAnswer reads a 200 body strictly: one JSON object, no unknown
// fields, "match" present, a valid customer exactly when it is true.
func decodeAnswer(data []byte) (selfservice.Customer, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var a answer
	if err := dec.Decode(&a); err != nil {
		return selfservice.Customer{}, fmt.Errorf("malformed answer: %w", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return selfservice.Customer{}, errors.New("malformed answer: data after the JSON object")
	}
	switch {
	case a.Match == nil:
		return selfservice.Customer{}, errors.New(`malformed answer: no "match"`)
	case !*a.Match && a.Customer != nil:
		return selfservice.Customer{}, errors.New(`malformed answer: "match" is false but a customer is given`)
	case !*a.Match:
		return selfservice.Customer{}, selfservice.ErrNoMatch
	case a.Customer == nil:
		return selfservice.Customer{}, errors.New(`malformed answer: "match" is true but no customer is given`)
	}
	r := record{ID: a.Customer.ID, LastName: norm.NFC.String(strings.TrimSpace(a.Customer.LastName)), Email: a.Customer.Email, Accounts: a.Customer.Accounts}
	var p []string
	if r.ID == "" {
		p = append(p, "customer_id is required")
	}
	if r.Email != "" && !validEmail(r.Email) {
		p = append(p, "email is not a plain email address (like name@example.com)")
	}
	for i := range r.Accounts {
		for _, msg := range checkAccount(&r.Accounts[i], false) {
			p = append(p, fmt.Sprintf("accounts[%d]: %s", i, msg))
		}
	}
	if len(p) > 0 {
		return selfservice.Customer{}, errors.New("invalid customer in answer: " + strings.Join(p, "; "))
	}
	return customerOf(&r), nil
}

// jsonProblem is a decoding error without the values it may quote.
func jsonProblem(err error) error {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Errorf("field %q has the wrong type (%s)", te.Field, te.Value)
	}
	return err
}

// withoutURL drops the request URL from a transport error.
func withoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
