package policies

import (
	"slices"
	"strings"
	"testing"
)

// verifyCode is a step-up answer after inARow answers in a row that did not
// pass.
func verifyCode(ok bool, inARow int) Input {
	in := cleanLogin()
	in.Point = PointVerifyCode
	in.Device = Device{}
	in.Account.ConsecutiveStepUpFailures = inARow
	in.Code = &Code{Purpose: "login", Channel: "sms", SentAt: in.Now - 60}
	in.Attempt = CodeAttempt(ok)
	return in
}

// TestStepUpCapIsDecidedOnTheCount checks the engine hands the count to the
// policy: the answer that reaches the shipped cap of 10 locks, and once
// reached nothing passes.
func TestStepUpCapIsDecidedOnTheCount(t *testing.T) {
	e := newEngine(t, Config{})
	if n := e.MaxConsecutiveStepUpFailures(); n != 10 {
		t.Fatalf("MaxConsecutiveStepUpFailures() = %d, want 10", n)
	}
	for _, tc := range []struct {
		name    string
		in      Input
		allow   bool
		reason  string
		lock    bool
		notices []string
	}{
		{"right answer after nine", verifyCode(true, 9), true, ReasonOK, false, nil},
		{"wrong answer after eight", verifyCode(false, 8), false, "bad_code", false, nil},
		{"wrong answer after nine", verifyCode(false, 9), false, "step_up_locked", true, []string{"account_locked"}},
		{"right answer after ten", verifyCode(true, 10), false, "step_up_locked", true, []string{"account_locked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Decide(t.Context(), tc.in)
			if d.Allow != tc.allow || d.Reason != tc.reason || d.Lock != tc.lock || !slices.Equal(d.Notify, tc.notices) {
				t.Fatalf("got %+v, want allow %v reason %s lock %v notify %v", d, tc.allow, tc.reason, tc.lock, tc.notices)
			}
			if r, ok := LookupReason(d.Reason); !ok || (!d.Allow && r.Status != 403) {
				t.Errorf("reason %s: %+v, %v", d.Reason, r, ok)
			}
		})
	}
}

// TestStepUpCapMustMeetTheStandard: a cap outside 1 to 100 does not load,
// and a failed reload keeps the cap serving.
func TestStepUpCapMustMeetTheStandard(t *testing.T) {
	dir := policyDir(t)
	e := newEngine(t, Config{Dir: dir})
	editData(t, dir, func(p map[string]any) { setting(p, "step_up")["max_consecutive_failures"] = 100 })
	if err := e.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := e.MaxConsecutiveStepUpFailures(); n != 100 {
		t.Fatalf("after reload: %d, want 100", n)
	}
	for _, bad := range []any{101, 0, -1} {
		editData(t, dir, func(p map[string]any) { setting(p, "step_up")["max_consecutive_failures"] = bad })
		err := e.Reload(t.Context())
		if err == nil || !strings.Contains(err.Error(), "step_up.max_consecutive_failures") {
			t.Fatalf("a cap of %v: reload error %v, want one naming the setting", bad, err)
		}
		if n := e.MaxConsecutiveStepUpFailures(); n != 100 {
			t.Fatalf("after a failed reload: %d, want 100", n)
		}
	}
	editData(t, dir, func(p map[string]any) { delete(setting(p, "step_up"), "max_consecutive_failures") })
	if err := e.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "step_up.max_consecutive_failures") {
		t.Fatalf("without the cap: reload error %v, want one naming the setting", err)
	}
}
