package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/gateway/web"
)

// FuzzReadForwarded checks that whatever forwarded headers are accepted
// describe a request the gateway can judge: an upper-case method, a target
// that is an absolute path without control characters or spaces, and a host
// that is a bare name (with an optional port) and no more.
func FuzzReadForwarded(f *testing.F) {
	for _, s := range [][4]string{
		{"GET", "/accounts?tab=1", "bank.test:8443", "https"},
		{"POST", "//evil.test/x", "bank.test", ""},
		{"get", "/a", "bank.test", "https"},
		{"GET", "/%0d%0a", "bank.test, evil.test", "https"},
		{"GET", "/\\evil", "bank.test:443/x", "http"},
		{"GET", "https://evil.test/", "user@bank.test", "https"},
		{"GET", "/a b", "[::1]:443", "https"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, method, uri, host, proto string) {
		r, err := http.NewRequest(http.MethodGet, "https://portcullis.internal/.portcullis/auth", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header["X-Forwarded-Method"] = []string{method}
		r.Header["X-Forwarded-Uri"] = []string{uri}
		r.Header["X-Forwarded-Host"] = []string{host}
		if proto != "" {
			r.Header["X-Forwarded-Proto"] = []string{proto}
		}
		r.Header.Set("X-Forwarded-For", "192.0.2.1")
		fwd, err := readForwarded(r)
		if err != nil {
			return
		}
		if fwd.method == "" || strings.ToUpper(fwd.method) != fwd.method || strings.ContainsAny(fwd.method, " \t\r\n,") {
			t.Errorf("method %q accepted", fwd.method)
		}
		target := fwd.uri.RequestURI()
		if !strings.HasPrefix(fwd.uri.Path, "/") || fwd.uri.Host != "" || fwd.uri.Scheme != "" || fwd.uri.User != nil {
			t.Errorf("target %q accepted as %+v", uri, fwd.uri)
		}
		for i := 0; i < len(target); i++ {
			if target[i] <= 0x20 || target[i] == 0x7f {
				t.Errorf("target %q holds a control character or space", target)
			}
		}
		if name := web.HostName(fwd.host); name == "" || strings.ContainsAny(name, ":/@[], \\") {
			t.Errorf("host %q accepted as %q", fwd.host, name)
		}
	})
}
