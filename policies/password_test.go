package policies

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPasswordLengthCountsNFCCodePoints(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    string
		want int
	}{
		{"empty", "", 0},
		{"ascii", "correct horse", 13},
		{"precomposed", "caf\u00e9", 4},
		{"decomposed", "cafe\u0301", 4},
		{"emoji", "🔑🔑", 2},
		{"invalid utf-8", "ab\xff", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PasswordLength(tc.p); got != tc.want {
				t.Errorf("PasswordLength(%q) = %d, want %d", tc.p, got, tc.want)
			}
		})
	}
}

func TestPasswordRulesCheck(t *testing.T) {
	rules := PasswordRules{MinLength: 12, MaxLength: 64}
	for _, tc := range []struct {
		name   string
		p      string
		reason string // "" when accepted
		says   string
	}{
		{"empty", "", ReasonPasswordTooShort, "at least 12 characters"},
		{"one short", strings.Repeat("a", 11), ReasonPasswordTooShort, "at least 12 characters"},
		{"minimum", strings.Repeat("a", 12), "", ""},
		{"no composition rules", "aaaaaaaaaaaaaaaa", "", ""},
		{"maximum", strings.Repeat("a", 64), "", ""},
		{"one over", strings.Repeat("a", 65), ReasonPasswordTooLong, "at most 64 characters"},
		// 22 code points as typed, 11 characters after NFC.
		{"decomposed one short", strings.Repeat("e\u0301", 11), ReasonPasswordTooShort, "at least 12"},
		{"decomposed minimum", strings.Repeat("e\u0301", 12), "", ""},
		// 64 four-byte characters: 256 bytes, the most MaxBytes allows.
		{"maximum of emoji", strings.Repeat("🔑", 64), "", ""},
		{"too many emoji", strings.Repeat("🔑", 65), ReasonPasswordTooLong, "at most 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rules.Check(tc.p)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if n := len(tc.p); n > rules.MaxBytes() {
					t.Errorf("an accepted password of %d bytes exceeds MaxBytes %d", n, rules.MaxBytes())
				}
				return
			}
			var pe *PasswordError
			if !errors.As(err, &pe) || pe.Reason != tc.reason || pe.Rules != rules {
				t.Fatalf("Check = %#v, want a *PasswordError with reason %s", err, tc.reason)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.says) || (tc.p != "" && strings.Contains(msg, tc.p)) {
				t.Errorf("message %q should say %q and never quote the password", msg, tc.says)
			}
		})
	}
}

func TestZeroPasswordRulesRefuseEverything(t *testing.T) {
	for _, p := range []string{"", "a", strings.Repeat("long enough ", 4)} {
		if (PasswordRules{}).Check(p) == nil {
			t.Errorf("zero rules accepted %q", p)
		}
	}
}

// TestShippedPasswordRules pins the shipped data to the design: at least
// 12 characters, at least 64 allowed, and no more than the 256 bytes the
// gateway reads at sign-in.
func TestShippedPasswordRules(t *testing.T) {
	got := newEngine(t, Config{}).PasswordRules()
	if got != (PasswordRules{MinLength: 12, MaxLength: 64, MinGuessesLog10: 10}) {
		t.Errorf("shipped rules %+v", got)
	}
	if got.MaxBytes() != 256 {
		t.Errorf("MaxBytes %d, want 256", got.MaxBytes())
	}
}

