package policies

import (
	"bufio"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestReasonListIsSortedAndWellFormed(t *testing.T) {
	list := Reasons()
	if len(list) == 0 {
		t.Fatal("no reasons")
	}
	for i, r := range list {
		if i > 0 && list[i-1].Code >= r.Code {
			t.Errorf("%q comes after %q: keep the list sorted and without duplicates", r.Code, list[i-1].Code)
		}
		if r.By == 0 || r.By&^(ByPolicy|ByEngine|ByGateway) != 0 {
			t.Errorf("%s: emitter %d", r.Code, r.By)
		}
		if http.StatusText(r.Status) == "" {
			t.Errorf("%s: status %d", r.Code, r.Status)
		}
		if r.Meaning == "" || strings.Contains(r.Meaning, "\n") {
			t.Errorf("%s: meaning %q is not one line", r.Code, r.Meaning)
		}
		if got, ok := LookupReason(r.Code); !ok || got != r {
			t.Errorf("LookupReason(%q) = %+v, %v", r.Code, got, ok)
		}
	}
	if r, ok := LookupReason("no_such_reason"); ok {
		t.Errorf("LookupReason found %+v", r)
	}
	list[0].Code = "changed"
	if Reasons()[0].Code == "changed" {
		t.Error("Reasons shares its slice with callers")
	}
}

// TestReasonStatuses pins the gateway's answer for each kind of refusal.
func TestReasonStatuses(t *testing.T) {
	for code, want := range map[string]int{
		ReasonBadCredentials: 401, ReasonNoSession: 401, ReasonSessionIdle: 401, ReasonSessionExpired: 401,
		ReasonIPThrottled: 429, ReasonPolicyError: 503, ReasonIPUnchecked: 503,
		"ip_anonymous_vpn": 403, "account_locked": 403, ReasonStepUpRequired: 403, ReasonDefaultDeny: 403,
		ReasonUnavailable: 503, ReasonBadRequest: 400, ReasonNotFound: 404, ReasonCrossOrigin: 403,
		ReasonCSRF: 403, ReasonBadGrant: 403, ReasonUnauthenticated: 401, ReasonUpstreamUnavailable: 502,
	} {
		if r, _ := LookupReason(code); r.Status != want {
			t.Errorf("%s: status %d, want %d", code, r.Status, want)
		}
	}
}

func TestEmitterString(t *testing.T) {
	for e, want := range map[Emitter]string{
		ByPolicy: "policy", ByEngine: "engine", ByGateway: "gateway",
		ByGateway | ByPolicy: "policy, gateway", 0: "",
	} {
		if got := e.String(); got != want {
			t.Errorf("%d: %q, want %q", e, got, want)
		}
	}
}

// scanFixture exercises every way scanReasons follows a reason.
var scanFixture = map[string]string{
	"outcome.rego": `package portcullis.outcome

messages := {"r_message_only": "m"}

deny(reason) := {"allow": false, "reason": reason, "message": object.get(messages, reason, "generic_denied")}
`,
	"point.rego": `package portcullis.point

import data.portcullis.outcome

default decision := {"allow": false, "reason": "r_default"}

table := {"r_table": 1}

codes := {"r_set_a", "r_set_b"}

helper(x) := "r_function" if x == 1 else := concat("", ["r_dyn_", x])

refusal := "r_chain" if {
	input.a
} else := reason if {
	reason := helper(input.b)
} else := picked if {
	some picked in codes
} else := min({[object.get(table, r, 9), r] | some r in codes})[1]

decision := outcome.deny(refusal) if refusal != "r_compared"

decision := outcome.deny("r_literal") if input.c

other := x if {
	reason := "r_named_variable"
	x := 1
}

unknown_refusal := input.reason
`,
}

func parseFixture(t *testing.T, files map[string]string) map[string]*ast.Module {
	t.Helper()
	modules := map[string]*ast.Module{}
	for name, src := range files {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		modules[name] = m
	}
	return modules
}

func TestScanReasonsFollowsEveryWay(t *testing.T) {
	got := scanReasons(parseFixture(t, scanFixture))
	check := func(what string, m map[string][]string, want ...string) {
		t.Helper()
		if keys := slices.Sorted(maps.Keys(m)); !slices.Equal(keys, want) {
			t.Errorf("%s: %q, want %q", what, keys, want)
		}
	}
	check("emitted", got.emitted, "r_chain", "r_default", "r_function", "r_literal", "r_named_variable", "r_set_a", "r_set_b")
	check("referenced", got.referenced, "r_compared", "r_message_only", "r_table")
	check("dynamic", got.dynamic, "r_dyn_*")
	if len(got.unresolved) != 1 || !strings.Contains(got.unresolved[0], "input.reason") {
		t.Errorf("unresolved: %q, want the unknown_refusal rule", got.unresolved)
	}
	if got.messages["r_message_only"] != "m" {
		t.Errorf("messages: %v", got.messages)
	}
	if at := got.emitted["r_literal"]; !slices.Equal(at, []string{"point.rego:23"}) {
		t.Errorf("r_literal found at %q, want point.rego:23", at)
	}
}

// shippedReasons scans the non-test modules of rego/ and expands the
// reasons they build at run time.
func shippedReasons(t *testing.T) (regoReasons, map[string][]string) {
	t.Helper()
	src, err := readSources(os.DirFS("../rego"), false)
	if err != nil {
		t.Fatal(err)
	}
	modules, data, err := src.parse()
	if err != nil {
		t.Fatal(err)
	}
	found := scanReasons(modules)
	if len(found.unresolved) > 0 {
		t.Fatalf("the scan cannot follow these reasons; teach scanReasons the construct:\n%s",
			strings.Join(found.unresolved, "\n"))
	}
	// How each run-time construction is enumerated. A new one fails here
	// until it is added.
	expand := map[string]func() []string{
		// ip.flagged: "ip_" + a GeoIP flag that anonymizer.block names.
		"ip_*": func() []string {
			config := data["portcullis"].(map[string]any)["config"].(map[string]any)
			block := config["anonymizer"].(map[string]any)["block"].(map[string]any)
			return slices.Sorted(maps.Keys(block))
		},
		// phone.line_type_refusal: "phone_" + one of named_line_types.
		"phone_*": func() []string { return ruleStrings(t, modules, "data.portcullis.phone.named_line_types") },
	}
	emitted := maps.Clone(found.emitted)
	for pattern, at := range found.dynamic {
		parts, ok := expand[pattern]
		if !ok {
			t.Fatalf("%s builds reasons %q at run time; tell shippedReasons how to enumerate them", at[0], pattern)
		}
		for _, p := range parts() {
			for _, a := range at {
				add(emitted, strings.Replace(pattern, "*", p, 1), a)
			}
		}
	}
	return found, emitted
}

// ruleStrings are the string elements of the set or array literal a rule
// is defined as.
func ruleStrings(t *testing.T, modules map[string]*ast.Module, path string) []string {
	t.Helper()
	var out []string
	for _, m := range modules {
		for _, r := range m.Rules {
			if ruleKey(m, r) != path || r.Head.Value == nil {
				continue
			}
			collect := func(e *ast.Term) {
				if s, ok := e.Value.(ast.String); ok {
					out = append(out, string(s))
				}
			}
			switch v := r.Head.Value.Value.(type) {
			case ast.Set:
				v.Foreach(collect)
			case *ast.Array:
				v.Foreach(collect)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no strings in %s", path)
	}
	slices.Sort(out)
	return out
}

func TestShippedRegoReasonsAreKnown(t *testing.T) {
	found, emitted := shippedReasons(t)

	// The scan sees each way the shipped policies make a reason.
	for _, code := range []string{
		"ok", "policy_default_deny", // "reason" in an object
		"bad_credentials", "code_expired", // outcome.deny("...")
		"account_locked", "route_not_permitted", // refusal and route_refusal chains
		"ip_unknown", "ip_unchecked", // ip.denials, through min(...)[1]
		"ip_tor_exit_node", "phone_voip", // concat, expanded
		"phone_unsupported",             // line_type_refusal's else
		"session_idle", "step_up_stale", // functions bound to a variable
		"password_too_long", "phone_invalid", // functions of other packages
	} {
		if len(emitted[code]) == 0 {
			t.Errorf("the scan did not find %s", code)
		}
	}
	for code, file := range map[string]string{
		"policy_error":          "outcome.rego",  // a key of outcome.messages
		"ip_hosting_provider":   "ip.rego",       // a key of ip.priority
		"identity_not_verified": "enrol.rego",    // refusal == "..."
		"step_up_stale":         "settings.rego", // refusal in {...}
	} {
		if !slices.ContainsFunc(found.referenced[code], func(at string) bool { return strings.HasPrefix(at, file+":") }) {
			t.Errorf("the scan did not find %s referenced in %s: %q", code, file, found.referenced[code])
		}
	}

	for code, at := range found.referenced {
		if _, ok := LookupReason(code); !ok && len(emitted[code]) == 0 {
			t.Errorf("%s: reason %q is not in policies.Reasons; add it (and a row in docs/policies.md)", strings.Join(at, ", "), code)
		}
	}
	for code, at := range emitted {
		r, ok := LookupReason(code)
		switch {
		case !ok:
			t.Errorf("%s: reason %q is not in policies.Reasons; add it (and a row in docs/policies.md)", strings.Join(at, ", "), code)
		case r.By&ByPolicy == 0:
			t.Errorf("%s: the policies emit %q, which policies.Reasons says only the %s emits", strings.Join(at, ", "), code, r.By)
		}
	}
	for _, r := range Reasons() {
		if r.By&ByPolicy != 0 && len(emitted[r.Code]) == 0 {
			t.Errorf("policies.Reasons says the policies emit %q, but no module in rego/ does: remove it or fix its emitter", r.Code)
		}
	}
}

// docRow is one row of the reason table in docs/policies.md.
type docRow struct{ by, status, message, meaning string }

func readReasonTable(t *testing.T) map[string]docRow {
	t.Helper()
	f, err := os.Open("../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const header = "| code | emitted by | status | message | meaning |"
	rows := map[string]docRow{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == header:
			in = true
			continue
		case !in:
			continue
		case !strings.HasPrefix(line, "|"):
			return rows
		case strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 5 {
			t.Fatalf("docs/policies.md: reason row with %d cells: %s", len(cells), line)
		}
		code := strings.Trim(cells[0], "`")
		if _, dup := rows[code]; dup {
			t.Errorf("docs/policies.md: %s is documented twice", code)
		}
		rows[code] = docRow{by: cells[1], status: cells[2], message: strings.Trim(cells[3], "`"), meaning: cells[4]}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !in {
		t.Fatalf("docs/policies.md has no table headed %q", header)
	}
	return rows
}

func TestReasonsAreDocumented(t *testing.T) {
	found, _ := shippedReasons(t)
	rows := readReasonTable(t)
	for _, r := range Reasons() {
		row, ok := rows[r.Code]
		if !ok {
			t.Errorf("docs/policies.md does not document reason %s", r.Code)
			continue
		}
		delete(rows, r.Code)
		message := "—"
		if m := found.messages[r.Code]; m != "" {
			message = m
		}
		if row.by != r.By.String() || row.status != strconv.Itoa(r.Status) || row.message != message || row.meaning == "" {
			t.Errorf("docs/policies.md: %s is documented as %q / %s / %q, want %q / %d / %q and a meaning",
				r.Code, row.by, row.status, row.message, r.By, r.Status, message)
		}
	}
	for code := range rows {
		t.Errorf("docs/policies.md documents %s, which policies.Reasons does not list", code)
	}
}
