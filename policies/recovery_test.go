package policies

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRecoveryDataIsChecked(t *testing.T) {
	// Each edit of data.portcullis.config.recovery is refused, with an
	// error naming the setting's place.
	edits := map[string]func(rec map[string]any){
		"no window":                           func(rec map[string]any) { rec["window_seconds"] = 0 },
		"negative account limit":              func(rec map[string]any) { rec["max_attempts_per_account"] = -1 },
		"negative address limit":              func(rec map[string]any) { rec["max_attempts_per_address"] = -1 },
		"missing questions setting":           func(rec map[string]any) { delete(rec, "password_identity_questions") },
		"questions setting of the wrong type": func(rec map[string]any) { rec["password_identity_questions"] = "yes" },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			dir := policyDir(t)
			editData(t, dir, func(p map[string]any) { edit(setting(p, "recovery")) })
			_, err := New(t.Context(), Config{Dir: dir, Now: func() time.Time { return testNow }})
			if err == nil || !strings.Contains(err.Error(), "recovery") {
				t.Fatalf("New: %v, want an error naming the recovery data", err)
			}
		})
	}
}

func TestRecoveryRulesComeFromTheData(t *testing.T) {
	e := newEngine(t, Config{})
	r := e.RecoveryRules()
	if r.Window != time.Hour || !r.PasswordIdentityQuestions || r.CodeLifetime != 20*time.Minute {
		t.Errorf("shipped rules: %+v", r)
	}
	if got := r.Offers("username"); !slices.Equal(got, []string{"sms", "voice", "email"}) {
		t.Errorf("username methods %v", got)
	}
	if got := r.Offers("password"); !slices.Equal(got, []string{"sms", "voice"}) {
		t.Errorf("password methods %v", got)
	}
	if got := r.Offers("pin"); len(got) != 0 {
		t.Errorf("an unknown kind offers %v", got)
	}
	// Offers is a copy: changing it changes nothing the engine serves.
	r.Offers("username")[0] = "pigeon"
	if got := e.RecoveryRules().Offers("username"); got[0] != "sms" {
		t.Errorf("the served methods changed: %v", got)
	}

	dir := policyDir(t)
	editData(t, dir, func(p map[string]any) {
		rec := setting(p, "recovery")
		rec["password_identity_questions"] = false
		rec["window_seconds"] = 600
	})
	r = newEngine(t, Config{Dir: dir}).RecoveryRules()
	if r.PasswordIdentityQuestions || r.Window != 10*time.Minute {
		t.Errorf("edited rules: %+v", r)
	}
}
