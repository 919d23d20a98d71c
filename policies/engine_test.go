package policies

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewRejectsMissingDirectory(t *testing.T) {
	if _, err := New(t.Context(), Config{Dir: "/nonexistent/policies"}); err == nil {
		t.Fatal("New with a missing directory succeeded")
	}
}

func TestNewRejectsBrokenPolicies(t *testing.T) {
	for _, tc := range []struct {
		name, file, old, new string
	}{
		{"syntax error", "login.rego", "default decision :=", "default decision = = "},
		{"missing point", "verify_code.rego", "decision := outcome.deny(\"account_locked\") if {", "verdict := outcome.deny(\"account_locked\") if {"},
		{"bad network", "data.json", `"allow_listed_networks": []`, `"allow_listed_networks": ["10.0.0.0/33"]`},
		{"banned built-in", "login.rego", "decision := outcome.deny(refusal)", "decision := outcome.deny(refusal) if time.now_ns() > 0"},
		{"misspelt setting", "data.json", `"max_consecutive_failures"`, `"max_consecutive_failure"`},
		{"setting of the wrong type", "data.json", `"max_ip_failures": 20`, `"max_ip_failures": "20"`},
		{"missing setting", "data.json", "\"max_consecutive_failures\": 5,\n        \"reveal_before_password\": false", `"max_consecutive_failures": 5`},
		{"password minimum not positive", "data.json", `"min_length": 12`, `"min_length": 0`},
		{"password maximum below minimum", "data.json", `"max_length": 64`, `"max_length": 11`},
		{"composition setting", "data.json", `"max_length": 64`, `"max_length": 64, "min_classes": 2`},
		{"data conflicting with a policy", "data.json", `"portcullis": {`, `"portcullis": {"login": {"decision": 1},`},
		{"send window zero", "data.json", `"per_user": {"max": 10, "window_seconds": 3600}`, `"per_user": {"max": 10, "window_seconds": 0}`},
		{"send window negative", "data.json", `"per_calling_code": {"max": 500, "window_seconds": 3600}`, `"per_calling_code": {"max": 500, "window_seconds": -1}`},
		{"send limit negative", "data.json", `"per_address": {"max": 20,`, `"per_address": {"max": -1,`},
		{"send limit fractional", "data.json", `"per_number": {"max": 10,`, `"per_number": {"max": 10.5,`},
		{"send limit without a window", "data.json", `"per_number": {"max": 10, "window_seconds": 3600}`, `"per_number": {"max": 10}`},
		{"send limit missing", "data.json", `"per_number": {"max": 10, "window_seconds": 3600},`, ``},
		{"send limit unknown", "data.json", `"per_user": {`, `"per_device": {"max": 1, "window_seconds": 60}, "per_user": {`},
		{"email switch missing", "data.json", `"enabled": false`, ``},
		{"email switch of the wrong type", "data.json", `"enabled": false`, `"enabled": "no"`},
		{"device lifetime zero", "data.json", `"lifetime_seconds": 15552000`, `"lifetime_seconds": 0`},
		{"device lifetime missing", "data.json", `"offer_registration": true,
        "lifetime_seconds": 15552000`, `"offer_registration": true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := policyDir(t)
			editFile(t, dir, tc.file, tc.old, tc.new)
			if tc.name == "missing point" {
				// Remove every decision rule from verify_code.
				editFile(t, dir, tc.file, "default decision :=", "default verdict :=")
			}
			if _, err := New(t.Context(), Config{Dir: dir}); err == nil {
				t.Fatal("New succeeded")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestDecideLogin(t *testing.T) {
	e := newEngine(t, Config{})
	for _, tc := range []struct {
		name   string
		in     func() Input
		allow  bool
		reason string
	}{
		{"clean", cleanLogin, true, "ok"},
		{"vpn", vpnLogin, false, "ip_anonymous_vpn"},
		{"unchecked", func() Input { in := cleanLogin(); in.Client.Facts = IPFacts{}; return in }, false, "ip_unchecked"},
		{"throttled", func() Input { in := cleanLogin(); in.Client.RecentFailures = 20; return in }, false, "ip_throttled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Decide(t.Context(), tc.in())
			if d.Allow != tc.allow || d.Reason != tc.reason {
				t.Fatalf("got allow=%v reason=%q, want %v %q", d.Allow, d.Reason, tc.allow, tc.reason)
			}
			if d.Revision != e.Revision() {
				t.Errorf("revision %q, want %q", d.Revision, e.Revision())
			}
		})
	}
}

func TestDecideLoginPassword(t *testing.T) {
	e := newEngine(t, Config{})
	in := cleanLogin()
	in.Point = PointLoginPassword
	in.Account.ConsecutiveFailures = 4
	in.Attempt = PasswordAttempt(false)
	d := e.Decide(t.Context(), in)
	if d.Allow || d.Reason != "bad_credentials" || !d.Lock || !d.CountFailure || !d.CountIPFailure ||
		d.IPFailureWindowSeconds != 900 || len(d.Notify) != 1 || d.Notify[0] != "account_locked" {
		t.Fatalf("fifth wrong password: %+v", d)
	}
	in.Account.Locked = true
	in.Attempt = PasswordAttempt(true)
	if d := e.Decide(t.Context(), in); d.Reason != "account_locked" {
		t.Fatalf("right password on a locked account: %+v", d)
	}
	in.Account.Locked = false
	in.Device.Recognised = false
	d = e.Decide(t.Context(), in)
	if d.Reason != "step_up_required" || strings.Join(d.StepUp, ",") != "sms,voice,totp" || !d.ResetFailures {
		t.Fatalf("new device: %+v", d)
	}
}

func TestDecideTimeComesFromTheClock(t *testing.T) {
	now := testNow
	e := newEngine(t, Config{Now: func() time.Time { return now }})
	in := Input{
		Point:   PointVerifyCode,
		Code:    &Code{Purpose: "login", Channel: "sms", SentAt: testNow.Unix()},
		Attempt: CodeAttempt(true),
	}
	if d := e.Decide(t.Context(), in); !d.Allow {
		t.Fatalf("fresh code: %+v", d)
	}
	now = now.Add(20 * time.Minute)
	if d := e.Decide(t.Context(), in); d.Reason != "code_expired" {
		t.Fatalf("code after 20 minutes: %+v", d)
	}
}

func TestDecideFailsClosed(t *testing.T) {
	policy := func(t *testing.T, decision string) *Engine {
		dir := policyDir(t)
		writeFile(t, dir, "login.rego", "package portcullis.login\n\n"+decision+"\n")
		return newEngine(t, Config{Dir: dir})
	}
	for _, tc := range []struct {
		name     string
		decision string
	}{
		{"division by zero", `decision := {"allow": true, "reason": "ok", "n": 1 / input.client.recent_failures}`},
		{"conflicting outputs", "decision := {\"allow\": true, \"reason\": \"ok\"}\n\ndecision := {\"allow\": false, \"reason\": \"x\"} if input.point == \"login\""},
		{"undefined", `decision := {"allow": true, "reason": "ok"} if input.point == "nothing"`},
		{"not an object", `decision := true`},
		{"allow not a boolean", `decision := {"allow": "yes", "reason": "ok"}`},
		{"no allow", `decision := {"reason": "ok"}`},
		{"no reason", `decision := {"allow": true}`},
		{"fractional number", `decision := {"allow": true, "reason": "ok", "code_ttl_seconds": 1.5}`},
		{"list of numbers", `decision := {"allow": true, "reason": "ok", "step_up": [1]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			e := policy(t, tc.decision)
			e.logger = testLogger(&logs)
			d := e.Decide(t.Context(), cleanLogin())
			if d.Allow || d.Reason != ReasonPolicyError {
				t.Fatalf("got %+v, want a policy_error deny", d)
			}
			if !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("no error logged: %s", logs.String())
			}
		})
	}
	t.Run("unknown point", func(t *testing.T) {
		e := newEngine(t, Config{})
		if d := e.Decide(t.Context(), Input{Point: "logon"}); d.Allow || d.Reason != ReasonPolicyError {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("panic", func(t *testing.T) {
		var logs logBuffer
		e := newEngine(t, Config{Now: func() time.Time { panic("clock broke") }, Logger: testLogger(&logs)})
		if d := e.Decide(t.Context(), Input{Point: PointLogin}); d.Allow || d.Reason != ReasonPolicyError {
			t.Fatalf("got %+v", d)
		}
		if !strings.Contains(logs.String(), "clock broke") {
			t.Errorf("panic not logged: %s", logs.String())
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		// Denied, but not a policy failure: no error log, no decision
		// log line, for a login and for an access check on a cache miss.
		var logs, decisions logBuffer
		e := newEngine(t, Config{Logger: testLogger(&logs), DecisionLog: &decisions})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for _, in := range []Input{cleanLogin(), accessInput("/transfers/new", testNow.Unix()-60)} {
			if d := e.Decide(ctx, in); d.Allow {
				t.Fatalf("got %+v", d)
			}
		}
		if strings.Contains(logs.String(), `"level":"ERROR"`) || strings.Count(logs.String(), "policy evaluation abandoned") != 2 {
			t.Errorf("logs:\n%s", logs.String())
		}
		if decisions.String() != "" {
			t.Errorf("decision log: %s", decisions.String())
		}
	})
}

func TestDefaultDecisionIsDeny(t *testing.T) {
	e := newEngine(t, Config{})
	for _, p := range Points() {
		if p == PointLogin {
			continue // a clean network may always go on to the password check
		}
		t.Run(string(p), func(t *testing.T) {
			in := Input{Point: p, Client: Client{Facts: IPFacts{Checked: true}}}
			d := e.Decide(t.Context(), in)
			if d.Allow {
				t.Fatalf("empty input allowed: %+v", d)
			}
		})
	}
}

func TestReload(t *testing.T) {
	dir := policyDir(t)
	var logs logBuffer
	e := newEngine(t, Config{Dir: dir, Logger: testLogger(&logs)})
	ctx := t.Context()
	first := e.Revision()
	if d := e.Decide(ctx, vpnLogin()); d.Reason != "ip_anonymous_vpn" {
		t.Fatalf("before edit: %+v", d)
	}
	if err := e.Reload(ctx); err != nil || e.Revision() != first {
		t.Fatalf("reload without change: %v, revision %s → %s", err, first, e.Revision())
	}

	// The security team stops blocking VPNs.
	editFile(t, dir, "data.json", `"anonymous_vpn": true`, `"anonymous_vpn": false`)
	if err := e.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	second := e.Revision()
	if second == first {
		t.Fatal("revision did not change")
	}
	if d := e.Decide(ctx, vpnLogin()); !d.Allow || d.Revision != second {
		t.Fatalf("after edit: %+v", d)
	}

	// A broken edit keeps the previous policy serving.
	editFile(t, dir, "login.rego", "decision := outcome.deny(refusal)", "decision := outcome.deny(refusal")
	if err := e.Reload(ctx); err == nil {
		t.Fatal("broken policy reloaded")
	}
	if e.Revision() != second {
		t.Fatalf("revision %s after a failed reload, want %s", e.Revision(), second)
	}
	if d := e.Decide(ctx, vpnLogin()); !d.Allow || d.Revision != second {
		t.Fatalf("after broken edit: %+v", d)
	}
	if !strings.Contains(logs.String(), `"msg":"policy reload failed"`) {
		t.Errorf("failed reload not logged:\n%s", logs.String())
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	dir := policyDir(t)
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		e := newEngine(t, Config{Dir: dir, Logger: testLogger(&logs)})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			e.Watch(ctx, time.Second)
			close(done)
		}()

		editFile(t, dir, "data.json", `"max_ip_failures": 20`, `"max_ip_failures": 3`)
		time.Sleep(time.Second)
		synctest.Wait()
		in := cleanLogin()
		in.Client.RecentFailures = 3
		if d := e.Decide(ctx, in); d.Reason != "ip_throttled" {
			t.Errorf("after edit: %+v", d)
		}

		editFile(t, dir, "login.rego", "decision := outcome.deny(refusal)", "decision := outcome.deny(refusal")
		time.Sleep(time.Second)
		synctest.Wait()
		if d := e.Decide(ctx, in); d.Reason != "ip_throttled" {
			t.Errorf("after broken edit: %+v", d)
		}
		// The broken revision is not retried every second.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := strings.Count(logs.String(), "policy reload failed"); n != 1 {
			t.Errorf("%d reload failures logged, want 1", n)
		}
		cancel()
		<-done
	})
}

