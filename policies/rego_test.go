package policies

import (
	"bytes"
	"testing"
)

// TestShippedRegoTests runs rego/*_test.rego so `go test ./...` covers the
// policies as `go tool opa test rego/` does.
func TestShippedRegoTests(t *testing.T) {
	for _, tc := range []struct{ name, dir string }{
		{"embedded", ""},
		{"directory", "../rego"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			passed, failed, err := Test(t.Context(), tc.dir, &out)
			if err != nil {
				t.Fatalf("Test: %v", err)
			}
			if failed > 0 || passed == 0 {
				t.Fatalf("rego tests: %d passed, %d failed\n%s", passed, failed, out.String())
			}
			t.Logf("rego tests: %d passed", passed)
		})
	}
}

func TestRegoTestFailuresAreCounted(t *testing.T) {
	dir := policyDir(t)
	writeFile(t, dir, "login_test.rego", `package portcullis.login_test

import data.portcullis.login

test_vpn_login_is_allowed if {
	login.decision.allow with input as {"client": {"facts": {"checked": true, "anonymous_vpn": true}}}
}

test_clean_login_is_allowed if {
	login.decision.allow with input as {"client": {"facts": {"checked": true}}}
}
`)
	var out bytes.Buffer
	passed, failed, err := Test(t.Context(), dir, &out)
	if err != nil {
		t.Fatalf("Test: %v", err)
	}
	if passed != 1 || failed != 1 {
		t.Fatalf("got %d passed, %d failed; want 1 and 1\n%s", passed, failed, out.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("test_vpn_login_is_allowed")) {
		t.Errorf("report does not name the failing test:\n%s", out.String())
	}
}
