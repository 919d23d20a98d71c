package phone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Placeholder is replaced by the E.164 number in HTTPCarrierConfig.URL.
const Placeholder = "{e164}"

// DefaultCarrierTimeout bounds one carrier lookup when
// HTTPCarrierConfig.Timeout is zero.
const DefaultCarrierTimeout = 5 * time.Second

// maxCarrierResponse bounds how much of a provider's answer is read.
const maxCarrierResponse = 1 << 20

// HTTPCarrierConfig describes a carrier-data provider's HTTP API, so that
// any provider answering a GET with JSON can be used without code.
type HTTPCarrierConfig struct {
	// URL is the request URL with Placeholder where the number goes, in
	// the path or the query: "https://lookup.example/v1/{e164}" or
	// "https://lookup.example/v1/lookup?number={e164}&type=carrier". The
	// number is escaped for its position ("+" becomes %2B in a query).
	URL string
	// Header names the request header that carries Secret, e.g.
	// "Authorization" or "X-Api-Key". Empty sends no credentials.
	Header string
	// Secret is the value of Header, e.g. "Bearer …". It comes from a file
	// or the environment via configuration and is never logged.
	Secret string
	// Field is the dot-separated path to the line type in the JSON
	// response, e.g. "line_type" or "carrier.type".
	Field string
	// Types maps the provider's values to line types, compared without
	// regard to case, e.g. {"nonFixedVoip": "voip", "fixedVoip": "voip",
	// "mobile": "mobile", "landline": "fixed_line"}. A value that is already
	// one of our line types maps to itself unless listed. Any other value
	// is an error, so the Classifier reports Unknown.
	Types map[string]string
	// Client sends the requests; nil means a client of its own. The
	// lookup uses a copy that never follows redirects (the secret must not
	// reach another address), so a 3xx answer is a failed lookup; the
	// Client given is not modified.
	Client *http.Client
	// Timeout bounds one lookup; zero means DefaultCarrierTimeout.
	Timeout time.Duration
}

// HTTPCarrierLookup is a CarrierLookup that asks an HTTP API. It is safe
// for concurrent use.
type HTTPCarrierLookup struct {
	url     string
	inQuery bool // Placeholder is in the query string
	header  string
	secret  string
	field   []string
	types   map[string]string
	client  *http.Client
	timeout time.Duration
}

var _ CarrierLookup = (*HTTPCarrierLookup)(nil)

// NewHTTPCarrierLookup checks cfg and returns a lookup using it.
func NewHTTPCarrierLookup(cfg HTTPCarrierConfig) (*HTTPCarrierLookup, error) {
	if !strings.Contains(cfg.URL, Placeholder) {
		return nil, fmt.Errorf("phone: carrier lookup URL must contain %s", Placeholder)
	}
	u, err := url.Parse(strings.ReplaceAll(cfg.URL, Placeholder, "x"))
	if err != nil {
		return nil, fmt.Errorf("phone: carrier lookup URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("phone: carrier lookup URL must be an absolute http or https URL")
	}
	if cfg.Secret != "" && cfg.Header == "" {
		return nil, errors.New("phone: carrier lookup secret given without a header to send it in")
	}
	if cfg.Field == "" {
		return nil, errors.New("phone: carrier lookup response field is required")
	}
	field := strings.Split(cfg.Field, ".")
	for _, f := range field {
		if f == "" {
			return nil, fmt.Errorf("phone: carrier lookup response field %q has an empty element", cfg.Field)
		}
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("phone: negative carrier lookup timeout")
	}

	types := make(map[string]string)
	for _, t := range []string{Mobile, FixedLine, FixedLineOrMobile, VoIP, TollFree, PremiumRate,
		SharedCost, PersonalNumber, Pager, UAN, Voicemail, Unknown} {
		types[t] = t
	}
	for from, to := range cfg.Types {
		if !isLineType(to) {
			return nil, fmt.Errorf("phone: carrier lookup maps %q to %q, which is not a line type", from, to)
		}
		types[strings.ToLower(from)] = to
	}

	l := &HTTPCarrierLookup{
		url:     cfg.URL,
		inQuery: strings.Contains(cfg.URL, "?") && strings.Index(cfg.URL, "?") < strings.Index(cfg.URL, Placeholder),
		header:  cfg.Header,
		secret:  cfg.Secret,
		field:   field,
		types:   types,
		client:  noRedirects(cfg.Client),
		timeout: cfg.Timeout,
	}
	if l.timeout == 0 {
		l.timeout = DefaultCarrierTimeout
	}
	return l, nil
}

// LineType asks the provider about e164. Errors never contain the number
// or the secret.
func (l *HTTPCarrierLookup) LineType(ctx context.Context, e164 string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()

	escaped := url.PathEscape(e164)
	if l.inQuery {
		escaped = url.QueryEscape(e164)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.ReplaceAll(l.url, Placeholder, escaped), nil)
	if err != nil {
		return "", fmt.Errorf("phone: carrier lookup: %w", withoutURL(err))
	}
	req.Header.Set("Accept", "application/json")
	if l.header != "" {
		req.Header.Set(l.header, l.secret)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("phone: carrier lookup: %w", withoutURL(err))
	}
	defer resp.Body.Close()
	// Redirects are not followed (see noRedirects), so a 3xx ends here as
	// a failure like any other non-2xx status; Location is not reported,
	// as it may quote the number.
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCarrierResponse))
		return "", fmt.Errorf("phone: carrier lookup: status %s", resp.Status)
	}

	var body any
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxCarrierResponse))
	if err := dec.Decode(&body); err != nil {
		return "", fmt.Errorf("phone: carrier lookup: decode response: %w", withoutURL(err))
	}
	v := body
	for _, f := range l.field {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("phone: carrier lookup: response has no field %q", strings.Join(l.field, "."))
		}
		v = obj[f]
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("phone: carrier lookup: response field %q is not a string", strings.Join(l.field, "."))
	}
	t, ok := l.types[strings.ToLower(s)]
	if !ok {
		return "", fmt.Errorf("phone: carrier lookup: unmapped line type %q", s)
	}
	return t, nil
}

// noRedirects returns a copy of c (or a new client when c is nil) that
// returns a redirect response to the caller instead of following it: a
// redirect would resend the secret header to whatever address the
// provider, or whoever answers in its place, names. The caller's client,
// which may be shared, is left as it was.
func noRedirects(c *http.Client) *http.Client {
	var own http.Client
	if c != nil {
		own = *c
	}
	own.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}
	return &own
}

// withoutURL drops the request URL, which contains the phone number, from
// transport errors.
func withoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
