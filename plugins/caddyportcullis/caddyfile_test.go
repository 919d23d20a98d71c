package caddyportcullis

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	// The Caddyfile adapter with the HTTP app, and the modules behind the
	// other directives the example uses (the log format filter).
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/logging"
)

const examplePath = "../../Caddyfile.embedded.example"

// adapt turns a Caddyfile into Caddy's JSON with Caddy's own adapter; a
// warning is an error.
func adapt(t *testing.T, body string) ([]byte, error) {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	if err == nil && len(warnings) > 0 {
		t.Errorf("adapter warnings: %v", warnings)
	}
	return out, err
}

// The parts of Caddy's JSON configuration that the checks read.
type (
	adapted struct {
		Apps struct {
			HTTP struct {
				Servers map[string]server `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	server struct {
		Listen []string `json:"listen"`
		Routes []route  `json:"routes"`
	}
	route struct {
		Match  []map[string]json.RawMessage `json:"match"`
		Handle []handler                    `json:"handle"`
	}
	handler struct {
		Handler string  `json:"handler"`
		Config  string  `json:"config"`
		Routes  []route `json:"routes"`
	}
)

// site is what one server does for a host: the handlers in the order a
// request meets them (subroutes flattened), and whether any of them is
// behind a matcher of its own.
type site struct {
	listen   []string
	handlers []handler
	matched  bool
}

func sites(t *testing.T, out []byte) map[string]site {
	t.Helper()
	var c adapted
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	got := map[string]site{}
	for _, srv := range c.Apps.HTTP.Servers {
		for _, r := range srv.Routes {
			var hosts []string
			for _, m := range r.Match {
				var hs []string
				json.Unmarshal(m["host"], &hs) //nolint:errcheck // no host: none
				hosts = append(hosts, hs...)
			}
			var s site
			s.listen = srv.Listen
			var walk func([]handler)
			walk = func(hs []handler) {
				for _, h := range hs {
					if h.Handler != "subroute" {
						s.handlers = append(s.handlers, h)
						continue
					}
					for _, sr := range h.Routes {
						s.matched = s.matched || len(sr.Match) > 0
						walk(sr.Handle)
					}
				}
			}
			walk(r.Handle)
			for _, h := range hosts {
				got[h] = s
			}
		}
	}
	return got
}

func names(hs []handler) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Handler)
	}
	return out
}

// The example adapts; every gateway host is answered by the portcullis
// handler alone, with no matcher and no encode or reverse_proxy beside it;
// the admin handler is on the private address only.
func TestEmbeddedExampleAdapts(t *testing.T) {
	body, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	out, err := adapt(t, string(body))
	if err != nil {
		t.Fatal(err)
	}
	got := sites(t, out)
	for _, host := range []string{"savings.bank.example", "auto.bank.example", "login.bank.example"} {
		s, ok := got[host]
		if !ok {
			t.Errorf("%s has no site", host)
			continue
		}
		if n := names(s.handlers); !slices.Equal(n, []string{"portcullis"}) || s.matched {
			t.Errorf("%s is handled by %v (matched: %v), want the portcullis handler alone", host, n, s.matched)
			continue
		}
		if c := s.handlers[0].Config; c != "/etc/portcullis/portcullis.yaml" {
			t.Errorf("%s: config %q", host, c)
		}
	}
	admin, ok := got["10.0.0.5"]
	if !ok || !slices.Equal(names(admin.handlers), []string{"portcullis_admin"}) || !slices.Equal(admin.listen, []string{"10.0.0.5:9090"}) {
		t.Errorf("admin site: %+v, want portcullis_admin alone on 10.0.0.5:9090", admin)
	} else if admin.handlers[0].Config != "/etc/portcullis/portcullis.yaml" {
		t.Errorf("admin site config %q", admin.handlers[0].Config)
	}
}

// The directive takes exactly one argument, which is the file even when it
// starts with a slash (Caddy reads such a first argument of a handler
// directive as a path matcher), after an optional named matcher.
func TestDirectiveSyntax(t *testing.T) {
	tests := []struct {
		name, site string
		wantErr    string // empty: adapts
		wantConfig string
		matched    bool
	}{
		{"absolute path", "portcullis /etc/p.yaml", "", "/etc/p.yaml", false},
		{"relative path", "portcullis p.yaml", "", "p.yaml", false},
		{"named matcher", "@app host a.example\n\tportcullis @app /etc/p.yaml", "", "/etc/p.yaml", true},
		{"admin", "portcullis_admin /etc/p.yaml", "", "/etc/p.yaml", false},
		{"no path", "portcullis", "needs the path of portcullis.yaml", "", false},
		{"no admin path", "portcullis_admin", "needs the path of portcullis.yaml", "", false},
		{"two paths", "portcullis /etc/p.yaml /etc/q.yaml", "one too many", "", false},
		{"a block", "portcullis /etc/p.yaml {\n\t\tconfig /etc/q.yaml\n\t}", "takes no block", "", false},
		{"matcher only", "@app host a.example\n\tportcullis @app", "needs the path", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := adapt(t, "a.example {\n\t"+tc.site+"\n}\n")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := sites(t, out)["a.example"]
			if len(s.handlers) != 1 || s.handlers[0].Config != tc.wantConfig || s.matched != tc.matched {
				t.Fatalf("handlers %+v matched %v, want one with config %q, matched %v", s.handlers, s.matched, tc.wantConfig, tc.matched)
			}
		})
	}
}
