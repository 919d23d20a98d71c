package settings

import (
	"strings"
	"testing"

	"github.com/portcullis/portcullis/policies"
)

// A session's handle is stable for one key, differs between keys and
// between sessions, and does not reveal the session ID.
func TestSessionHandle(t *testing.T) {
	const sid = "3f1c2a9e8b7d6c5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877"
	a := &Room{Deps{HandleKey: []byte("0123456789abcdef0123456789abcdef")}}
	b := &Room{Deps{HandleKey: []byte("fedcba9876543210fedcba9876543210")}}
	tests := []struct {
		name string
		got  string
		want func(h string) bool
	}{
		{"stable", a.handle(sid), func(h string) bool { return h == a.handle(sid) }},
		{"short and opaque", a.handle(sid), func(h string) bool { return len(h) == 22 && !strings.Contains(sid, h) && !strings.Contains(h, sid[:8]) }},
		{"another key", b.handle(sid), func(h string) bool { return h != a.handle(sid) }},
		{"another session", a.handle(sid[1:] + "0"), func(h string) bool { return h != a.handle(sid) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.want(tc.got) {
				t.Fatalf("handle %q", tc.got)
			}
		})
	}
}

// The refusal of a new password says what to change, with the rules'
// numbers.
func TestPasswordRefusalMessages(t *testing.T) {
	rules := policies.PasswordRules{MinLength: 12, MaxLength: 64}
	tests := []struct {
		reason, want string
	}{
		{policies.ReasonPasswordTooShort, "A password needs at least 12 characters: choose a longer one."},
		{policies.ReasonPasswordTooLong, "A password can have at most 64 characters: choose a shorter one."},
	}
	for _, tc := range tests {
		t.Run(tc.reason, func(t *testing.T) {
			if !passwordReason(tc.reason) {
				t.Fatalf("%s is not taken for a password refusal", tc.reason)
			}
			if got := sentence((&policies.PasswordError{Reason: tc.reason, Rules: rules}).Error()); got != tc.want {
				t.Fatalf("message %q, want %q", got, tc.want)
			}
		})
	}
	for _, reason := range []string{policies.ReasonStepUpRequired, "account_locked", policies.ReasonBadCredentials} {
		if passwordReason(reason) {
			t.Errorf("%s is taken for a refusal of the new password", reason)
		}
	}
}
