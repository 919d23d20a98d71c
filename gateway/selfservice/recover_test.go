package selfservice

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// The identity counters of enrolment keep their keys: an HMAC of the
// normalised identity, never the identity.
func TestIdentityKeysKeepTheirForm(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := &Room{Deps: Deps{IdentityKey: key}}
	id := Identity{LastName: " RIVERA ", TaxIDLast4: "1234", DateOfBirth: "1980-07-04"}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("portcullis enrolment identity v1\x00rivera\x001234\x001980-07-04"))
	if got, want := s.identityKey(id), "enrol-identity:"+hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("identityKey = %s, want %s", got, want)
	}
	account := s.recoveryAccount(recoverUsername, id, "")
	if strings.Contains(account, "1234") || strings.Contains(account, "1980") || strings.Contains(account, "rivera") {
		t.Errorf("a recovery account key holds the identity: %s", account)
	}
	if account == s.recoveryAccount(recoverUsername, Identity{LastName: "Rivera", TaxIDLast4: "1235", DateOfBirth: "1980-07-04"}, "") {
		t.Error("two identities share an account key")
	}
	if s.recoveryAccount(recoverPassword, Identity{}, "rivera.m") == s.recoveryAccount(recoverPassword, Identity{}, "rivera.n") {
		t.Error("two usernames share an account key")
	}
	if k := s.recoveryAccount(recoverPassword, Identity{}, "rivera.m"); strings.Contains(k, "rivera") {
		t.Errorf("a recovery account key holds the username: %s", k)
	}
}

func TestRecoveryFormRead(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	full := RecoveryForm{LastName: " Rivera ", Username: " Rivera.M ", TaxIDLast4: "1234", DateOfBirth: "07/04/1980"}
	for _, tc := range []struct {
		name      string
		kind      string
		questions bool
		form      RecoveryForm
		field     string
		id        Identity
		username  string
	}{
		{"username", recoverUsername, true, full, "", Identity{LastName: "Rivera", TaxIDLast4: "1234", DateOfBirth: "1980-07-04"}, ""},
		{"password with questions", recoverPassword, true, full, "",
			Identity{LastName: "Rivera", TaxIDLast4: "1234", DateOfBirth: "1980-07-04"}, "rivera.m"},
		{"password without questions", recoverPassword, false, RecoveryForm{LastName: "Rivera", Username: "rivera.m"}, "",
			Identity{LastName: "Rivera"}, "rivera.m"},
		{"no last name", recoverUsername, true, RecoveryForm{TaxIDLast4: "1234", DateOfBirth: "07/04/1980"}, "last_name", Identity{}, ""},
		{"a date with dashes", recoverUsername, true, RecoveryForm{LastName: "Rivera", TaxIDLast4: "1234", DateOfBirth: "07-04-1980"},
			"date_of_birth", Identity{}, ""},
		{"five digits", recoverPassword, true, RecoveryForm{LastName: "Rivera", Username: "rivera.m", TaxIDLast4: "12345", DateOfBirth: "07/04/1980"},
			"tax_id_last4", Identity{}, ""},
		{"no username", recoverPassword, false, RecoveryForm{LastName: "Rivera"}, "username", Identity{}, ""},
		{"an invalid username", recoverPassword, false, RecoveryForm{LastName: "Rivera", Username: "a b"}, "username", Identity{}, ""},
		{"questions missing", recoverPassword, true, RecoveryForm{LastName: "Rivera", Username: "rivera.m"}, "tax_id_last4", Identity{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, username, err := tc.form.read(tc.kind, tc.questions, now)
			var fe *FieldError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
				t.Fatalf("error %v, want a refusal of %s", err, tc.field)
			case id != tc.id || username != tc.username:
				t.Fatalf("read %+v %q, want %+v %q", id, username, tc.id, tc.username)
			}
		})
	}
	if _, _, err := (RecoveryForm{LastName: "Rivera", TaxIDLast4: "1234", DateOfBirth: "7/4/1980"}).read(recoverUsername, true, now); err == nil ||
		!strings.Contains(err.(*FieldError).Refusal.Message, MsgDateFormat) {
		t.Errorf("a date of birth without its zeros: %v", err)
	}
}

func TestRecoveryChoices(t *testing.T) {
	got := recoveryChoices([]string{"sms", "email", "totp", "voice"}, resendLabels)
	if len(got) != 2 || got[0].Value != "sms" || got[1].Value != "voice" || got[0].Label != "Text me a new code" {
		t.Errorf("resend buttons %+v", got)
	}
	if got := recoveryChoices([]string{"email"}, methodLabels); len(got) != 1 || got[0].Label != "Email me my username" {
		t.Errorf("method buttons %+v", got)
	}
}
