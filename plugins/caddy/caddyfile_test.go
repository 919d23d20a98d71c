package caddy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	// The Caddyfile adapter, and the modules behind the directives the
	// example uses (reverse_proxy with its http transport and file trust
	// pool; the log format filter). The adapter itself brings the tls
	// directive and the HTTP app.
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	_ "github.com/caddyserver/caddy/v2/modules/logging"
)

const (
	examplePath = "../../Caddyfile.example"
	// gatewayDial is the private address of the gateway in the example.
	gatewayDial = "10.0.0.5:8443"
)

// siteHosts are the gateway's host names in the example: its route hosts
// and its login host.
var siteHosts = []string{"auto.bank.example", "login.bank.example", "savings.bank.example"}

func TestCaddyfileExampleIsValid(t *testing.T) {
	body, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	out, err := adapt(examplePath, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkGatewayProxy(out) {
		t.Error(p)
	}
}

// TestBrokenCaddyfilesAreRejected changes one thing in a copy of the
// example and expects either Caddy's adapter or checkGatewayProxy to refuse
// it, so that the test of the example can fail.
func TestBrokenCaddyfilesAreRejected(t *testing.T) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old, new string
		// adaptErr: the adapter itself refuses the file; otherwise it
		// adapts and checkGatewayProxy must report a problem.
		adaptErr bool
	}{
		{
			name:     "unknown directive",
			old:      "\treverse_proxy https://",
			new:      "\treverse_proxi https://",
			adaptErr: true,
		},
		{
			name:     "unknown transport option",
			old:      "tls_trust_pool file",
			new:      "tls_trust_pools file",
			adaptErr: true,
		},
		{
			name:     "unclosed site block",
			old:      "\nsavings.bank.example, auto.bank.example, login.bank.example {\n",
			new:      "\nextra.bank.example {\n\nsavings.bank.example, auto.bank.example, login.bank.example {\n",
			adaptErr: true,
		},
		{
			// Caddy's adapter warns when a file differs from `caddy fmt`.
			name:     "not formatted",
			old:      "\t\theader_up Host {host}\n",
			new:      "\t\t    header_up Host {host}\n",
			adaptErr: true,
		},
		{
			name: "host not preserved",
			old:  "\t\theader_up Host {host}\n",
			new:  "",
		},
		{
			name: "host replaced by upstream address",
			old:  "\t\theader_up Host {host}\n",
			new:  "\t\theader_up Host {upstream_hostport}\n",
		},
		{
			name: "reserved path answered by caddy",
			old:  "\treverse_proxy https://",
			new:  "\trespond /.portcullis/* 404\n\n\treverse_proxy https://",
		},
		{
			name: "other upstream",
			old:  "reverse_proxy https://10.0.0.5:8443 {",
			new:  "reverse_proxy https://10.0.0.6:8443 {",
		},
		{
			name: "certificate not verified",
			old:  "tls_trust_pool file /etc/caddy/portcullis-ca.pem",
			new:  "tls_insecure_skip_verify",
		},
		{
			name: "no defence-in-depth strip",
			old:  "\t\theader_up -X-Portcullis-*\n",
			new:  "",
		},
		{
			name: "identity header set by caddy",
			old:  "\t\theader_up -X-Portcullis-*\n",
			new:  "\t\theader_up -X-Portcullis-*\n\t\theader_up X-Portcullis-User admin\n",
		},
		{
			name: "client's forwarded-for passed on",
			old:  "\t\theader_up Host {host}\n",
			new:  "\t\theader_up Host {host}\n\t\theader_up X-Forwarded-For {header.X-Forwarded-For}\n",
		},
		{
			name: "caddy trusts every client's forwarded-for",
			old:  "\t\theader_up Host {host}\n",
			new:  "\t\theader_up Host {host}\n\t\ttrusted_proxies 0.0.0.0/0\n",
		},
		{
			name: "sign-in code logged",
			old:  "\t\t\t\tdelete code\n",
			new:  "\t\t\t\tdelete rd\n",
		},
		{
			name: "no access log",
			old:  "\tlog {\n\t\tformat filter {\n\t\t\trequest>uri query {\n\t\t\t\tdelete code\n\t\t\t}\n\t\t}\n\t}\n\n",
			new:  "",
		},
		{
			name: "site missing a host",
			old:  "savings.bank.example, auto.bank.example, login.bank.example {",
			new:  "savings.bank.example, auto.bank.example {",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(example), tc.old) {
				t.Fatalf("Caddyfile.example no longer contains %q; update this case", tc.old)
			}
			path := filepath.Join(t.TempDir(), "Caddyfile")
			broken := strings.Replace(string(example), tc.old, tc.new, 1)
			if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			out, err := adapt(path, body)
			if tc.adaptErr {
				if err == nil {
					t.Fatal("adapter accepted the broken Caddyfile")
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatalf("adapter refused the Caddyfile, the checks were not reached: %v", err)
			}
			problems := checkGatewayProxy(out)
			if len(problems) == 0 {
				t.Fatal("checks accepted the broken Caddyfile")
			}
			t.Log(strings.Join(problems, "\n"))
		})
	}
}

