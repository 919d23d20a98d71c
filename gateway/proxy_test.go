package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/web"
)

func TestRemoveCookie(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string // nil: no Cookie header left
	}{
		{"only ours", []string{"__Host-portcullis=abc; __Host-portcullis-csrf=def"}, nil},
		{"ours among the app's", []string{"app=1; __Host-portcullis=abc; lang=en"}, []string{"app=1; lang=en"}},
		{"several header lines", []string{"app=1", "__Host-portcullis=abc", "lang=en"}, []string{"app=1; lang=en"}},
		{"lookalike names stay", []string{"x__Host-portcullis=1; __Host-portcullis2=2; __Host-portcullis=abc"}, []string{"x__Host-portcullis=1; __Host-portcullis2=2"}},
		{"our name in a value stays", []string{"note=__Host-portcullis"}, []string{"note=__Host-portcullis"}},
		{"untouched without ours", []string{"app=1;lang=en"}, []string{"app=1;lang=en"}},
		{"spaces around names", []string{"app=1 ;  __Host-portcullis =abc"}, []string{"app=1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Header: http.Header{"Cookie": tc.in}}
			removeCookie(r, session.Cookie, web.CSRFCookie)
			got := r.Header["Cookie"]
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Fatalf("Cookie = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	s := &Server{stripHeaders: []string{normHeader("X-Remote-User")}}
	h := http.Header{
		"X-Portcullis-User": {"m"}, "X_portcullis_user": {"m"}, "X-PORTCULLIS-ASSERTION": {"m"},
		"X-Remote-User": {"m"}, "X_remote_user": {"m"}, "X-Portcullis": {"kept: no trailing hyphen"},
		"X-Remote-User-Name": {"kept: longer name"}, "Accept": {"kept"},
	}
	s.stripIdentityHeaders(h)
	for name, values := range h {
		if !strings.HasPrefix(values[0], "kept") {
			t.Errorf("%s survived", name)
		}
	}
	if len(h) != 3 {
		t.Errorf("left %v, want the three kept headers", h)
	}
}

// FuzzRemoveCookie: whatever Cookie header a client sends, none of the
// gateway's cookies reaches the upstream, and every other cookie pair the
// standard library would read still does, in order.
func FuzzRemoveCookie(f *testing.F) {
	f.Add("app=1; __Host-portcullis=abc; lang=en")
	f.Add("__Host-portcullis=a;__Host-portcullis-csrf=b")
	f.Add(" ; ;=;__Host-portcullis ; x=\"q;r\"")
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Cookie": {header}}}
		var want []string
		for _, c := range r.Cookies() {
			if c.Name != session.Cookie && c.Name != web.CSRFCookie {
				want = append(want, c.Name+"="+c.Value)
			}
		}
		removeCookie(r, session.Cookie, web.CSRFCookie)
		var got []string
		for _, c := range r.Cookies() {
			if c.Name == session.Cookie || c.Name == web.CSRFCookie {
				t.Fatalf("%q still carries %s after removal: %q", header, c.Name, r.Header["Cookie"])
			}
			got = append(got, c.Name+"="+c.Value)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: kept %q, want %q", header, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%q: kept %q, want %q", header, got, want)
			}
		}
	})
}
