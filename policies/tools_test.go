package policies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	e := newEngine(t, Config{})
	for _, tc := range []struct {
		example, reason, rule string
	}{
		{"vpn_login", "ip_anonymous_vpn", "ip.rego:"},
		{"fifth_wrong_password", "bad_credentials", "login_password.rego:"},
		{"sensitive_path_access", "step_up_required", "stepup.rego:"},
	} {
		t.Run(tc.example, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join(examplesDir, tc.example+".json"))
			if err != nil {
				t.Fatal(err)
			}
			d, rules, err := e.Explain(t.Context(), "", input)
			if err != nil {
				t.Fatal(err)
			}
			if d.Reason != tc.reason || d.Revision != e.Revision() {
				t.Errorf("decision %+v", d)
			}
			joined := strings.Join(rules, "\n")
			if !strings.Contains(joined, tc.rule) || !strings.Contains(joined, "decision") {
				t.Errorf("rules do not show %s:\n%s", tc.rule, joined)
			}
		})
	}
}

func TestExplainRejectsBadInput(t *testing.T) {
	e := newEngine(t, Config{})
	for name, tc := range map[string]struct{ point, input string }{
		"misspelt fact":    {"login", `{"client": {"ip": "198.51.100.7", "recent_failure": 3}}`},
		"not JSON":         {"login", `point: login`},
		"different point":  {"access", `{"point": "login"}`},
		"unknown point":    {"logon", `{}`},
		"wrong field type": {"login", `{"now": "today"}`},
	} {
		t.Run(name, func(t *testing.T) {
			d, _, err := e.Explain(t.Context(), tc.point, []byte(tc.input))
			if err == nil || d.Allow {
				t.Fatalf("got %+v, %v", d, err)
			}
		})
	}
}
