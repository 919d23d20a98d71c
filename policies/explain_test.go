package policies

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ruleLine finds the line of file where rule's head is written: the first
// line that starts with the rule's name followed by a space, so the tests
// follow the policy however it is edited.
func ruleLine(t *testing.T, file, rule string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.HasPrefix(sc.Text(), rule+" ") || strings.HasPrefix(sc.Text(), rule+"(") {
			return n
		}
	}
	t.Fatalf("%s has no rule %s", file, rule)
	return 0
}

func stepNamed(chain []RuleStep, rule string) (RuleStep, bool) {
	for _, s := range chain {
		if s.Rule == rule {
			return s, true
		}
	}
	return RuleStep{}, false
}

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A VPN login's explanation runs from login's decision down to the IP
// denial and the address facts it read, with each rule where the file has
// it; moving the rule in the file moves the explanation with it.
func TestExplainChainNamesRulesWhereTheyAre(t *testing.T) {
	dir := policyDir(t)
	input := readExample(t, "vpn_login")
	check := func(e *Engine) {
		t.Helper()
		x, err := e.ExplainJSON(t.Context(), "login", input)
		if err != nil {
			t.Fatal(err)
		}
		if x.Decision.Allow || x.Decision.Reason != "ip_anonymous_vpn" || x.Point != PointLogin {
			t.Fatalf("decision %+v", x.Decision)
		}
		if len(x.Chain) == 0 || x.Chain[0].Rule != "data.portcullis.login.decision" || x.Chain[0].Depth != 0 {
			t.Fatalf("chain does not start at the decision rule: %+v", x.Chain)
		}
		denial, ok := stepNamed(x.Chain, "data.portcullis.ip.denial")
		if !ok {
			t.Fatalf("no data.portcullis.ip.denial in %+v", x.Chain)
		}
		wantFile := filepath.Join(dir, "ip.rego")
		if denial.File != wantFile || denial.Line != ruleLine(t, wantFile, "denial") {
			t.Errorf("denial at %s:%d, want %s:%d", denial.File, denial.Line, wantFile, ruleLine(t, wantFile, "denial"))
		}
		if string(denial.Value) != `"ip_anonymous_vpn"` || denial.Depth < 1 {
			t.Errorf("denial step %+v", denial)
		}
		flagged, ok := stepNamed(x.Chain, "data.portcullis.ip.flagged")
		if !ok || flagged.Depth <= denial.Depth {
			t.Fatalf("flagged %+v not below denial %+v", flagged, denial)
		}
		facts := map[string]json.RawMessage{}
		for _, f := range flagged.Facts {
			facts[f.Ref] = f.Value
		}
		var clientFacts IPFacts
		if err := json.Unmarshal(facts["input.client.facts"], &clientFacts); err != nil || !clientFacts.AnonymousVPN {
			t.Errorf("flagged's facts %s: %v", facts["input.client.facts"], err)
		}
		if !strings.Contains(string(facts["data.portcullis.config.anonymizer.block"]), `"anonymous_vpn":true`) {
			t.Errorf("flagged does not show the block setting: %q", facts)
		}
	}
	e := newEngine(t, Config{Dir: dir})
	check(e)
	before := ruleLine(t, filepath.Join(dir, "ip.rego"), "denial")
	editFile(t, dir, "ip.rego", "\ndenial ", "\n# Three lines\n# moved\n# down.\ndenial ")
	if err := e.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := ruleLine(t, filepath.Join(dir, "ip.rego"), "denial"); after != before+3 {
		t.Fatalf("edit moved denial from %d to %d", before, after)
	}
	check(e)
}

// Every example input of every decision point is explained with the
// decision Decide gives, by a chain that starts at the point's decision
// rule, and every step names a rule written at the file and line it gives.
func TestExplainChainEveryExample(t *testing.T) {
	e := newEngine(t, Config{AccessCacheSize: -1})
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.expected.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	points := map[Point]bool{}
	head := regexp.MustCompile(`^(default\s+)?([a-z_][a-z0-9_]*)`)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".expected.json")
		t.Run(name, func(t *testing.T) {
			x, err := e.ExplainJSON(t.Context(), "", readExample(t, name))
			if err != nil {
				t.Fatal(err)
			}
			points[x.Point] = true
			in, err := parseExplainInput("", readExample(t, name))
			if err != nil {
				t.Fatal(err)
			}
			d := e.Decide(t.Context(), in)
			if !equalDecisions(d, x.Decision) || d.Message != x.Decision.Message {
				t.Errorf("explained %+v, decided %+v", x.Decision, d)
			}
			if len(x.Chain) == 0 || x.Chain[0].Rule != "data.portcullis."+string(x.Point)+".decision" {
				t.Fatalf("chain %+v", x.Chain)
			}
			seen := map[string]bool{}
			for _, s := range x.Chain {
				if s.Depth < 0 || s.Line < 1 || !strings.HasPrefix(s.File, "rego/") || len(s.Value) == 0 {
					t.Errorf("step %+v", s)
					continue
				}
				key := fmt.Sprintf("%s:%d %s", s.File, s.Line, s.Rule)
				if seen[key] {
					t.Errorf("rule %s at %s:%d listed twice", s.Rule, s.File, s.Line)
				}
				seen[key] = true
				checkRuleAt(t, head, s)
			}
		})
	}
	// Points no example covers: an input with nothing in it.
	for _, p := range Points() {
		if points[p] {
			continue
		}
		x, err := e.ExplainInput(t.Context(), Input{Point: p})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(x.Chain) == 0 || x.Chain[0].Rule != "data.portcullis."+string(p)+".decision" || x.Decision.Allow {
			t.Errorf("%s: %+v", p, x)
		}
		for _, s := range x.Chain {
			checkRuleAt(t, head, s)
		}
	}
}