func TestConcurrentDecideAndReload(t *testing.T) {
	dir := policyDir(t)
	e := newEngine(t, Config{Dir: dir})
	ctx := t.Context()
	stop := concurrently(4, func() bool {
		d := e.Decide(ctx, vpnLogin())
		if d.Reason != "ip_anonymous_vpn" && !(d.Allow && d.Reason == "ok") {
			t.Errorf("unexpected decision %+v", d)
			return false
		}
		a := accessInput("/transfers/new", testNow.Unix()-60)
		if d := e.Decide(ctx, a); !d.Allow {
			t.Errorf("unexpected access decision %+v", d)
			return false
		}
		return true
	})
	for i := range 6 {
		from, to := `"anonymous_vpn": true`, `"anonymous_vpn": false`
		if i%2 == 1 {
			from, to = to, from
		}
		editFile(t, dir, "data.json", from, to)
		if err := e.Reload(ctx); err != nil {
			t.Error(err)
		}
	}
	stop()
}

func TestDecisionLog(t *testing.T) {
	var out logBuffer
	e := newEngine(t, Config{DecisionLog: &out})
	in := cleanLogin()
	in.Point = PointSettings
	in.Session = &Session{Methods: []string{"password", "sms"}, StepUpAt: testNow.Unix() - 60, LastSeen: testNow.Unix() - 5, Created: testNow.Unix() - 300}
	// A caller that forgot to mask: the log must not show the number.
	in.Change = &Change{
		Kind:        "security_phone",
		Phone:       &PhoneFacts{Valid: true, Region: "GB", LineType: "voip", Masked: "+44 56 1234 5678"},
		NewPassword: &PasswordFacts{Length: 13, Classes: 3},
	}
	d := e.Decide(t.Context(), in)
	if d.Reason != "phone_voip" {
		t.Fatalf("decision %+v", d)
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 {
		t.Fatalf("want one line, got %q", line)
	}
	for _, secret := range []string{"1234 5678", "5678", `"length"`} {
		if strings.Contains(line, secret) {
			t.Errorf("decision log contains %q: %s", secret, line)
		}
	}
	var entry struct {
		DecisionID string `json:"decision_id"`
		Path       string `json:"path"`
		Timestamp  string `json:"timestamp"`
		Bundles    map[string]struct {
			Revision string `json:"revision"`
		} `json:"bundles"`
		Result struct {
			Allow  bool   `json:"allow"`
			Reason string `json:"reason"`
		} `json:"result"`
		Portcullis struct {
			Format int    `json:"format"`
			Point  string `json:"point"`
		} `json:"portcullis"`
		Input Input `json:"input"`
	}
	if err := json.Unmarshal([]byte(line), &entry); err != nil {
		t.Fatal(err)
	}
	if entry.Portcullis.Point != "settings" || entry.Portcullis.Format != DecisionLogFormat || entry.Path != "portcullis/settings/decision" ||
		entry.Bundles["portcullis"].Revision != e.Revision() || entry.Result.Allow || entry.Result.Reason != "phone_voip" ||
		entry.Timestamp != "2026-01-01T00:00:00Z" {
		t.Errorf("entry %+v", entry)
	}
	if entry.DecisionID == "" || entry.DecisionID != d.DecisionID {
		t.Errorf("logged decision ID %q, decision's %q", entry.DecisionID, d.DecisionID)
	}
	if d2 := e.Decide(t.Context(), in); d2.DecisionID == d.DecisionID {
		t.Errorf("two decisions share the ID %q", d.DecisionID)
	}
	if got := entry.Input.Change.Phone.Masked; got != "" {
		t.Errorf("new phone logged as %q", got)
	}
	if got := entry.Input.Account.SecurityPhone.Masked; got != "" {
		t.Errorf("security phone logged as %q", got)
	}
	if line := out.String(); strings.Contains(line, "78") && strings.Contains(line, "5678") || strings.Contains(line, "masked") {
		t.Errorf("a phone's digits in the log: %s", line)
	}
	if entry.Input.Client.IP != "198.51.100.7" || entry.Input.Change.Phone.LineType != "voip" {
		t.Errorf("facts lost: %+v", entry.Input)
	}
}

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"7":               "7",
		"+447700900123":   "+**********23",
		"********67":      "********67",
		"+1 (600) 201-23": "+* (***) ***-23",
	} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
		if got := MaskPhone(MaskPhone(in)); got != want {
			t.Errorf("MaskPhone is not idempotent on %q", in)
		}
	}
}

