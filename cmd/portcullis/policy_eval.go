package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/plugins/compose"
	"github.com/portcullis/portcullis/policies"
)

// policyFlags choose the policy a command evaluates: the built-in one, a
// directory, or a bundle verified as serve verifies it.
type policyFlags struct {
	dir, bundle, key, keyID *string
	unsigned                *bool
}

func addPolicyFlags(fs *flag.FlagSet) *policyFlags {
	return &policyFlags{
		dir:      fs.String("dir", "", "policy directory (default: the built-in policies)"),
		bundle:   fs.String("bundle", "", "OPA bundle file (opa build) to evaluate instead of a directory"),
		key:      fs.String("bundle-key", "", "PEM public key the bundle's signature is checked against"),
		keyID:    fs.String("bundle-key-id", "", "key ID the bundle's signature names (default \"default\")"),
		unsigned: fs.Bool("bundle-unsigned", false, "accept a bundle without a signature"),
	}
}

// engine loads the chosen policy.
func (p *policyFlags) engine(ctx context.Context) (*policies.Engine, error) {
	switch {
	case *p.dir != "" && *p.bundle != "":
		return nil, errors.New("--dir and --bundle are exclusive: choose one")
	case *p.bundle == "" && (*p.key != "" || *p.keyID != "" || *p.unsigned):
		return nil, errors.New("--bundle-key, --bundle-key-id and --bundle-unsigned need --bundle")
	case *p.key != "" && *p.unsigned:
		return nil, errors.New("--bundle-key and --bundle-unsigned are exclusive")
	}
	cfg, err := compose.PolicySource(config.Policies{Dir: *p.dir, Bundle: *p.bundle, BundlePublicKey: *p.key,
		BundleKeyID: *p.keyID, BundleUnsigned: *p.unsigned})
	if err != nil {
		return nil, err
	}
	cfg.AccessCacheSize = -1 // one decision: a cache would only cost
	return policies.New(ctx, cfg)
}

// name says which policy the flags chose, for a report.
func (p *policyFlags) name() string {
	switch {
	case *p.bundle != "":
		return *p.bundle
	case *p.dir != "":
		return *p.dir
	}
	return "built-in"
}

func cmdPolicyEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage); fs.PrintDefaults() }
	point := fs.String("point", "", "decision point: "+pointNames())
	input := fs.String("input", "", "JSON input document (- for stdin)")
	pf := addPolicyFlags(fs)
	explain := fs.Bool("explain", false, "show the chain of rules that produced the decision: each rule's name, file:line, value and the facts it read")
	format := fs.String("format", "text", "output format: text or json")
	asJSON := fs.Bool("json", false, "the same as --format json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *asJSON {
		*format = "json"
	}
	if *point == "" || *input == "" || (*format != "text" && *format != "json") {
		fs.Usage()
		return flag.ErrHelp
	}
	var doc []byte
	var err error
	if *input == "-" {
		doc, err = io.ReadAll(os.Stdin)
	} else {
		doc, err = os.ReadFile(*input)
	}
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	engine, err := pf.engine(ctx)
	if err != nil {
		return err
	}
	if *explain {
		x, err := engine.ExplainJSON(ctx, *point, doc)
		if err != nil {
			return err
		}
		if *format == "json" {
			return writeJSON(stdout, x)
		}
		if err := printDecision(stdout, x.Decision); err != nil {
			return err
		}
		printChain(stdout, x.Chain)
		return nil
	}
	d, rules, err := engine.Explain(ctx, *point, doc)
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeJSON(stdout, struct {
			Decision policies.Decision `json:"decision"`
			Rules    []string          `json:"rules"`
		}{d, rules})
	}
	return printExplanation(stdout, d, rules)
}

// writeJSON writes v indented, with rule text as written: <, > and &, not
// \u003c.
func writeJSON(w io.Writer, v any) error {
	out := json.NewEncoder(w)
	out.SetIndent("", "  ")
	out.SetEscapeHTML(false)
	return out.Encode(v)
}

// printDecision writes a decision's verdict, reason, revision and fields.
func printDecision(w io.Writer, d policies.Decision) error {
	verdict := "deny"
	if d.Allow {
		verdict = "allow"
	}
	decision, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "decision: %s %s (policy %s)\n  %s\n", verdict, d.Reason, d.Revision, decision)
	return err
}

// printExplanation writes a decision and the rules that fired as a person
// reads them: the rule text as written in the module, not as a JSON string.
func printExplanation(w io.Writer, d policies.Decision, rules []string) error {
	if err := printDecision(w, d); err != nil {
		return err
	}
	fmt.Fprintln(w, "rules that fired, in order:")
	for _, r := range rules {
		fmt.Fprintf(w, "  %s\n", r)
	}
	return nil
}

// maxShownValue is how much of a value the text chain shows; --format
// json gives it whole.
const maxShownValue = 160

// printChain writes the rules that produced a decision as an indented
// tree: each rule as name(args) = value (file:line), and under it the
// facts its body read.
func printChain(w io.Writer, chain []policies.RuleStep) {
	fmt.Fprintln(w, "why, from the decision rule down to the facts it used:")
	for _, s := range chain {
		indent := strings.Repeat("  ", s.Depth+1)
		name := s.Rule
		if len(s.Args) > 0 {
			args := make([]string, len(s.Args))
			for i, a := range s.Args {
				args[i] = shorten(string(a))
			}
			name += "(" + strings.Join(args, ", ") + ")"
		}
		fmt.Fprintf(w, "%s%s = %s  (%s:%d)\n", indent, name, shorten(string(s.Value)), s.File, s.Line)
		for _, f := range s.Facts {
			v := "undefined"
			if f.Value != nil {
				v = shorten(string(f.Value))
			}
			fmt.Fprintf(w, "%s    %s = %s\n", indent, f.Ref, v)
		}
	}
}

// shorten cuts s to maxShownValue bytes on a rune boundary, marking the cut.
func shorten(s string) string {
	if len(s) <= maxShownValue {
		return s
	}
	cut := maxShownValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