// checkRuleAt fails unless s's file has s's rule at s's line: its head, or
// one of its else branches, below the head.
func checkRuleAt(t *testing.T, head *regexp.Regexp, s RuleStep) {
	t.Helper()
	lines := readLines(t, filepath.Join("..", s.File))
	n := s.Line - 1
	if n >= len(lines) {
		t.Errorf("%s has no line %d", s.File, s.Line)
		return
	}
	if strings.HasPrefix(strings.TrimLeft(lines[n], "} "), "else") {
		for n > 0 && (!head.MatchString(lines[n]) || strings.HasPrefix(lines[n], "else")) {
			n--
		}
	}
	m := head.FindStringSubmatch(lines[n])
	if m == nil || !strings.HasSuffix(s.Rule, "."+m[2]) {
		t.Errorf("%s:%d (rule at line %d: %q) is not rule %s", s.File, s.Line, n+1, lines[n], s.Rule)
	}
}

func readLines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

// A rule that succeeded for a caller that then failed did not lead to the
// decision and is not in the chain: a clean login's chain holds no IP
// denial, though the IP rules were evaluated.
func TestExplainChainLeavesOutRulesThatDidNotContribute(t *testing.T) {
	e := newEngine(t, Config{})
	x, err := e.ExplainJSON(t.Context(), "", readExample(t, "vpn_login"))
	if err != nil {
		t.Fatal(err)
	}
	in := cleanLogin()
	y, err := e.ExplainInput(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if !y.Decision.Allow || y.Decision.Reason != "ok" {
		t.Fatalf("clean login %+v", y.Decision)
	}
	for _, s := range y.Chain {
		if s.Rule == "data.portcullis.ip.denial" || s.Rule == "data.portcullis.ip.flagged" {
			t.Errorf("clean login's chain has %s = %s", s.Rule, s.Value)
		}
	}
	if _, ok := stepNamed(x.Chain, "data.portcullis.ip.denial"); !ok {
		t.Error("the VPN login's chain has no denial")
	}
}

// A signed bundle built from a directory explains as the directory does,
// naming the files inside the bundle.
func TestExplainChainFromABundle(t *testing.T) {
	dir := policyDir(t)
	key := newBundleKey(t)
	file := buildBundle(t, dir, &key)
	fromBundle := newEngine(t, Config{Bundle: &Bundle{Path: file, PublicKey: key.public}})
	fromDir := newEngine(t, Config{Dir: dir})
	input := readExample(t, "fifth_wrong_password")
	b, err := fromBundle.ExplainJSON(t.Context(), "", input)
	if err != nil {
		t.Fatal(err)
	}
	d, err := fromDir.ExplainJSON(t.Context(), "", input)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Chain) != len(d.Chain) || len(b.Chain) == 0 {
		t.Fatalf("bundle chain %d steps, directory %d", len(b.Chain), len(d.Chain))
	}
	for i := range b.Chain {
		bs, ds := b.Chain[i], d.Chain[i]
		if bs.Rule != ds.Rule || bs.Line != ds.Line || filepath.Join(dir, bs.File) != ds.File || string(bs.Value) != string(ds.Value) {
			t.Errorf("step %d: bundle %+v, directory %+v", i, bs, ds)
		}
	}
	lock, ok := stepNamed(b.Chain, "data.portcullis.login_password.lock")
	if !ok || string(lock.Value) != "true" {
		t.Fatalf("no lock in %+v", b.Chain)
	}
	var max json.RawMessage
	for _, f := range lock.Facts {
		if f.Ref == "data.portcullis.config.lockout.max_consecutive_failures" {
			max = f.Value
		}
	}
	if string(max) != "5" {
		t.Errorf("lock's facts %+v do not give the lockout setting", lock.Facts)
	}
}

func TestExplainJSONRejectsBadInput(t *testing.T) {
	e := newEngine(t, Config{})
	for name, input := range map[string]string{
		"misspelt fact":   `{"point": "login", "client": {"recent_failure": 3}}`,
		"different point": `{"point": "access"}`,
		"unknown point":   `{"point": "logon"}`,
	} {
		t.Run(name, func(t *testing.T) {
			x, err := e.ExplainJSON(t.Context(), "login", []byte(input))
			if err == nil || x.Decision.Allow || x.Decision.Reason != "policy_error" {
				t.Fatalf("got %+v, %v", x, err)
			}
		})
	}
}