// TestPasswordRulesAgreeWithThePolicy checks Go and Rego refuse the same
// passwords for the same reasons, with the policy data changed to show
// both read it.
func TestPasswordRulesAgreeWithThePolicy(t *testing.T) {
	dir := policyDir(t)
	e := newEngine(t, Config{Dir: dir})
	check := func() {
		t.Helper()
		rules := e.PasswordRules()
		for n := 0; n <= rules.MaxLength+2; n++ {
			p := strings.Repeat("é", n)
			in := cleanLogin()
			in.Point = PointEnrol
			in.Enrolment = &Enrolment{Stage: "credentials", UsernameAvailable: true, Consent: true,
				NewPassword: &PasswordFacts{Length: PasswordLength(p), GuessesLog10: rules.MinGuessesLog10}}
			d := e.Decide(t.Context(), in)
			var pe *PasswordError
			goReason := ReasonOK
			if err := rules.Check(p); errors.As(err, &pe) {
				goReason = pe.Reason
			}
			if d.Reason != goReason {
				t.Fatalf("rules %+v, %d characters: policy says %s, Check says %s", rules, n, d.Reason, goReason)
			}
		}
	}
	check()
	old := e.PasswordRules()
	want := PasswordRules{MinLength: old.MinLength + 3, MaxLength: old.MinLength + 8, MinGuessesLog10: old.MinGuessesLog10 + 2}
	editFile(t, dir, "data.json", fmt.Sprintf(`"min_length": %d`, old.MinLength), fmt.Sprintf(`"min_length": %d`, want.MinLength))
	editFile(t, dir, "data.json", fmt.Sprintf(`"max_length": %d`, old.MaxLength), fmt.Sprintf(`"max_length": %d`, want.MaxLength))
	editFile(t, dir, "data.json", fmt.Sprintf(`"min_guesses_log10": %d`, old.MinGuessesLog10),
		fmt.Sprintf(`"min_guesses_log10": %d`, want.MinGuessesLog10))
	if err := e.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.PasswordRules(); got != want {
		t.Fatalf("after reload: %+v, want %+v", got, want)
	}
	check()
	judge(t, e)
}

// judge checks that Judge and the policy refuse the same facts for the
// same reason, one fact at a time and all together.
func judge(t *testing.T, e *Engine) {
	t.Helper()
	rules := e.PasswordRules()
	good := PasswordFacts{Length: rules.MinLength, Classes: 1, GuessesLog10: rules.MinGuessesLog10}
	for _, tc := range []struct {
		name string
		edit func(*PasswordFacts)
		want string
	}{
		{"good", func(*PasswordFacts) {}, ReasonOK},
		{"well above the guesses minimum", func(f *PasswordFacts) { f.GuessesLog10 = rules.MinGuessesLog10 + 9 }, ReasonOK},
		{"short", func(f *PasswordFacts) { f.Length-- }, ReasonPasswordTooShort},
		{"long", func(f *PasswordFacts) { f.Length = rules.MaxLength + 1 }, ReasonPasswordTooLong},
		{"username", func(f *PasswordFacts) { f.ContainsUsername = true }, ReasonPasswordContainsUsername},
		{"name", func(f *PasswordFacts) { f.ContainsName = true }, ReasonPasswordContainsName},
		{"common", func(f *PasswordFacts) { f.Common = true }, ReasonPasswordCommon},
		{"guessable", func(f *PasswordFacts) { f.GuessesLog10 = rules.MinGuessesLog10 - 1 }, ReasonPasswordGuessable},
		{"unscored", func(f *PasswordFacts) { f.GuessesLog10 = 0 }, ReasonPasswordGuessable},
		{"name, common and guessable", func(f *PasswordFacts) { f.ContainsName, f.Common, f.GuessesLog10 = true, true, 0 }, ReasonPasswordContainsName},
		{"common and guessable", func(f *PasswordFacts) { f.Common, f.GuessesLog10 = true, 0 }, ReasonPasswordCommon},
		{"everything", func(f *PasswordFacts) {
			*f = PasswordFacts{Length: rules.MinLength - 1, ContainsUsername: true, ContainsName: true, Common: true}
		}, ReasonPasswordTooShort},
	} {
		f := good
		tc.edit(&f)
		in := cleanLogin()
		in.Point = PointEnrol
		in.Enrolment = &Enrolment{Stage: "credentials", UsernameAvailable: true, Consent: true, NewPassword: &f}
		d := e.Decide(t.Context(), in)
		goReason := ReasonOK
		var pe *PasswordError
		if err := rules.Judge(f); errors.As(err, &pe) {
			goReason = pe.Reason
			if msg := err.Error(); msg == "" || strings.Contains(msg, "%!") {
				t.Errorf("%s: message %q", tc.name, msg)
			}
		}
		if d.Reason != tc.want || goReason != tc.want {
			t.Errorf("rules %+v, %s (%+v): policy says %s, Judge says %s, want %s", rules, tc.name, f, d.Reason, goReason, tc.want)
		}
	}
}