func TestAllowListedNetworks(t *testing.T) {
	dir := policyDir(t)
	editFile(t, dir, "data.json", `"allow_listed_networks": []`, `"allow_listed_networks": ["203.0.113.0/24", "2001:db8::/32", "192.0.2.1"]`)
	e := newEngine(t, Config{Dir: dir})
	for addr, want := range map[string]bool{
		"203.0.113.9":        true,
		"::ffff:203.0.113.9": true,
		"2001:db8::1":        true,
		"192.0.2.1":          true,
		"192.0.2.2":          false,
		"198.51.100.7":       false,
	} {
		if got := e.AllowListed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("AllowListed(%s) = %v", addr, got)
		}
	}
	// The caller's value is replaced by the engine's matching.
	in := vpnLogin()
	if d := e.Decide(t.Context(), in); !d.Allow {
		t.Errorf("VPN login from an allow-listed network: %+v", d)
	}
	in.Client.IP = "198.51.100.99"
	in.Client.AllowListed = true
	if d := e.Decide(t.Context(), in); d.Reason != "ip_anonymous_vpn" {
		t.Errorf("VPN login claiming to be allow-listed: %+v", d)
	}
}

func TestPathClass(t *testing.T) {
	dir := policyDir(t)
	editFile(t, dir, "data.json", `"routes": {}`, `"routes": {"brokerage": {"sensitive_prefixes": ["/Orders/", "/orders/bulk"]}, "open": {}}`)
	e := newEngine(t, Config{Dir: dir})
	for _, tc := range []struct{ route, path, want string }{
		{"savings", "/transfers", "/transfers"},
		{"savings", "/transfers/new", "/transfers"},
		{"savings", "/TRANSFERS/new", "/transfers"},
		{"savings", "//transfers/./new", "/transfers"},
		{"savings", "/accounts/../transfers", "/transfers"},
		{"savings", "/transfers;jsessionid=1/new", "/transfers"},
		{"savings", "/transfersx", ""},
		{"savings", "/profile/security/phone", "/profile/security"},
		{"savings", "/profile", ""},
		{"savings", "", ""},
		{"brokerage", "/orders/bulk/7", "/orders/bulk"},
		{"brokerage", "/orders/7", "/orders"},
		{"brokerage", "/transfers", ""},
		{"open", "/transfers", ""},
	} {
		if got := e.PathClass(tc.route, tc.path); got != tc.want {
			t.Errorf("PathClass(%q, %q) = %q, want %q", tc.route, tc.path, got, tc.want)
		}
	}
}

func FuzzPathClass(f *testing.F) {
	k := knobs{defaultPrefixes: normalisePrefixes([]string{"/transfers", "/profile/security", "/"})}
	k2 := knobs{defaultPrefixes: normalisePrefixes([]string{"/transfers", "/payees"})}
	for _, s := range []string{"/transfers/new", "//x/../transfers", "/a;b/c", "", "/%2e%2e/transfers"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := normalisePath(p)
		if normalisePath(n) != n {
			t.Fatalf("normalisePath not idempotent: %q → %q → %q", p, n, normalisePath(n))
		}
		if got := k.pathClass("any", p); got == "" {
			t.Fatalf("%q escaped a catch-all prefix", p)
		}
		if c := k2.pathClass("any", p); c != "" && !strings.HasPrefix(n, c) {
			t.Fatalf("class %q of %q (%q) is not its prefix", c, p, n)
		}
	})
}
