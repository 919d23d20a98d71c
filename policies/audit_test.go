package policies

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shippedFacts are the gateway's facts as cmd/portcullis passes them.
var shippedFacts = AuditFacts{CodeDigits: 6}

// editData changes dir/data.json through edit, on the decoded document.
func editData(t *testing.T, dir string, edit func(portcullis map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc["portcullis"].(map[string]any))
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "data.json", string(b))
}

// deviations is data.portcullis.standards.deviations of a decoded data.json.
func deviations(portcullis map[string]any) map[string]any {
	return portcullis["standards"].(map[string]any)["deviations"].(map[string]any)
}

// setting is data.portcullis.config.<path> of a decoded data.json, as an
// object.
func setting(portcullis map[string]any, path ...string) map[string]any {
	m := portcullis["config"].(map[string]any)
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

func audit(t *testing.T, cfg Config, facts AuditFacts) *AuditReport {
	t.Helper()
	e, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Audit(t.Context(), facts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rowOf(t *testing.T, r *AuditReport, control string) AuditRow {
	t.Helper()
	for _, row := range r.Rows {
		if row.Control == control {
			return row
		}
	}
	t.Fatalf("no row for %s", control)
	return AuditRow{}
}

// byStatus lists the controls of r with status s.
func byStatus(r *AuditReport, s AuditStatus) []string {
	var out []string
	for _, row := range r.Rows {
		if row.Status == s {
			out = append(out, row.Control)
		}
	}
	slices.Sort(out)
	return out
}

func TestAuditShippedPolicy(t *testing.T) {
	r := audit(t, Config{}, shippedFacts)
	if got, want := byStatus(r, AuditDeviation), []string{"code_lifetime", "knowledge_questions", "pstn_codes", "remembered_devices"}; !slices.Equal(got, want) {
		t.Errorf("justified deviations: got %v, want %v", got, want)
	}
	if got := byStatus(r, AuditUnjustified); len(got) != 0 {
		t.Errorf("unjustified deviations: got %v, want none", got)
	}
	// Wrong step-up answers are capped in a row, over every window.
	if row := rowOf(t, r, "step_up_failure_limit"); row.Status != AuditPass {
		t.Errorf("step_up_failure_limit: %s %q", row.Status, row.Value)
	}
	if r.Summary != (AuditSummary{Pass: len(controls) - 4, Deviation: 4}) {
		t.Errorf("summary %+v", r.Summary)
	}
	if r.Revision == "" || r.Source != "embedded" || len(r.Rows) != len(controls) {
		t.Errorf("report header: revision %q source %q, %d rows", r.Revision, r.Source, len(r.Rows))
	}
	for _, row := range r.Rows {
		if row.Status == AuditDeviation && (row.Justification == nil || row.Justification.Justification == "" ||
			row.Justification.ApprovedBy == "" || row.Justification.Date == "") {
			t.Errorf("%s: deviation without a complete justification: %+v", row.Control, row.Justification)
		}
		if row.Status == AuditPass && row.Justification != nil {
			t.Errorf("%s passes but carries a justification", row.Control)
		}
		if len(row.Requirements) == 0 || row.Value == "" || len(row.Settings) == 0 {
			t.Errorf("%s: incomplete row %+v", row.Control, row)
		}
		nist, owasp := false, false
		for _, req := range row.Requirements {
			nist = nist || req.Standard == StandardNIST
			owasp = owasp || req.Standard == StandardASVS
		}
		if !nist || !owasp {
			t.Errorf("%s: want a requirement of each standard, got %+v", row.Control, row.Requirements)
		}
	}
	// Values are read from the policy, not restated.
	for control, want := range map[string]string{
		"code_lifetime":    "1200 s (20 min)",
		"code_entropy":     "6 random digits (19.9 bits)",
		"code_attempts":    "5 tries per code",
		"password_lockout": "after 5 wrong passwords",
		"step_up_failure_limit": "locks after 10 wrong answers in a row, over all codes, logins and windows; " +
			"throttled to 10 per account per 3600 s (1 h) window",
		"password_min_length": "12 characters",
		"password_max_length": "64 characters",
		"session_idle":        "900 s (15 min)",
		"session_max":         "43200 s (12 h)",
		"remembered_devices":  "180 days",
		"pstn_codes":          "login step-up, settings, sensitive paths, password recovery, username recovery",
		"knowledge_questions": "login step-up",
		"settings_step_up":    "600 s (10 min)",
	} {
		if v := rowOf(t, r, control).Value; !strings.Contains(v, want) {
			t.Errorf("%s: value %q lacks %q", control, v, want)
		}
	}
	// 12 characters is below the single-factor 15 but passes as the
	// password is always followed by a step-up on an unknown device.
	if row := rowOf(t, r, "password_min_length"); !strings.Contains(row.Note, "multi-factor") {
		t.Errorf("password_min_length note: %q", row.Note)
	}
}

func TestAuditCandidatePolicies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(t *testing.T, dir string)
		control string
		want    AuditStatus
		value   string
	}{
		{"lockout raised to 200", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"max_consecutive_failures": 5`, `"max_consecutive_failures": 200`)
		}, "password_lockout", AuditUnjustified, "200"},
		{"lockout at the bound of 100", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"max_consecutive_failures": 5`, `"max_consecutive_failures": 100`)
		}, "password_lockout", AuditPass, "100"},
		{"step-up cap at the bound of 100", func(t *testing.T, dir string) {
			editData(t, dir, func(p map[string]any) { setting(p, "step_up")["max_consecutive_failures"] = 100 })
		}, "step_up_failure_limit", AuditPass, "after 100 wrong answers in a row"},
		{"step-up cap of one", func(t *testing.T, dir string) {
			editData(t, dir, func(p map[string]any) { setting(p, "step_up")["max_consecutive_failures"] = 1 })
		}, "step_up_failure_limit", AuditPass, "after 1 wrong answers in a row"},
		{"60-minute codes without a justification", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"ttl_seconds": 1200`, `"ttl_seconds": 3600`)
			editData(t, dir, func(p map[string]any) { delete(deviations(p), "code_lifetime") })
		}, "code_lifetime", AuditUnjustified, "3600 s (1 h)"},
		{"60-minute codes with the justification", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"ttl_seconds": 1200`, `"ttl_seconds": 3600`)
		}, "code_lifetime", AuditDeviation, "3600 s (1 h)"},
		{"10-minute codes", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"ttl_seconds": 1200`, `"ttl_seconds": 600`)
		}, "code_lifetime", AuditPass, "600 s (10 min)"},
		{"password alone signs in", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"allow_without_second_factor": false`, `"allow_without_second_factor": true`)
		}, "password_min_length", AuditUnjustified, "12 characters"},
		{"password alone with 15 characters", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"allow_without_second_factor": false`, `"allow_without_second_factor": true`)
			editData(t, dir, func(p map[string]any) { setting(p, "passwords")["min_length"] = 15 })
		}, "password_min_length", AuditPass, "15 characters"},
		{"maximum below 64", func(t *testing.T, dir string) {
			editData(t, dir, func(p map[string]any) { setting(p, "passwords")["max_length"] = 32 })
		}, "password_max_length", AuditUnjustified, "32 characters"},
		{"a composition rule", func(t *testing.T, dir string) {
			editFile(t, dir, "password.rego", `} else := "password_common" if {`,
				"} else := \"password_simple\" if {\n\tfacts.classes < 3\n} else := \"password_common\" if {")
		}, "password_composition", AuditUnjustified, "password_simple"},
		{"no blocklist", func(t *testing.T, dir string) {
			editFile(t, dir, "password.rego", "facts.common == true", `facts.common == "listed"`)
		}, "password_blocklist", AuditUnjustified, "common or breached: allowed"},
		{"no device skips the step-up", func(t *testing.T, dir string) {
			editFile(t, dir, "stepup.rego", "input.device.recognised == true", "input.device.recognised == false")
		}, "remembered_devices", AuditPass, "every login step-up"},
		{"questions nowhere", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"passkey", "questions", "email"]`, `"passkey", "email"]`)
		}, "knowledge_questions", AuditPass, "not used"},
		{"phone codes only", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"methods": ["sms", "voice", "totp", "passkey", "questions", "email"]`, `"methods": ["sms", "voice"]`)
		}, "pstn_alternatives", AuditUnjustified, "without an authenticator app"},
		{"a long idle limit on one route", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"routes": {}`, `"routes": {"brokerage": {"sensitive_prefixes": [], "session_idle_seconds": 7200}}`)
		}, "session_idle", AuditUnjustified, "7200 s (2 h) (route brokerage)"},
		{"sessions of two days", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"max_seconds": 43200`, `"max_seconds": 172800`)
		}, "session_max", AuditUnjustified, "172800 s (2 days)"},
		{"a settings step-up of a day", func(t *testing.T, dir string) {
			editFile(t, dir, "data.json", `"step_up_window_seconds": 600,
        "step_up_methods": ["sms", "voice", "totp", "passkey"],
        "changes"`, `"step_up_window_seconds": 86400,
        "step_up_methods": ["sms", "voice", "totp", "passkey"],
        "changes"`)
		}, "settings_step_up", AuditUnjustified, "86400 s (1 day)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := policyDir(t)
			tc.edit(t, dir)
			r := audit(t, Config{Dir: dir}, shippedFacts)
			row := rowOf(t, r, tc.control)
			if row.Status != tc.want || !strings.Contains(row.Value, tc.value) {
				t.Fatalf("%s: got %s %q, want %s with %q (note %q)", tc.control, row.Status, row.Value, tc.want, tc.value, row.Note)
			}
			if r.Source != dir {
				t.Errorf("source %q, want %q", r.Source, dir)
			}
		})
	}
}

func TestAuditCodeLength(t *testing.T) {
	e := newEngine(t, Config{})
	if _, err := e.Audit(t.Context(), AuditFacts{}); err == nil {
		t.Fatal("an audit without the code length succeeded")
	}
	r, err := e.Audit(t.Context(), AuditFacts{CodeDigits: 4})
	if err != nil {
		t.Fatal(err)
	}
	if row := rowOf(t, r, "code_entropy"); row.Status != AuditUnjustified || !strings.Contains(row.Value, "13.3 bits") {
		t.Fatalf("4-digit codes: %+v", row)
	}
}

func TestLoadRejectsMalformedDeviations(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(d map[string]any)
	}{
		{"unknown control", func(d map[string]any) { d["code_lifetimes"] = d["code_lifetime"] }},
		{"no approver", func(d map[string]any) { delete(d["code_lifetime"].(map[string]any), "approved_by") }},
		{"empty justification", func(d map[string]any) { d["code_lifetime"].(map[string]any)["justification"] = " " }},
		{"date not ISO", func(d map[string]any) { d["code_lifetime"].(map[string]any)["date"] = "12/03/2026" }},
		{"unknown field", func(d map[string]any) { d["code_lifetime"].(map[string]any)["expires"] = "2027-01-01" }},
		{"not an object", func(d map[string]any) { d["code_lifetime"] = "approved" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := policyDir(t)
			editData(t, dir, func(p map[string]any) { tc.edit(deviations(p)) })
			if _, err := New(t.Context(), Config{Dir: dir}); err == nil {
				t.Fatal("New accepted the deviations")
			} else if !strings.Contains(err.Error(), "data.portcullis.standards") {
				t.Fatalf("error does not name the data: %v", err)
			}
		})
	}
	// No deviations at all is fine: every deviation is then unjustified.
	dir := policyDir(t)
	editData(t, dir, func(p map[string]any) { delete(p, "standards") })
	r := audit(t, Config{Dir: dir}, shippedFacts)
	if r.Summary.Deviation != 0 || r.Summary.Unjustified != 4 {
		t.Fatalf("without deviations: %+v", r.Summary)
	}
}

func TestAuditFormats(t *testing.T) {
	// One control without a justification, so every status shows.
	dir := policyDir(t)
	editFile(t, dir, "data.json", `"max_consecutive_failures": 5`, `"max_consecutive_failures": 200`)
	r := audit(t, Config{Dir: dir}, shippedFacts)
	justification := rowOf(t, r, "code_lifetime").Justification.Justification

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(text.String(), "\n")
	header := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "STATUS") })
	if header < 0 {
		t.Fatalf("text has no table:\n%s", text.String())
	}
	// The table is aligned: every row's value starts in the header's
	// VALUE column.
	col := strings.Index(lines[header], "VALUE")
	for _, l := range lines[header+1 : header+1+len(r.Rows)] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row not aligned with VALUE at %d: %q", col, l)
		}
	}
	for _, want := range []string{
		"deviation    code_lifetime", "unjustified  password_lockout", "pass         step_up_failure_limit", "SP 800-63B §3.1.3.2; ASVS 5.0 V6.5.5",
		justification, "NO JUSTIFICATION: add data.portcullis.standards.deviations.password_lockout",
		"11 pass, 4 deviation, 1 unjustified",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}

	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, l := range strings.Split(md.String(), "\n") {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| Control") {
			rows++
			if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != 6 {
				t.Errorf("markdown row with %d separators: %s", n, l)
			}
		}
	}
	if rows != len(r.Rows) {
		t.Errorf("markdown has %d rows, want %d", rows, len(r.Rows))
	}
	for _, want := range []string{
		"| Control | Requirement | Configured value | Result | Justification or note |",
		"**SP 800-63B §3.1.3.2**: an out-of-band authentication is invalid unless completed within 10 minutes",
		"**deviation** (justified)", "**deviation — no justification**", justification,
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		PolicyRevision string   `json:"policy_revision"`
		Source         string   `json:"source"`
		Standards      []string `json:"standards"`
		Controls       []struct {
			Control      string `json:"control"`
			Status       string `json:"status"`
			Value        string `json:"value"`
			Requirements []struct {
				Standard, Section, Text string
			} `json:"requirements"`
			Justification *struct {
				Justification string `json:"justification"`
				ApprovedBy    string `json:"approved_by"`
				Date          string `json:"date"`
			} `json:"justification"`
		} `json:"controls"`
		Summary map[string]int `json:"summary"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.PolicyRevision != r.Revision || len(doc.Controls) != len(r.Rows) || doc.Summary["deviation"] != 4 || doc.Summary["unjustified"] != 1 {
		t.Fatalf("JSON: %+v", doc)
	}
	first := doc.Controls[0]
	if first.Control != "code_lifetime" || first.Status != "deviation" || first.Justification == nil ||
		first.Justification.ApprovedBy == "" || first.Requirements[0].Section != "3.1.3.2" {
		t.Fatalf("JSON code_lifetime: %+v", first)
	}
	if strings.Contains(js.String(), `\u00`) {
		t.Errorf("JSON escapes text: %s", js.String())
	}
}
