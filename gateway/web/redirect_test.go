package web

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestSafeReturnPath(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means refused
	}{
		{"/", "/"},
		{"/whoami", "/whoami"},
		{"/accounts/42?tab=history", "/accounts/42?tab=history"},
		{"/a%20b", "/a%20b"},
		{"", ""},
		{"whoami", ""},
		{"//evil.example", ""},
		{"//evil.example/path", ""},
		{"/\\evil.example", ""},
		{"\\\\evil.example", ""},
		{"/%5Cevil.example", ""},
		{"/%2F%2Fevil.example", ""},
		{"/%2fevil.example", ""},
		{"https:evil.example", ""},
		{"https://evil.example", ""},
		{"http://evil.example/", ""},
		{"javascript:alert(1)", ""},
		{"/javascript:alert(1)", "/javascript:alert(1)"},
		{"JaVaScRiPt:alert(1)", ""},
		{"data:text/html,x", ""},
		{" /evil", ""},
		{"/\t/evil.example", ""},
		{"/%09/evil.example", ""},
		{"/%0d%0a/evil.example", ""},
		{"/\r\n/evil.example", ""},
		{"/ /evil.example", ""},
		{"/\x00", ""},
		{"@evil.example", ""},
		{"//user@evil.example", ""},
		{"/@evil.example", "/@evil.example"},
		{"/%", ""},
		{"/" + strings.Repeat("a", 3000), ""},
		// Original request targets a forward-auth call names (X-Forwarded-Uri,
		// X-Original-URI), which a client shapes as it likes.
		{"//evil.example/accounts?tab=1", ""},
		{"///evil.example", ""},
		{"/\\/evil.example", ""},
		{"\\/evil.example", ""},
		{"/%5C%5Cevil.example", ""},
		{"/%5c/evil.example", ""},
		{"/%0D%0ALocation:%20https://evil.example", ""},
		{"/%0aSet-Cookie:%20x=y", ""},
		{"/%0d", ""},
		{"//alice@evil.example/", ""},
		{"/%2F%2Falice@evil.example", ""},
		{"/accounts?next=//evil.example", "/accounts?next=//evil.example"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := SafeReturnPath(tc.in)
			if tc.want == "" {
				if ok {
					t.Fatalf("SafeReturnPath(%q) = %q, accepted; want refused", tc.in, got)
				}
				return
			}
			if !ok || got != tc.want {
				t.Fatalf("SafeReturnPath(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
			}
		})
	}
}

func TestReturnURL(t *testing.T) {
	known := func(h string) bool { return h == "bank.test" || h == "auto.test" }
	tests := []struct {
		in       string
		served   int
		host     string
		path     string
		accepted bool
	}{
		{"https://bank.test/whoami", 443, "bank.test", "/whoami", true},
		{"https://auto.test:8443/x?y=1", 8443, "auto.test:8443", "/x?y=1", true},
		{"https://bank.test", 443, "bank.test", "/", true},
		{"https://BANK.test:443/a", 443, "bank.test", "/a", true},
		{"https://bank.test:0443/a", 443, "bank.test", "/a", true},
		{"https://bank.test./a", 443, "bank.test", "/a", true},
		{"https://evil.test/", 443, "", "", false},
		{"http://bank.test/", 443, "", "", false},
		{"https://bank.test@evil.test/", 443, "", "", false},
		{"https://evil.test\\@bank.test/", 443, "", "", false},
		{"https://bank.test//evil.test", 443, "", "", false},
		{"https:bank.test/x", 443, "", "", false},
		{"javascript:alert(1)//https://bank.test/", 443, "", "", false},
		{"//bank.test/x", 443, "", "", false},
		{"https://bank.test/%0a", 443, "", "", false},
		{"https://bank.test /x", 443, "", "", false},
		// A sign-in code goes to the target: any port but the one the
		// gateway serves could be someone else's listener.
		{"https://bank.test:1/whoami", 443, "", "", false},
		{"https://bank.test:1/whoami", 8443, "", "", false},
		{"https://bank.test:8443/whoami", 443, "", "", false},
		{"https://bank.test/whoami", 8443, "", "", false},
		{"https://bank.test:443/whoami", 8443, "", "", false},
		{"https://bank.test:0/whoami", 443, "", "", false},
		{"https://bank.test:99999/whoami", 443, "", "", false},
		{"https://bank.test:65536/whoami", 443, "", "", false},
		{"https://bank.test:-1/whoami", 443, "", "", false},
		{"https://bank.test:/whoami", 443, "", "", false},
		{"https://bank.test:8443:8443/whoami", 8443, "", "", false},
		{"https://bank.test:+443/whoami", 443, "", "", false},
		{"https://bank.test:0x1bb/whoami", 443, "", "", false},
		{"https://bank.test:8443/whoami", 0, "", "", false},
		{"https://[::1]:8443/", 8443, "", "", false},
		// The original URL of a forward-auth call, built from the forwarded
		// host and target.
		{"https://evil.test/accounts", 443, "", "", false},
		{"https://bank.test.evil.test/accounts", 443, "", "", false},
		{"https://evil.test#@bank.test/", 443, "", "", false},
		{"https://alice@bank.test/accounts", 443, "", "", false},
		{"https://alice:pw@bank.test/accounts", 443, "", "", false},
		{"https://bank.test///evil.test", 443, "", "", false},
		{"https://bank.test/\\evil.test", 443, "", "", false},
		{"https://bank.test/%5Cevil.test", 443, "", "", false},
		{"https://bank.test/%2F%2Fevil.test", 443, "", "", false},
		{"https://bank.test/%0d%0aSet-Cookie:%20x=y", 443, "", "", false},
		{"https://bank.test/a\r\nLocation: https://evil.test", 443, "", "", false},
		{"https://bank.test/accounts?tab=history", 443, "bank.test", "/accounts?tab=history", true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.in, " served on ", tc.served), func(t *testing.T) {
			host, path, ok := ReturnURL(tc.in, known, tc.served)
			if ok != tc.accepted || host != tc.host || path != tc.path {
				t.Fatalf("ReturnURL(%q, port %d) = %q, %q, %v; want %q, %q, %v", tc.in, tc.served, host, path, ok, tc.host, tc.path, tc.accepted)
			}
		})
	}
}

// FuzzSafeReturnPath checks that whatever is accepted, resolved against the
// gateway's own URL the way a browser would, stays on the gateway's host.
func FuzzSafeReturnPath(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil", "/\\evil", "https:evil", "/%09/evil", "@x", "javascript:x", "/%2F/x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://bank.test/start")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := SafeReturnPath(s)
		if !ok {
			return
		}
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n ") {
			t.Fatalf("SafeReturnPath(%q) accepted %q", s, got)
		}
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted %q does not parse: %v", got, err)
		}
		if u := base.ResolveReference(ref); u.Host != "bank.test" || u.Scheme != "https" || u.User != nil {
			t.Fatalf("SafeReturnPath(%q) = %q leaves the host: %s", s, got, u)
		}
		if again, ok := SafeReturnPath(got); !ok || again != got {
			t.Fatalf("not stable: %q -> %q -> %q, %v", s, got, again, ok)
		}
	})
}
