// Package endpoint holds what the HTTP delivery plugins share about the
// address they send to: which URLs are acceptable, and a client that never
// follows a redirect.
package endpoint

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Parse checks that raw is an absolute https URL, or an http URL whose host
// is a loopback address or "localhost" (a test server or a local relay:
// the message and its credentials never cross a network in the clear). It
// refuses user information in the URL, which would be sent as credentials
// and logged with the URL.
func Parse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse URL: %w", withoutURL(err))
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, errors.New("URL must be absolute, like https://host/path")
	}
	if u.User != nil {
		return nil, errors.New("URL must not carry a user name or password")
	}
	if u.Fragment != "" {
		return nil, errors.New("URL must not have a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !Loopback(u.Hostname()) {
			return nil, fmt.Errorf("URL must use https (http is allowed only for a loopback host, not %q)", u.Hostname())
		}
	default:
		return nil, fmt.Errorf("URL scheme must be https, not %q", u.Scheme)
	}
	return u, nil
}

// Loopback reports whether host is "localhost" or a loopback IP address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// Client returns a copy of c (a new client when c is nil) that hands a
// redirect response back instead of following it: a redirect would resend
// the credentials and the message to whatever address the answer names.
// The caller's client, which may be shared, is not modified.
func Client(c *http.Client) *http.Client {
	var own http.Client
	if c != nil {
		own = *c
	}
	own.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}
	return &own
}

// StripURL drops the request URL from a transport error: it may carry an
// account identifier or a token the operator put in the query.
func StripURL(err error) error {
	return withoutURL(err)
}

func withoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