// adapt converts a Caddyfile to Caddy's JSON with Caddy's own adapter. Its
// warnings, which include "input is not formatted", count as errors.
func adapt(filename string, body []byte) ([]byte, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, errors.New("adapt: the caddyfile adapter is not registered")
	}
	out, warnings, err := adapter.Adapt(body, map[string]any{"filename": filename})
	if err != nil {
		return nil, fmt.Errorf("adapt %s: %w", filename, err)
	}
	if len(warnings) > 0 {
		errs := make([]error, 0, len(warnings))
		for _, w := range warnings {
			errs = append(errs, fmt.Errorf("adapt %s: warning: %s", filename, w))
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// The parts of Caddy's JSON configuration that the checks read.
type (
	caddyConfig struct {
		Logging struct {
			Logs map[string]struct {
				Encoder struct {
					Format string `json:"format"`
					Fields map[string]struct {
						Filter  string `json:"filter"`
						Actions []struct {
							Type      string `json:"type"`
							Parameter string `json:"parameter"`
						} `json:"actions"`
					} `json:"fields"`
				} `json:"encoder"`
			} `json:"logs"`
		} `json:"logging"`
		Apps struct {
			HTTP struct {
				Servers map[string]httpServer `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	httpServer struct {
		Routes         []httpRoute `json:"routes"`
		TrustedProxies any         `json:"trusted_proxies"`
		Logs           *struct {
			LoggerNames map[string][]string `json:"logger_names"`
		} `json:"logs"`
	}
	httpRoute struct {
		Match  []map[string]json.RawMessage `json:"match"`
		Handle []httpHandler                `json:"handle"`
	}
	// httpHandler has the fields of the subroute and reverse_proxy
	// handlers.
	httpHandler struct {
		Handler   string      `json:"handler"`
		Routes    []httpRoute `json:"routes"`
		Upstreams []struct {
			Dial string `json:"dial"`
		} `json:"upstreams"`
		Transport *struct {
			Protocol string `json:"protocol"`
			TLS      *struct {
				ServerName         string `json:"server_name"`
				InsecureSkipVerify bool   `json:"insecure_skip_verify"`
				CA                 *struct {
					Provider string   `json:"provider"`
					PEMFiles []string `json:"pem_files"`
				} `json:"ca"`
			} `json:"tls"`
		} `json:"transport"`
		Headers *struct {
			Request *struct {
				Set     map[string][]string        `json:"set"`
				Add     map[string][]string        `json:"add"`
				Replace map[string]json.RawMessage `json:"replace"`
				Delete  []string                   `json:"delete"`
			} `json:"request"`
		} `json:"headers"`
		TrustedProxies []string `json:"trusted_proxies"`
	}
)

// checkGatewayProxy reports what is wrong with an adapted configuration for
// running Caddy in front of the gateway: every site host must be served,
// and every request on it must reach a reverse_proxy to the gateway that
// verifies the gateway's certificate, keeps the browser's Host, removes
// client copies of the gateway's identity headers, and leaves
// X-Forwarded-* to Caddy; its access log must not record sign-in codes.
func checkGatewayProxy(adapted []byte) []string {
	var cfg caddyConfig
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		return []string{fmt.Sprintf("decoding the adapted configuration: %v", err)}
	}
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var hosts []string
	for name, srv := range cfg.Apps.HTTP.Servers {
		if srv.TrustedProxies != nil {
			report("server %s: trusted_proxies is set, but Caddy faces the clients directly in the example", name)
		}
		for i, rt := range srv.Routes {
			routeHosts := matchedHosts(rt.Match)
			if len(routeHosts) == 0 {
				report("server %s: route %d has no host matcher", name, i)
			}
			hosts = append(hosts, routeHosts...)
			where := fmt.Sprintf("server %s, hosts %v", name, routeHosts)
			if n := checkHandlers(where, rt.Handle, report); n == 0 {
				report("%s: no reverse_proxy to the gateway", where)
			}
		}
		for _, host := range siteHosts {
			var loggers []string
			if srv.Logs != nil {
				loggers = srv.Logs.LoggerNames[host]
			}
			if len(loggers) == 0 {
				report("server %s: %s has no access log", name, host)
			}
			for _, logger := range loggers {
				if !dropsSignInCode(cfg, logger) {
					report("server %s: access log %s of %s records the sign-in code in /.portcullis/callback?code=", name, logger, host)
				}
			}
		}
	}
	slices.Sort(hosts)
	if !slices.Equal(hosts, siteHosts) {
		report("site hosts are %v, want %v", hosts, siteHosts)
	}
	return problems
}

// dropsSignInCode reports whether a log deletes the code query parameter
// from the request URIs it records.
func dropsSignInCode(cfg caddyConfig, logger string) bool {
	log, ok := cfg.Logging.Logs[logger]
	if !ok || log.Encoder.Format != "filter" {
		return false
	}
	uri, ok := log.Encoder.Fields["request>uri"]
	if !ok || uri.Filter != "query" {
		return false
	}
	for _, a := range uri.Actions {
		if a.Type == "delete" && a.Parameter == "code" {
			return true
		}
	}
	return false
}

func matchedHosts(sets []map[string]json.RawMessage) []string {
	var hosts []string
	for _, set := range sets {
		raw, ok := set["host"]
		if !ok {
			continue
		}
		var hs []string
		if err := json.Unmarshal(raw, &hs); err == nil {
			hosts = append(hosts, hs...)
		}
	}
	return hosts
}

// checkHandlers walks a site's handlers and returns how many reverse_proxy
// handlers it found. Anything between the client and the gateway is
// refused: a matcher would carve requests out (say /.portcullis/) and any
// other handler would answer or alter them before the gateway sees them.
func checkHandlers(where string, handlers []httpHandler, report func(string, ...any)) int {
	proxies := 0
	for _, h := range handlers {
		switch h.Handler {
		case "subroute":
			for _, rt := range h.Routes {
				if len(rt.Match) > 0 {
					m, _ := json.Marshal(rt.Match)
					report("%s: a matcher inside the site (%s) keeps some requests from the gateway", where, m)
				}
				proxies += checkHandlers(where, rt.Handle, report)
			}
		case "reverse_proxy":
			proxies++
			checkProxy(where, h, report)
		default:
			report("%s: handler %q runs in front of the gateway", where, h.Handler)
		}
	}
	return proxies
}

func checkProxy(where string, h httpHandler, report func(string, ...any)) {
	if len(h.Upstreams) != 1 || h.Upstreams[0].Dial != gatewayDial {
		report("%s: upstreams are %+v, want only %s", where, h.Upstreams, gatewayDial)
	}
	if len(h.TrustedProxies) > 0 {
		report("%s: reverse_proxy trusts X-Forwarded-For from %v, so clients could choose the address the gateway sees", where, h.TrustedProxies)
	}

	switch tr := h.Transport; {
	case tr == nil || tr.Protocol != "http" || tr.TLS == nil:
		report("%s: the transport to the gateway is not HTTPS", where)
	default:
		if tr.TLS.InsecureSkipVerify {
			report("%s: the gateway's certificate is not verified", where)
		}
		if !slices.Contains(siteHosts, tr.TLS.ServerName) {
			report("%s: tls_server_name is %q, want one of the gateway's host names %v", where, tr.TLS.ServerName, siteHosts)
		}
		if ca := tr.TLS.CA; ca == nil || ca.Provider != "file" || len(ca.PEMFiles) == 0 {
			report("%s: no tls_trust_pool file with the CA of the gateway's certificate", where)
		}
	}

	var ops struct {
		Set, Add map[string][]string
		Replace  map[string]json.RawMessage
		Delete   []string
	}
	if h.Headers != nil && h.Headers.Request != nil {
		r := h.Headers.Request
		ops.Set, ops.Add, ops.Replace, ops.Delete = r.Set, r.Add, r.Replace, r.Delete
	}
	if got := headerValues(ops.Set, "Host"); !slices.Equal(got, []string{"{http.request.host}"}) {
		report("%s: Host sent to the gateway is %q, want the browser's {http.request.host}", where, got)
	}
	if !slices.ContainsFunc(ops.Delete, func(s string) bool { return strings.EqualFold(s, "X-Portcullis-*") }) {
		report("%s: header_up -X-Portcullis-* is missing", where)
	}
	changed := slices.Concat(slices.Collect(maps.Keys(ops.Set)), slices.Collect(maps.Keys(ops.Add)), slices.Collect(maps.Keys(ops.Replace)))
	for _, name := range changed {
		n := strings.ToLower(name)
		if strings.HasPrefix(n, "x-portcullis-") || strings.HasPrefix(n, "x-forwarded-") {
			report("%s: header_up changes %s, which only the gateway (X-Portcullis-*) or Caddy itself (X-Forwarded-*) may set", where, name)
		}
	}
	for _, name := range ops.Delete {
		if strings.HasPrefix(strings.ToLower(name), "x-forwarded-") {
			report("%s: header_up removes %s, which the gateway needs from Caddy", where, name)
		}
	}
}

// headerValues looks a header up by name, case-insensitively.
func headerValues(h map[string][]string, name string) []string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}
