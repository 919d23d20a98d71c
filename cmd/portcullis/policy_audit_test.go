package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// candidatePolicy copies the shipped policies to a directory and replaces,
// in data.json, each old of edits with the new that follows it.
func candidatePolicy(t *testing.T, edits ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../rego")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(data, edits[i]) {
			t.Fatalf("data.json lacks %q", edits[i])
		}
		data = strings.Replace(data, edits[i], edits[i+1], 1)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPolicyAudit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string // "" for success
		want    []string
	}{
		{"text", []string{"policy", "audit"}, "", []string{
			"STATUS", "deviation  code_lifetime", "deviation  pstn_codes", "deviation  knowledge_questions",
			"deviation  remembered_devices", "pass       step_up_failure_limit", "pass       password_min_length",
			"locks after 10 wrong answers in a row", "SP 800-63B §3.1.3.2; ASVS 5.0 V6.5.5", "12 pass, 4 deviation, 0 unjustified",
		}},
		{"markdown", []string{"policy", "audit", "--format", "markdown"}, "", []string{
			"| Control | Requirement | Configured value | Result | Justification or note |",
			"**deviation** (justified)", "Head of Information Security",
		}},
		{"strict passes the shipped policy", []string{"policy", "audit", "--strict"}, "",
			[]string{"pass       step_up_failure_limit", "12 pass, 4 deviation, 0 unjustified"}},
		{"a candidate locking after 200 failures", []string{"policy", "audit", "--strict", "--dir", candidatePolicy(t,
			`"max_consecutive_failures": 5`, `"max_consecutive_failures": 200`)},
			"1 control deviates without a justification", []string{"unjustified  password_lockout", "locks after 200 wrong passwords"}},
		{"a candidate capping step-up answers at 100", []string{"policy", "audit", "--strict", "--dir", candidatePolicy(t,
			`"max_consecutive_failures": 10`, `"max_consecutive_failures": 100`)},
			"", []string{"pass       step_up_failure_limit", "locks after 100 wrong answers in a row"}},
		// The code_lifetime justification, moved to another control, leaves
		// the hour-long codes unjustified.
		{"a candidate with hour-long codes and no justification", []string{"policy", "audit", "--strict", "--dir", candidatePolicy(t,
			`"ttl_seconds": 1200`, `"ttl_seconds": 3600`, `"code_lifetime": {`, `"step_up_failure_limit": {`)},
			"1 control deviates without a justification", []string{"unjustified  code_lifetime", "3600 s (1 h)"}},
		{"every deviation justified, as JSON", []string{"policy", "audit", "--strict", "--format", "json"},
			"", []string{`"policy_revision":`, `"control": "step_up_failure_limit"`, `"unjustified": 0`}},
		{"unknown format", []string{"policy", "audit", "--format", "html"}, flag.ErrHelp.Error(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			err := run(t.Context(), tc.args, nil, &out, &errs)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("%v\n%s", err, errs.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got error %v, want %q", err, tc.wantErr)
			}
			for _, want := range tc.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}
