package gateway_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
)

// wrongCode is a six-digit code other than code.
func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// notices counts the notices of event sent to userID.
func notices(h *harness, userID, event string) int {
	text, _ := notify.Notice("Portcullis", event)
	n := 0
	for _, m := range h.outbox.messages() {
		if m.UserID == userID && m.Purpose == notify.PurposeNotice && m.Text == text {
			n++
		}
	}
	return n
}

// stepUpFailuresOf is the profile's count of step-up answers in a row that
// did not pass, as stored.
func stepUpFailuresOf(t *testing.T, h *harness, userID string) int {
	t.Helper()
	u, err := h.store.UserByID(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return u.StepUpFailures
}

// Ten wrong answers in a row lock the profile, however they are spread over
// codes, resends, logins and throttle windows; the right code and the right
// password are refused after it.
func TestStepUpAnswersInARowLock(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	for login := range 3 {
		b := h.client(true)
		code := stepUpTo(t, h, b, bobID, "sms")
		for range 2 {
			if _, a := b.verifyCode(wrongCode(code), false); a.Reason != "bad_code" {
				t.Fatalf("login %d, a wrong code: %+v", login, a)
			}
		}
		// A resend is a new code, not a new count.
		h.clock.Add(31 * time.Second)
		if resp, a := b.sendCode("sms"); resp.StatusCode != http.StatusOK {
			t.Fatalf("resend: %d %+v", resp.StatusCode, a)
		}
		code, _ = h.lastCode(bobID)
		if _, a := b.verifyCode(wrongCode(code), false); a.Reason != "bad_code" {
			t.Fatalf("login %d, a wrong resent code: %+v", login, a)
		}
		// The hourly throttle lapses; the count in a row does not.
		h.clock.Add(2 * time.Hour)
	}
	if n := stepUpFailuresOf(t, h, bobID); n != 9 {
		t.Fatalf("after nine wrong answers the profile counts %d", n)
	}
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	resp, a := b.verifyCode(wrongCode(code), false)
	if resp.StatusCode != http.StatusForbidden || a.Reason != "step_up_locked" || a.Status == "authenticated" {
		t.Fatalf("the tenth wrong answer: %d %+v, want step_up_locked", resp.StatusCode, a)
	}
	if u, _ := h.store.UserByID(t.Context(), bobID); !u.Locked {
		t.Fatal("the profile is not locked after ten wrong answers in a row")
	}
	if n := notices(h, bobID, "account_locked"); n != 1 {
		t.Errorf("%d lock notices, want 1", n)
	}
	if _, a := b.verifyCode(code, false); a.Status == "authenticated" {
		t.Fatal("the right code passed on a locked profile")
	}
	if resp, a := h.client(true).login("bob", "builder-test-42"); resp.StatusCode != http.StatusForbidden || a.Reason != "account_locked" {
		t.Fatalf("the right password on the locked profile: %d %+v", resp.StatusCode, a)
	}
	// An administrator's unlock resets the count.
	if _, err := h.store.UnlockUser(t.Context(), bobID, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b = h.client(true)
	code = stepUpTo(t, h, b, bobID, "sms")
	if _, a := b.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("after the unlock: %+v", a)
	}
}

// A passed step-up resets the count: nine wrong answers, a pass, and nine
// more do not lock.
func TestPassedStepUpResetsTheCount(t *testing.T) {
	h := newHarness(t)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	wrongAnswers := func(n int) {
		t.Helper()
		for i := 0; i < n; {
			b := h.client(true)
			code := stepUpTo(t, h, b, bobID, "sms")
			for j := 0; j < 3 && i < n; j, i = j+1, i+1 {
				if _, a := b.verifyCode(wrongCode(code), false); a.Reason != "bad_code" {
					t.Fatalf("wrong answer %d: %+v", i+1, a)
				}
			}
			h.clock.Add(time.Hour)
		}
	}
	wrongAnswers(9)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	if _, a := b.verifyCode(code, false); a.Status != "authenticated" {
		t.Fatalf("the right code after nine wrong ones: %+v", a)
	}
	if n := stepUpFailuresOf(t, h, bobID); n != 0 {
		t.Fatalf("after a passed step-up the profile counts %d", n)
	}
	b.logout()
	h.clock.Add(time.Hour)
	wrongAnswers(9)
	if u, _ := h.store.UserByID(t.Context(), bobID); u.Locked || u.StepUpFailures != 9 {
		t.Fatalf("after a pass and nine more wrong answers: locked %v, count %d", u.Locked, u.StepUpFailures)
	}
}

// Concurrent wrong answers never get past the cap: with the throttles and
// the code's tries out of the way, of 30 at once exactly nine reserve a
// failure under the cap and the rest are refused for the lock
// (step_up_locked, or, once the profile is locked, account_locked and then
// no pending step-up), the profile locks once, and the right code is
// refused after them. Of the nine, an answer that reaches the code after
// the lock has taken it away is told the code is no longer valid
// (code_expired) rather than wrong (bad_code): both are refusals.
func TestParallelWrongAnswersStopAtTheCap(t *testing.T) {
	opt, _ := withPolicyDir(t, func(dir string) {
		editData(t, dir, func(cfg map[string]any) {
			cfg["step_up"].(map[string]any)["failures"].(map[string]any)["max"] = 100.0
			cfg["codes"].(map[string]any)["max_attempts"] = 100.0
			cfg["throttle"].(map[string]any)["max_ip_failures"] = 1000.0
		})
	})
	h := newHarness(t, opt)
	bobID := h.addPhoneUser("bob", "builder-test-42", bobPhone)
	b := h.client(true)
	code := stepUpTo(t, h, b, bobID, "sms")
	var wg sync.WaitGroup
	var mu sync.Mutex
	reasons := map[string]int{}
	for range 30 {
		wg.Go(func() {
			_, a := b.verifyCode(wrongCode(code), false)
			mu.Lock()
			reasons[a.Reason]++
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("30 concurrent wrong answers: %v", reasons)
	if under := reasons["bad_code"] + reasons["code_expired"]; under != 9 || reasons["bad_code"] == 0 || reasons["step_up_locked"] == 0 ||
		under+reasons["step_up_locked"]+reasons["account_locked"]+reasons["no_session"] != 30 {
		t.Fatalf("30 concurrent wrong answers: %v, want 9 under the cap (bad_code, or code_expired once the lock took the code) and the rest refused for the lock", reasons)
	}
	if u, _ := h.store.UserByID(t.Context(), bobID); !u.Locked || u.StepUpFailures < 10 || u.StepUpFailures > 30 {
		t.Fatalf("after the burst: locked %v, count %d", u.Locked, u.StepUpFailures)
	}
	if n := notices(h, bobID, "account_locked"); n != 1 {
		t.Errorf("%d lock notices, want 1", n)
	}
	if _, a := b.verifyCode(code, false); a.Status == "authenticated" {
		t.Fatal("the right code passed after the cap")
	}
}
