package policies

import (
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func fullInput() Input {
	in := cleanLogin()
	in.Point = PointSettings
	in.Request.PathClass = "/transfers"
	in.Client.Facts = IPFacts{Checked: true, AnonymousVPN: true, PublicProxy: true, TorExitNode: true, HostingProvider: true, ResidentialProxy: true, Anonymous: true, Country: "NL"}
	in.Client.AllowListed = true
	in.Client.IPUnknown = true
	in.Client.RecentFailures = 3
	in.Account.Locked = true
	in.Account.ConsecutiveFailures = 2
	in.Session = &Session{Methods: []string{"password", "sms"}, AuthTime: 1, StepUpAt: 2, LastSeen: 3, Created: 4}
	in.Attempt = PasswordAttempt(true)
	in.Attempt.CodeOK = CodeAttempt(false).CodeOK
	in.Code = &Code{Purpose: "login", Channel: "voice", Phone: PhoneFacts{Valid: true, CallingCode: 1, LineType: "fixed_line"}, SentAt: 5, Attempts: 1, Resends: 2,
		Sends: SendCounts{User: 3, Number: 4, Address: 5, CallingCode: 600}}
	pw := &PasswordFacts{Length: 12, Classes: 3, ContainsUsername: true, ContainsName: true, Common: true, GuessesLog10: 11}
	phone := &PhoneFacts{Valid: true, Region: "GB", CallingCode: 44, LineType: "mobile", Source: "carrier", Masked: "**34"}
	in.Change = &Change{Kind: "password", NewPassword: pw, UsernameAvailable: true, Phone: phone}
	in.Enrolment = &Enrolment{Stage: "credentials", IdentityVerified: true, IdentityHasProfile: true, UsernameAvailable: true, NewPassword: pw, Consent: true, Phone: phone}
	in.Recovery = &Recovery{Kind: "password", Stage: "complete", IdentityVerified: true, QuestionsAnswered: true,
		AccountAttempts: 3, AddressAttempts: 7, VerifiedBy: "sms", NewPassword: pw}
	return in
}

// TestInputValueMatchesJSON keeps the hand-built AST input in step with
// the JSON tags, which are the documented contract.
func TestInputValueMatchesJSON(t *testing.T) {
	for name, in := range map[string]Input{
		"full":    fullInput(),
		"login":   cleanLogin(),
		"minimal": {Point: PointAccess, Account: Account{SecondFactors: []string{}, Products: []string{}}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.ValueFromReader(bytesReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if got := in.value(); got.Compare(want) != 0 {
				t.Fatalf("value() = %v\nJSON    = %v", got, want)
			}
		})
	}
}

func TestNilListsAreEmptyArrays(t *testing.T) {
	v := (&Input{}).value().(ast.Object)
	acct := v.Get(ast.StringTerm("account")).Value.(ast.Object)
	if got := acct.Get(ast.StringTerm("products")).Value; got.Compare(ast.NewArray()) != 0 {
		t.Fatalf("products = %v", got)
	}
}

func TestDecisionFromValue(t *testing.T) {
	for _, tc := range []struct {
		rego string
		ok   bool
	}{
		{`{"allow": true, "reason": "ok"}`, true},
		{`{"allow": false, "reason": "x", "notify": {"b", "a"}, "extra": [1]}`, true},
		{`{"allow": true, "reason": "ok", "lock": "yes"}`, false},
		{`{"allow": true, "reason": 1}`, false},
		{`{"allow": true, "reason": "ok", "notify": "a"}`, false},
		{`{"allow": true, "reason": "ok", "code_ttl_seconds": "60"}`, false},
		{`{"allow": true, "reason": "ok", "device_lifetime_seconds": 15552000}`, true},
		{`{"allow": true, "reason": "ok", "device_lifetime_seconds": "15552000"}`, false},
		{`{"allow": true, "reason": "ok", "device_lifetime_seconds": 1.5}`, false},
		{`{"allow": true, "reason": "ok", 1: 2}`, true},
		{`["allow"]`, false},
	} {
		d, err := decisionFromValue(ast.MustParseTerm(tc.rego).Value)
		if (err == nil) != tc.ok {
			t.Errorf("%s: got %+v, %v", tc.rego, d, err)
		}
	}
	if d, _ := decisionFromValue(ast.MustParseTerm(`{"allow": true, "reason": "ok", "device_lifetime_seconds": 86400}`).Value); d.DeviceLifetimeSeconds != 86400 {
		t.Errorf("device_lifetime_seconds not read: %+v", d)
	}
	d, _ := decisionFromValue(ast.MustParseTerm(`{"allow": false, "reason": "x", "notify": {"b", "a"}}`).Value)
	if len(d.Notify) != 2 || d.Notify[0] != "a" {
		t.Errorf("set not sorted: %v", d.Notify)
	}
}
