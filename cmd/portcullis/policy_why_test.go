package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	opacompile "github.com/open-policy-agent/opa/v1/compile"

	"github.com/portcullis/portcullis/policies"
)

// regoLine is the line of rego/file where rule's head is written.
func regoLine(t *testing.T, dir, file, rule string) int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.HasPrefix(sc.Text(), rule+" ") {
			return n
		}
	}
	t.Fatalf("%s has no rule %s", file, rule)
	return 0
}

// exitStatus runs the command and returns its output and the status main
// would exit with.
func exitStatus(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, nil, &stdout, &stderr)
	status := 0
	switch xe, ok := errors.AsType[*exitError](err); {
	case ok:
		status = xe.status
	case errors.Is(err, flag.ErrHelp):
		status = 2
	case err != nil:
		status = 1
	}
	if err != nil {
		stderr.WriteString(err.Error())
	}
	return stdout.String(), stderr.String(), status
}

func TestPolicyEvalExplain(t *testing.T) {
	input := "../../testdata/policies/vpn_login.json"
	out, errs, status := exitStatus(t, "policy", "eval", "--explain", "--point", "login", "--input", input)
	if status != 0 {
		t.Fatalf("status %d: %s", status, errs)
	}
	want := fmt.Sprintf("data.portcullis.ip.denial = \"ip_anonymous_vpn\"  (rego/ip.rego:%d)", regoLine(t, "../../rego", "ip.rego", "denial"))
	if !strings.Contains(out, "decision: deny ip_anonymous_vpn") || !strings.Contains(out, want) ||
		!strings.Contains(out, "input.client.facts.checked = true") || !strings.Contains(out, "  data.portcullis.login.decision = ") {
		t.Fatalf("want %q in:\n%s", want, out)
	}

	// A directory whose ip.rego has the rule further down.
	dir := candidateDir(t, nil)
	path := filepath.Join(dir, "ip.rego")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("\ndenial "), []byte("\n# moved\n# down\ndenial "), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, status = exitStatus(t, "policy", "eval", "--explain", "--format", "json", "--dir", dir, "--point", "login", "--input", input)
	if status != 0 {
		t.Fatalf("status %d: %s", status, errs)
	}
	var x policies.Explanation
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var found bool
	for _, s := range x.Chain {
		if s.Rule == "data.portcullis.ip.denial" {
			found = true
			if s.File != path || s.Line != regoLine(t, dir, "ip.rego", "denial") {
				t.Errorf("denial at %s:%d, want %s:%d", s.File, s.Line, path, regoLine(t, dir, "ip.rego", "denial"))
			}
		}
	}
	if !found || x.Decision.Reason != "ip_anonymous_vpn" || x.Point != policies.PointLogin {
		t.Fatalf("explanation %+v", x)
	}

	// An unsigned bundle of the same directory, as `opa build -b` makes it.
	var bundleOut bytes.Buffer
	build := opacompile.New().WithAsBundle(true).WithRegoVersion(ast.RegoV1).WithPaths(dir).WithOutput(&bundleOut)
	if err := build.Build(t.Context()); err != nil {
		t.Fatal(err)
	}
	bundleFile := filepath.Join(t.TempDir(), "bundle.tar.gz")
	writeFile(t, bundleFile, bundleOut.String())
	out, errs, status = exitStatus(t, "policy", "eval", "--explain", "--bundle", bundleFile, "--bundle-unsigned", "--point", "login", "--input", input)
	if status != 0 {
		t.Fatalf("bundle: status %d: %s", status, errs)
	}
	wantBundle := fmt.Sprintf("data.portcullis.ip.denial = \"ip_anonymous_vpn\"  (%s:%d)", strings.TrimPrefix(filepath.ToSlash(path), "/"), regoLine(t, dir, "ip.rego", "denial"))
	if !strings.Contains(out, wantBundle) {
		t.Errorf("bundle: want %q in:\n%s", wantBundle, out)
	}
	for name, args := range map[string][]string{
		"dir and bundle":           {"--dir", dir, "--bundle", "b.tar.gz"},
		"key without bundle":       {"--bundle-key", "k.pem"},
		"unsigned bundle, no flag": {"--bundle", "../../testdata/none.tar.gz"},
		"unknown format":           {"--format", "yaml"},
	} {
		args := append([]string{"policy", "eval", "--explain", "--point", "login", "--input", input}, args...)
		if _, _, status := exitStatus(t, args...); status == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

// whyDecision is the first decision for reason in the log recordReplayLog
// wrote, and its point: early enough to be in a rotated file.
func whyDecision(t *testing.T, rec loggedInputs, reason string) (policies.Decision, string) {
	t.Helper()
	for i, d := range rec.ds {
		if d.Reason == reason {
			return d, string(rec.ins[i].Point)
		}
	}
	t.Fatalf("no %s decision logged", reason)
	return policies.Decision{}, ""
}

func TestPolicyWhy(t *testing.T) {
	rec := recordReplayLog(t)
	live := rec.files[len(rec.files)-1] // the log's name; why finds the rotations
	d, point := whyDecision(t, rec, "bad_credentials")
	out, errs, status := exitStatus(t, "policy", "why", "--log", live, "--id", d.DecisionID)
	if status != 0 {
		t.Fatalf("status %d: %s", status, errs)
	}
	for _, want := range []string{
		"decision " + d.DecisionID + " (" + live + ".",
		"point:  " + point,
		"policy: " + d.Revision,
		"result: deny bad_credentials",
		"input facts:",
		"account: ",
		"the same result: deny bad_credentials",
		"the same policy revision as logged",
		"data.portcullis." + point + ".decision = ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}

	// A candidate that locks after two: a different result, another revision.
	dir := candidateDir(t, func(cfg map[string]any) {
		cfg["lockout"].(map[string]any)["max_consecutive_failures"] = 2
	})
	var id string
	for i, in := range rec.ins {
		if in.Point == policies.PointLoginPassword && in.Attempt != nil && in.Attempt.PasswordOK != nil && !*in.Attempt.PasswordOK &&
			in.Account.Exists && !in.Account.Locked && in.Account.ConsecutiveFailures == 1 && rec.ds[i].Reason == "bad_credentials" {
			id = rec.ds[i].DecisionID
			break
		}
	}
	if id == "" {
		t.Fatal("no second wrong password logged")
	}
	out, _, status = exitStatus(t, "policy", "why", "--log", live, "--id", id, "--dir", dir, "--format", "json")
	if status != 1 {
		t.Fatalf("status %d, want 1 for a changed result\n%s", status, out)
	}
	var r policies.WhyReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r.SameResult || r.SameRevision || !r.Now.Decision.Lock || r.Logged.DecisionID != id {
		t.Errorf("report %+v", r)
	}
	out, _, _ = exitStatus(t, "policy", "why", "--log", live, "--id", id, "--dir", dir)
	if !strings.Contains(out, `a different result, in lock, notify: now deny bad_credentials {"allow":false,"reason":"bad_credentials","lock":true,"notify":["account_locked"]}`) ||
		!strings.Contains(out, `logged deny bad_credentials {"allow":false,"reason":"bad_credentials"}`) ||
		!strings.Contains(out, "a different policy revision: logged "+d.Revision) {
		t.Errorf("text report:\n%s", out)
	}

	if _, errs, status := exitStatus(t, "policy", "why", "--log", live, "--id", "00000000-0000-4000-8000-000000000000"); status != 2 ||
		!strings.Contains(errs, "no decision with that ID") {
		t.Errorf("unknown ID: status %d, %s", status, errs)
	}
	if _, _, status := exitStatus(t, "policy", "why", "--id", id); status != 2 {
		t.Errorf("no log: status %d", status)
	}
	if _, _, status := exitStatus(t, "policy", "why", "--log", filepath.Join(t.TempDir(), "none"), "--id", id); status != 2 {
		t.Errorf("missing log: status %d", status)
	}
}
