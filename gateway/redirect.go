package gateway

import (
	"net/url"
	"strings"
)

// maxReturnLen bounds a return path, as sent and as returned.
const maxReturnLen = 2048

// SafeReturnPath reports whether s may be used as a return target after login
// on the same host, and returns it cleaned. Only absolute paths on this host
// are accepted: no scheme, no authority ("//evil", "/\evil"), no control
// characters or whitespace (browsers strip some of them and then see "//"),
// no backslashes anywhere, and it must still be a plain path once decoded.
func SafeReturnPath(s string) (string, bool) {
	if s == "" || len(s) > maxReturnLen || s[0] != '/' {
		return "", false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c == 0x7f || c == '\\' {
			return "", false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	// Percent-encoded slashes, backslashes or whitespace at the start could
	// turn into "//" in some component that decodes twice.
	decoded, err := url.PathUnescape(u.EscapedPath())
	if err != nil || strings.HasPrefix(decoded, "//") || strings.ContainsAny(decoded, "\\\r\n\t") {
		return "", false
	}
	// The limit applies to what is returned, which escaping can make
	// longer than what came in.
	if out := u.RequestURI(); len(out) <= maxReturnLen {
		return out, true
	}
	return "", false
}

// returnURL parses an absolute return target for the cross-host sign-in and
// accepts it only when it is https on one of the hosts the gateway serves,
// and its path is itself a SafeReturnPath. It returns the host (as in the URL,
// with any port) and the path.
func returnURL(s string, knownHost func(host string) bool) (host, path string, ok bool) {
	if len(s) > 4096 || strings.ContainsAny(s, "\\\x00\r\n\t ") {
		return "", "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Opaque != "" || u.Host == "" {
		return "", "", false
	}
	if !knownHost(hostName(u.Host)) {
		return "", "", false
	}
	p := u.RequestURI()
	if u.Path == "" {
		p = "/" + strings.TrimPrefix(p, "/")
	}
	p, ok = SafeReturnPath(p)
	if !ok {
		return "", "", false
	}
	return u.Host, p, true
}
