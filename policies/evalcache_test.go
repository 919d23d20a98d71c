package policies

import (
	"reflect"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// TestSharedCachesDecideAsOPA checks that evaluating with the revision's
// data cache and constants answers as OPA's own per-evaluation caches do,
// for every point and a spread of inputs.
func TestSharedCachesDecideAsOPA(t *testing.T) {
	e := newEngine(t, Config{})
	set := e.current.Load()
	var inputs []Input
	for _, base := range []Input{cleanLogin(), vpnLogin(), fullInput(), accessInput("/transfers/new", testNow.Unix()-60)} {
		for _, ok := range []bool{true, false} {
			in := base
			in.Attempt = PasswordAttempt(ok)
			in.Account.Locked = !ok
			inputs = append(inputs, in)
		}
	}
	for _, p := range Points() {
		for i, in := range inputs {
			in.Point = p
			e.complete(set, &in)
			got, gotErr := set.eval(t.Context(), set.queries[p], in.value(), nil)
			rs, err := set.queries[p].Eval(t.Context(), rego.EvalParsedInput(in.value()))
			if err != nil {
				t.Fatal(err)
			}
			v, err := ast.InterfaceToValue(rs[0].Expressions[0].Value)
			if err != nil {
				t.Fatal(err)
			}
			want, wantErr := decisionFromValue(v)
			want.Revision = set.revision
			if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%s input %d: got %+v (%v), OPA alone %+v (%v)", p, i, got, gotErr, want, wantErr)
			}
		}
	}
}

func TestConstantsAreTheRulesWithoutInput(t *testing.T) {
	e := newEngine(t, Config{})
	consts := e.current.Load().consts
	for _, tc := range []struct {
		ref      string
		constant bool
	}{
		{"data.portcullis.outcome.messages", true},
		{"data.portcullis.outcome.allowed", true},
		{"data.portcullis.login_password.signed_in", true}, // from config and constants only
		{"data.portcullis.login.refusal", false},           // reads input
		{"data.portcullis.login.decision", false},
		{"data.portcullis.outcome.deny", false}, // a function
	} {
		if got := consts.get(ast.MustParseRef(tc.ref)) != nil; got != tc.constant {
			t.Errorf("%s constant = %v, want %v", tc.ref, got, tc.constant)
		}
	}
	if got := consts.get(ast.MustParseRef("data.portcullis.outcome.allowed")); got.Value.Compare(ast.MustParseTerm(`{"allow": true, "reason": "ok", "message": ""}`).Value) != 0 {
		t.Errorf("outcome.allowed = %v", got)
	}
}

func TestEvalCacheFollowsOPAsContract(t *testing.T) {
	c := newEvalCache(nil)
	a, b := ast.MustParseRef(`data.x.y`), ast.MustParseRef(`data.x.z`)
	if v, undefined := c.Get(a); v != nil || undefined {
		t.Fatalf("empty cache: %v %v", v, undefined)
	}
	c.Put(a, ast.StringTerm("one"))
	c.Put(b, nil)
	if v, _ := c.Get(ast.MustParseRef(`data.x.y`)); v == nil || v.Value.Compare(ast.String("one")) != 0 {
		t.Fatalf("Get(a) = %v", v)
	}
	if _, undefined := c.Get(b); !undefined {
		t.Fatal("b not undefined")
	}
	c.Push()
	if v, _ := c.Get(a); v != nil {
		t.Fatal("a seen in a new frame")
	}
	c.Pop()
	if v, _ := c.Get(a); v == nil {
		t.Fatal("a lost after Pop")
	}
	if keys := c.Keys(); len(keys) != 1 || !keys[0].Equal(a) {
		t.Fatalf("Keys = %v", keys)
	}
}

// TestNondeterministicRulesAreNotConstants checks the guard behind the
// capabilities: were a policy able to read the clock or randomness, its
// rule would not be frozen at load.
func TestNondeterministicRulesAreNotConstants(t *testing.T) {
	for src, want := range map[string]bool{
		`clock := time.now_ns()`:             true,
		`nested := {"at": time.now_ns()}`:    true,
		`dice := rand.intn("stamp", 10)`:     true,
		`x if { y := uuid.rfc4122("a"); y }`: true,
		`fixed := count("abc")`:              false,
		`sum := 1 + 2`:                       false,
	} {
		m := ast.MustParseModuleWithOpts("package p\n"+src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if got := callsNondeterministic(m.Rules[0]); got != want {
			t.Errorf("%s: callsNondeterministic = %v, want %v", src, got, want)
		}
	}
	for _, name := range []string{"time.now_ns", "rand.intn", "http.send", "uuid.rfc4122", "opa.runtime", "net.lookup_ip_addr"} {
		if slices.ContainsFunc(capabilities().Builtins, func(b *ast.Builtin) bool { return b.Name == name }) {
			t.Errorf("policies may call %s", name)
		}
	}
	for _, b := range capabilities().Builtins {
		if b.Nondeterministic {
			t.Errorf("policies may call nondeterministic %s", b.Name)
		}
	}
}
