package policies

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"reflect"
	"regexp"
	"testing"
	"testing/quick"
)

// awkwardStrings are strings whose JSON encoding has a special case.
var awkwardStrings = []string{
	"", "<script>&</script>", "\u2028", "a\u2029b", "\x00\x1f\x7f", "\xff\xfe",
	`"quoted\`, "\b\f\n\r\t", "caf\u00e9 \U0001f600", "\xe2\x80", "\xed\xa0\x80",
	"\U0010ffff", "trailing\xc3",
}

// decisionTestInput is a login from a clean address by a known account,
// the base each case in TestDecisionLineJSON changes.
func decisionTestInput(p Point) Input {
	return Input{
		Point:  p,
		Now:    1767225600,
		Client: Client{IP: "203.0.113.7", Facts: IPFacts{Checked: true, Country: "GB"}, RecentFailures: 1},
		Device: Device{Recognised: true, RegisteredAt: 1767000000},
		Account: Account{
			Exists:        true,
			SecondFactors: []string{"sms", "totp"},
			SecurityPhone: &PhoneFacts{Valid: true, Region: "GB", CallingCode: 44, LineType: "mobile", Source: "prefix", Masked: "+** **** ****23"},
			EmailOnFile:   true,
			Products:      []string{"savings", "cards"},
		},
		Request: Request{Host: "login.example.com", Path: "/login", Method: "POST"},
	}
}

func decisionTestLine(in Input, d loggedResult) decisionLine {
	return decisionLine{
		DecisionID: "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b",
		Labels:     loggedLabels{ID: "9c8b7a6f-5e4d-4c3b-8a29-180f7e6d5c4b", Version: opaVersion},
		Bundles:    loggedBundles{Portcullis: loggedBundle{Revision: "0123abcd0123abcd"}},
		Path:       decisionPath(in.Point),
		Input:      redact(in),
		Result:     d,
		Timestamp:  "2026-01-01T00:00:00.123456789Z",
		Metrics:    loggedMetrics{EvalNS: 137042},
		Portcullis: loggedFormat{Format: DecisionLogFormat, Point: in.Point},
	}
}

func TestDecisionLineJSON(t *testing.T) {
	ok := loggedResult{Allow: true, Reason: "ok"}
	pw := &PasswordFacts{Length: 14, Classes: 3, GuessesLog10: 12}
	newPhone := &PhoneFacts{Valid: true, Region: "US", CallingCode: 1, LineType: "voip", Source: "carrier", Masked: "+1 555 010 0199"}
	tests := []struct {
		name string
		in   func(in *Input)
		d    loggedResult
	}{
		{"login", func(in *Input) {}, ok},
		{"login from a vpn", func(in *Input) {
			in.Client.Facts = IPFacts{Checked: true, AnonymousVPN: true, Anonymous: true}
		}, loggedResult{Reason: "ip_anonymous_vpn"}},
		{"login with unknown ip", func(in *Input) {
			in.Client = Client{IPUnknown: true}
			in.Account = Account{}
		}, loggedResult{Reason: "ip_unknown"}},
		{"login with empty lists", func(in *Input) {
			in.Account.SecondFactors = []string{}
			in.Account.Products = []string{}
			in.Account.SecurityPhone = nil
		}, ok},
		{"login_password right", func(in *Input) {
			in.Point = PointLoginPassword
			in.Attempt = PasswordAttempt(true)
		}, loggedResult{Reason: "step_up_required", StepUp: []string{"sms", "totp"}}},
		{"login_password wrong and locked", func(in *Input) {
			in.Point = PointLoginPassword
			in.Account.ConsecutiveFailures = 4
			in.Attempt = PasswordAttempt(false)
		}, loggedResult{Reason: "bad_credentials", Lock: true, Notify: []string{"account_locked"}}},
		{"send_code", func(in *Input) {
			in.Point = PointSendCode
			in.Code = &Code{Purpose: "login", Channel: "sms", Phone: *in.Account.SecurityPhone, Resends: 1,
				Sends: SendCounts{User: 2, Number: 2, Address: 5, CallingCode: 900}}
		}, ok},
		{"send_code by email", func(in *Input) {
			in.Point = PointSendCode
			in.Code = &Code{Purpose: "recover", Channel: "email"}
		}, ok},
		{"verify_code", func(in *Input) {
			in.Point = PointVerifyCode
			in.Account.RecentStepUpFailures = 2
			in.Account.ConsecutiveStepUpFailures = 7
			in.Attempt = CodeAttempt(false)
			in.Code = &Code{Purpose: "login", Channel: "voice", Phone: PhoneFacts{Valid: true, CallingCode: 44, LineType: "fixed_line", Masked: "01632 960 123"},
				SentAt: 1767225500, Attempts: 2}
		}, loggedResult{Reason: "code_wrong"}},
		{"settings password", func(in *Input) {
			in.Point = PointSettings
			in.Session = &Session{Methods: []string{"password", "sms"}, AuthTime: 1767225000, StepUpAt: 1767225100, LastSeen: 1767225590, Created: 1767225000}
			in.Change = &Change{Kind: "password", NewPassword: pw}
		}, loggedResult{Allow: true, Reason: "ok", Notify: []string{"password_changed"}}},
		{"settings phone", func(in *Input) {
			in.Point = PointSettings
			in.Session = &Session{Methods: []string{"password"}, AuthTime: 1767225000}
			in.Change = &Change{Kind: "security_phone", Phone: newPhone}
		}, loggedResult{Reason: "step_up_stale", StepUp: []string{"sms"}}},
		{"settings username", func(in *Input) {
			in.Point = PointSettings
			in.Session = &Session{}
			in.Change = &Change{Kind: "username", UsernameAvailable: true}
		}, ok},
		{"enrol identify", func(in *Input) {
			in.Point = PointEnrol
			in.Account = Account{}
			in.Enrolment = &Enrolment{Stage: "identify", IdentityVerified: true, IdentityHasProfile: true}
		}, loggedResult{Reason: "profile_exists"}},
		{"enrol credentials", func(in *Input) {
			in.Point = PointEnrol
			in.Enrolment = &Enrolment{Stage: "credentials", UsernameAvailable: true, NewPassword: &PasswordFacts{Length: 8, ContainsUsername: true, ContainsName: true, Common: true, GuessesLog10: 3}, Consent: true}
		}, loggedResult{Reason: "password_common"}},
		{"enrol phone", func(in *Input) {
			in.Point = PointEnrol
			in.Enrolment = &Enrolment{Stage: "phone", Phone: newPhone}
		}, ok},
		{"recover identify", func(in *Input) {
			in.Point = PointRecover
			in.Recovery = &Recovery{Kind: "username", Stage: "identify", IdentityVerified: true, QuestionsAnswered: true,
				AccountAttempts: 2, AddressAttempts: 9}
		}, loggedResult{Allow: true, Reason: "ok", StepUp: []string{"sms", "email"}}},
		{"recover complete", func(in *Input) {
			in.Point = PointRecover
			in.Recovery = &Recovery{Kind: "password", Stage: "complete", IdentityVerified: true, VerifiedBy: "sms", NewPassword: pw}
		}, loggedResult{Allow: true, Reason: "ok", Notify: []string{"password_changed", "account_unlocked"}}},
		{"access", func(in *Input) {
			*in = decisionAccessInput()
		}, ok},
		{"access with awkward path", func(in *Input) {
			*in = decisionAccessInput()
			in.Request.Path = "/search/<q>&x=\"1\"\u2028\xff"
			in.Request.Host = "savings.example.com:8443"
		}, loggedResult{Reason: "step_up_required", StepUp: []string{}}},
		{"zero", func(in *Input) { *in = Input{} }, loggedResult{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := decisionTestInput(PointLogin)
			tc.in(&in)
			checkDecisionLine(t, decisionTestLine(in, tc.d))
		})
	}
}

// decisionAccessInput is a typical access decision: a logged-in session
// asking for a sensitive path of an app.
func decisionAccessInput() Input {
	in := decisionTestInput(PointAccess)
	in.Request = Request{Route: "savings", Host: "savings.example.com", Path: "/transfers/new", PathClass: "/transfers", Method: "GET"}
	in.Session = &Session{Methods: []string{"password", "sms"}, AuthTime: 1767225300, StepUpAt: 1767225400, LastSeen: 1767225590, Created: 1767225300}
	return in
}

// TestDecisionLineJSONRandom compares the appender with encoding/json on
// random lines, with strings, nil and empty slices, nil pointers and zero
// numbers mixed in so every omitempty and escaping branch is taken.
func TestDecisionLineJSONRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	typ := reflect.TypeFor[decisionLine]()
	for range 5000 {
		v, ok := quick.Value(typ, rng)
		if !ok {
			t.Fatalf("quick cannot generate %v", typ)
		}
		scramble(rng, v)
		line := v.Interface().(decisionLine)
		if !checkDecisionLine(t, line) {
			return
		}
	}
}

// scramble replaces some of v's values, in place, with the ones
// testing/quick rarely or never makes: awkward or invalid UTF-8 strings,
// nil and empty slices, nil pointers, zeros.
func scramble(rng *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		switch rng.Intn(4) {
		case 0:
			v.SetString(awkwardStrings[rng.Intn(len(awkwardStrings))])
		case 1:
			b := make([]byte, rng.Intn(12))
			rng.Read(b)
			v.SetString(string(b))
		}
	case reflect.Int, reflect.Int64:
		if rng.Intn(4) == 0 {
			v.SetInt(0)
		}
	case reflect.Slice:
		switch rng.Intn(4) {
		case 0:
			v.SetZero()
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		}
		for i := range v.Len() {
			scramble(rng, v.Index(i))
		}
	case reflect.Pointer:
		if rng.Intn(3) == 0 {
			v.SetZero()
		} else if !v.IsNil() {
			scramble(rng, v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			scramble(rng, v.Field(i))
		}
	}
}

func checkDecisionLine(t *testing.T, line decisionLine) bool {
	t.Helper()
	want, err := json.Marshal(line)
	if err != nil {
		t.Fatal(err)
	}
	if got := line.appendJSON(nil); !bytes.Equal(got, want) {
		t.Errorf("appendJSON differs from json.Marshal\n got: %s\nwant: %s", got, want)
		return false
	}
	return true
}

func BenchmarkDecisionLine(b *testing.B) {
	line := decisionTestLine(decisionAccessInput(), loggedResult{Allow: true, Reason: "ok"})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(line); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = line.appendJSON(buf[:0])
		}
	})
}

// TestDecisionLineShape pins the field names that readers of OPA's
// decision logs rely on, and the namespaced format version.
func TestDecisionLineShape(t *testing.T) {
	line := decisionTestLine(decisionTestInput(PointLoginPassword), loggedResult{Reason: "bad_credentials", Lock: true})
	var got map[string]any
	if err := json.Unmarshal(line.appendJSON(nil), &got); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		want any
	}{
		{"decision_id", "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b"},
		{"path", "portcullis/login_password/decision"},
		{"timestamp", "2026-01-01T00:00:00.123456789Z"},
		{"bundles", map[string]any{"portcullis": map[string]any{"revision": "0123abcd0123abcd"}}},
		{"metrics", map[string]any{"timer_rego_query_eval_ns": float64(137042)}},
		{"portcullis", map[string]any{"format": float64(1), "point": "login_password"}},
		{"result", map[string]any{"allow": false, "reason": "bad_credentials", "lock": true}},
	} {
		if !reflect.DeepEqual(got[tc.key], tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.key, got[tc.key], tc.want)
		}
	}
	if in, ok := got["input"].(map[string]any); !ok || in["point"] != "login_password" {
		t.Errorf("input = %#v", got["input"])
	}
}

func TestNewDecisionID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := newDecisionID()
		if !uuid.MatchString(id) {
			t.Fatalf("decision ID %q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("decision ID %q repeated", id)
		}
		seen[id] = true
	}
}
