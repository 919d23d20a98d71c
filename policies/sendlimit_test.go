package policies

import (
	"testing"
	"time"
)

func sendCode(sends SendCounts) Input {
	in := cleanLogin()
	in.Point = PointSendCode
	in.Device = Device{}
	in.Code = &Code{Purpose: "login", Channel: "sms", Phone: *in.Account.SecurityPhone, Sends: sends}
	return in
}

// TestShippedSendLimitWindows pins the shipped windows: every counter is
// kept for an hour.
func TestShippedSendLimitWindows(t *testing.T) {
	got := newEngine(t, Config{}).SendLimitWindows()
	want := SendLimitWindows{User: time.Hour, Number: time.Hour, Address: time.Hour, CallingCode: time.Hour}
	if got != want {
		t.Fatalf("SendLimitWindows() = %+v, want %+v", got, want)
	}
}

func TestSendLimitWindowsFollowReload(t *testing.T) {
	dir := policyDir(t)
	e := newEngine(t, Config{Dir: dir})
	editFile(t, dir, "data.json", `"per_user": {"max": 10, "window_seconds": 3600}`, `"per_user": {"max": 10, "window_seconds": 86400}`)
	editFile(t, dir, "data.json", `"per_calling_code": {"max": 500, "window_seconds": 3600}`, `"per_calling_code": {"max": 500, "window_seconds": 600}`)
	if err := e.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := SendLimitWindows{User: 24 * time.Hour, Number: time.Hour, Address: time.Hour, CallingCode: 10 * time.Minute}
	if got := e.SendLimitWindows(); got != want {
		t.Fatalf("after reload: %+v, want %+v", got, want)
	}

	// A window that is not positive does not load; the previous one serves.
	editFile(t, dir, "data.json", `"window_seconds": 86400`, `"window_seconds": 0`)
	if err := e.Reload(t.Context()); err == nil {
		t.Fatal("a zero window reloaded")
	}
	if got := e.SendLimitWindows(); got != want {
		t.Fatalf("after a failed reload: %+v, want %+v", got, want)
	}
}

// TestSendLimitsAreDecidedOnTheCounts checks the engine passes the counts
// through to the policy, and a count of zero max refuses every send.
func TestSendLimitsAreDecidedOnTheCounts(t *testing.T) {
	e := newEngine(t, Config{})
	for _, tc := range []struct {
		name   string
		sends  SendCounts
		reason string
	}{
		{"first send", SendCounts{}, ReasonOK},
		{"below every limit", SendCounts{User: 9, Number: 9, Address: 19, CallingCode: 499}, ReasonOK},
		{"address", SendCounts{User: 10, Number: 10, Address: 20, CallingCode: 500}, "code_send_limit_address"},
		{"user", SendCounts{User: 10, Number: 10, CallingCode: 500}, "code_send_limit_user"},
		{"number", SendCounts{Number: 10, CallingCode: 500}, "code_send_limit_number"},
		{"calling code", SendCounts{CallingCode: 500}, "code_send_limit_calling_code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Decide(t.Context(), sendCode(tc.sends))
			if d.Reason != tc.reason || d.Allow != (tc.reason == ReasonOK) {
				t.Fatalf("got %+v, want %s", d, tc.reason)
			}
			if r, ok := LookupReason(d.Reason); !ok || (!d.Allow && r.Status != 429) {
				t.Errorf("reason %s: %+v, %v", d.Reason, r, ok)
			}
		})
	}

	dir := policyDir(t)
	editFile(t, dir, "data.json", `"per_number": {"max": 10,`, `"per_number": {"max": 0,`)
	if d := newEngine(t, Config{Dir: dir}).Decide(t.Context(), sendCode(SendCounts{})); d.Reason != "code_send_limit_number" {
		t.Fatalf("max 0: %+v", d)
	}
}

func TestVerifyCodeCarriesTheDeviceLifetime(t *testing.T) {
	e := newEngine(t, Config{})
	in := Input{
		Point:   PointVerifyCode,
		Code:    &Code{Purpose: "login", Channel: "sms", SentAt: testNow.Unix() - 60},
		Attempt: CodeAttempt(true),
	}
	d := e.Decide(t.Context(), in)
	if !d.Allow || !d.OfferDeviceRegistration || d.DeviceLifetimeSeconds != 180*86400 {
		t.Fatalf("new device: %+v", d)
	}
	in.Device = Device{Recognised: true, RegisteredAt: testNow.Unix() - 86400}
	if d := e.Decide(t.Context(), in); !d.Allow || d.OfferDeviceRegistration || d.DeviceLifetimeSeconds != 0 {
		t.Fatalf("registered device: %+v", d)
	}
}

func TestExpiredDeviceNeedsAStepUp(t *testing.T) {
	e := newEngine(t, Config{})
	in := cleanLogin()
	in.Point = PointLoginPassword
	in.Attempt = PasswordAttempt(true)
	in.Device = Device{Recognised: true, RegisteredAt: testNow.Unix() - 180*86400}
	if d := e.Decide(t.Context(), in); !d.Allow {
		t.Fatalf("device registered 180 days ago: %+v", d)
	}
	in.Device.RegisteredAt--
	if d := e.Decide(t.Context(), in); d.Reason != ReasonStepUpRequired {
		t.Fatalf("device registered longer ago: %+v", d)
	}
}
