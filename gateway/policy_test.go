package gateway_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAnonymizerLoginsAreDenied(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		source, reason string
	}{
		{"127.0.0.2", "ip_anonymous_vpn"},
		{"127.0.0.3", "ip_tor_exit_node"},
		{"127.0.0.4", "ip_hosting_provider"},
	}
	for _, tc := range tests {
		t.Run(tc.reason, func(t *testing.T) {
			resp, a := h.clientFrom(tc.source, true).apiLogin(bankHost, "alice", alicePassword)
			if resp.StatusCode != http.StatusForbidden || a.Status != "denied" || a.Reason != tc.reason {
				t.Fatalf("login from %s: %d %+v", tc.source, resp.StatusCode, a)
			}
			if !strings.Contains(a.Message, "private network") {
				t.Fatalf("message does not tell the person what to do: %q", a.Message)
			}
		})
	}
	// The HTML form says the same.
	b := h.clientFrom("127.0.0.2", true)
	resp := b.formLogin(h.url(bankHost, "/.portcullis/login"), "alice", alicePassword)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "private network") {
		t.Fatalf("form login over VPN: %d\n%s", resp.StatusCode, body)
	}
	// From a clean address alice signs in, and none of the refusals counted
	// against her.
	h.client(true).mustLogin(bankHost)
	if u, _ := h.store.UserByName(t.Context(), "alice"); u.FailedLogins != 0 {
		t.Fatalf("refused logins counted %d failures", u.FailedLogins)
	}
}

func TestOneSourceFailingAcrossUsernamesIsThrottled(t *testing.T) {
	h := newHarness(t)
	for i := range 25 {
		h.addUser("customer"+string(rune('a'+i)), "customer-password-42")
	}
	attacker := h.clientFrom("127.0.0.9", false)
	throttledAt := 0
	for i := range 25 {
		_, a := attacker.apiLogin(bankHost, "customer"+string(rune('a'+i)), "guess-password-1")
		if a.Reason == "ip_throttled" {
			throttledAt = i + 1
			break
		}
		if a.Reason != "bad_credentials" {
			t.Fatalf("attempt %d: %+v", i+1, a)
		}
	}
	if throttledAt != 21 {
		t.Fatalf("throttled at attempt %d, want 21 (20 failures per window)", throttledAt)
	}
	// Even the right password is refused from the throttled source...
	if resp, a := attacker.apiLogin(bankHost, "alice", alicePassword); resp.StatusCode != http.StatusTooManyRequests || a.Reason != "ip_throttled" {
		t.Fatalf("throttled source, right password: %d %+v", resp.StatusCode, a)
	}
	// ...but no customer was locked out, and everyone else signs in.
	for i := range 20 {
		u, _ := h.store.UserByName(t.Context(), "customer"+string(rune('a'+i)))
		if u.Locked || u.FailedLogins != 1 {
			t.Fatalf("%s: locked %v, failures %d", u.Username, u.Locked, u.FailedLogins)
		}
	}
	h.client(true).mustLogin(bankHost)
	// The window passes and the source may try again.
	h.clock.Add(16 * time.Minute)
	if _, a := attacker.apiLogin(bankHost, "alice", alicePassword); a.Status != "authenticated" {
		t.Fatalf("after the window: %+v", a)
	}
}

func TestPolicyEditTakesEffectWithoutRestart(t *testing.T) {
	dirOpt, dir := withPolicyDir(t, nil)
	h := newHarness(t, dirOpt)
	vpn := h.clientFrom("127.0.0.2", true)
	if _, a := vpn.apiLogin(bankHost, "alice", alicePassword); a.Reason != "ip_anonymous_vpn" {
		t.Fatalf("before the edit: %+v", a)
	}
	// The security team allows anonymous VPNs.
	editData(t, dir, func(cfg map[string]any) {
		cfg["anonymizer"].(map[string]any)["block"].(map[string]any)["anonymous_vpn"] = false
	})
	if err := h.policy.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	rev := h.policy.Revision()
	if _, a := vpn.apiLogin(bankHost, "alice", alicePassword); a.Status != "authenticated" {
		t.Fatalf("after the edit: %+v", a)
	}
	// A broken edit is refused and the last good policy keeps serving.
	if err := os.WriteFile(filepath.Join(dir, "login.rego"), []byte("package portcullis.login\n\ndecision := {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.policy.Reload(t.Context()); err == nil {
		t.Fatal("a broken policy loaded")
	}
	if h.policy.Revision() != rev {
		t.Fatal("the revision changed after a failed reload")
	}
	if _, a := vpn.apiLogin(bankHost, "alice", alicePassword); a.Status != "authenticated" {
		t.Fatalf("after the broken edit: %+v", a)
	}
	if _, a := h.clientFrom("127.0.0.3", true).apiLogin(bankHost, "alice", alicePassword); a.Reason != "ip_tor_exit_node" {
		t.Fatalf("tor after the broken edit: %+v", a)
	}
}

func TestPolicyErrorDenies(t *testing.T) {
	// Two rules that give different decisions for one input: evaluation
	// fails with a conflict, and the gateway must deny.
	conflicting := `package portcullis.login

decision := {"allow": true, "reason": "ok"} if input.client.ip

decision := {"allow": false, "reason": "other"} if input.client.ip
`
	dirOpt, _ := withPolicyDir(t, func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "login.rego"), []byte(conflicting), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "login_test.rego"))
	})
	h := newHarness(t, dirOpt)
	resp, a := h.client(true).apiLogin(bankHost, "alice", alicePassword)
	if resp.StatusCode != http.StatusServiceUnavailable || a.Status != "denied" || a.Reason != "policy_error" {
		t.Fatalf("login under a failing policy: %d %+v", resp.StatusCode, a)
	}
	if resp.Header.Get("Set-Cookie") != "" && strings.Contains(resp.Header.Get("Set-Cookie"), "__Host-portcullis=") {
		t.Fatal("a session was opened under a failing policy")
	}
}

func TestAccessNeedsTheProduct(t *testing.T) {
	h := newHarness(t)
	bob := h.addUser("bob", "builder-test-42")
	if err := h.store.SetProducts(t.Context(), bob.ID, []string{"carloans"}, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b := h.client(true)
	h.registerDevice(b, bob.ID)
	if resp, a := b.apiLogin(bankHost, "bob", "builder-test-42"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %+v", resp.StatusCode, a)
	}
	resp := b.get(bankHost, "/whoami")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob on savings: %d, want 403", resp.StatusCode)
	}
	if body := readAll(t, resp); !strings.Contains(body, "does not include this service") {
		t.Fatalf("page: %s", body)
	}
	// A script on the page asking for JSON gets the refusal as JSON.
	req, _ := http.NewRequest(http.MethodGet, h.url(bankHost, "/whoami"), nil)
	req.Header.Set("Accept", "application/json")
	resp = b.do(req)
	var a apiAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusForbidden || a.Reason != "route_not_permitted" {
		t.Fatalf("JSON client on savings: %d %+v (%v), want a JSON 403 route_not_permitted", resp.StatusCode, a, err)
	}
	if len(h.bank.requests()) != 0 {
		t.Fatal("upstream reached for a product the profile lacks")
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}
