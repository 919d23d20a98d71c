package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/portcullis/portcullis/policies"
)

const policyUsage = `usage:
  portcullis policy test [DIR]                              run the Rego tests (DIR: a policy directory; default: the built-in policies)
  portcullis policy eval --point POINT --input FILE [--dir DIR] [--json]   decide one input and show which rules fired
  portcullis policy audit [--dir DIR] [--format text|markdown|json] [--strict]   judge the policy against NIST SP 800-63B-4 and OWASP ASVS 5.0
  portcullis policy replay --log FILE... --dir CANDIDATE [--baseline DIR] [--format text|json|markdown]   decide logged inputs again and report what changes
`

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "test":
		fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		passed, failed, err := policies.Test(ctx, fs.Arg(0), stdout)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
		if failed > 0 {
			return fmt.Errorf("%d policy tests failed", failed)
		}
		return nil
	case "eval":
		fs := flag.NewFlagSet("policy eval", flag.ContinueOnError)
		fs.SetOutput(stderr)
		point := fs.String("point", "", "decision point: "+pointNames())
		input := fs.String("input", "", "JSON input document (- for stdin)")
		dir := fs.String("dir", "", "policy directory (default: the built-in policies)")
		asJSON := fs.Bool("json", false, "print the decision and the rules as one JSON document")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *point == "" || *input == "" {
			fmt.Fprint(stderr, policyUsage)
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
		engine, err := policies.New(ctx, policies.Config{Dir: *dir})
		if err != nil {
			return err
		}
		d, rules, err := engine.Explain(ctx, *point, doc)
		if err != nil {
			return err
		}
		if !*asJSON {
			return printExplanation(stdout, d, rules)
		}
		out := json.NewEncoder(stdout)
		out.SetIndent("", "  ")
		out.SetEscapeHTML(false) // rule text reads as written: <, > and &, not \u003c
		return out.Encode(struct {
			Decision policies.Decision `json:"decision"`
			Rules    []string          `json:"rules"`
		}{d, rules})
	case "replay":
		return cmdPolicyReplay(ctx, args[1:], stdout, stderr)
	case "audit":
		return cmdPolicyAudit(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprint(stderr, policyUsage)
		return fmt.Errorf("unknown policy command %q", args[0])
	}
}

func pointNames() string {
	var s string
	for i, p := range policies.Points() {
		if i > 0 {
			s += ", "
		}
		s += string(p)
	}
	return s
}

// printExplanation writes a decision and the rules that fired as a person
// reads them: the rule text as written in the module, not as a JSON string.
func printExplanation(w io.Writer, d policies.Decision, rules []string) error {
	verdict := "deny"
	if d.Allow {
		verdict = "allow"
	}
	decision, err := json.Marshal(d)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "decision: %s %s (policy %s)\n  %s\nrules that fired, in order:\n", verdict, d.Reason, d.Revision, decision)
	for _, r := range rules {
		fmt.Fprintf(w, "  %s\n", r)
	}
	return nil
}
