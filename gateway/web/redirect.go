package web

import (
	"net/url"
	"strconv"
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

// ReturnURL parses an absolute return target for the cross-host sign-in and
// accepts it only when it is https on one of the hosts the gateway serves,
// on the port it serves them on (servedPort, a number), and its path is
// itself a SafeReturnPath. It returns the target's authority in canonical
// form (lowercase host, and ":port" unless the port is 443) and the path. A
// sign-in code is sent to that authority, so any other port — where someone
// else may listen — is refused.
func ReturnURL(s string, knownHost func(host string) bool, servedPort int) (target, path string, ok bool) {
	if len(s) > 4096 || strings.ContainsAny(s, "\\\x00\r\n\t ") {
		return "", "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Opaque != "" || u.Host == "" {
		return "", "", false
	}
	host := HostName(u.Host)
	if !knownHost(host) {
		return "", "", false
	}
	port, ok := urlPort(u)
	if !ok || port != servedPort {
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
	return Authority(host, port), p, true
}

// urlPort is the port an https URL names, 443 when it names none; false
// for anything but a decimal number from 1 to 65535.
func urlPort(u *url.URL) (int, bool) {
	if strings.HasSuffix(u.Host, ":") {
		return 0, false // "host:" is not "host"
	}
	p := u.Port()
	if p == "" {
		return 443, true
	}
	return parsePort(p)
}

// parsePort parses a decimal port from 1 to 65535.
func parsePort(p string) (int, bool) {
	if p == "" || len(p) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1 && n <= 65535
}

// Authority is host and port as a URL names them, leaving out 443.
func Authority(host string, port int) string {
	if port == 443 {
		return host
	}
	return host + ":" + strconv.Itoa(port)
}
