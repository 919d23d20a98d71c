package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/portcullis/portcullis/policies"
)

const policyUsage = `usage:
  portcullis policy test [DIR]                              run the Rego tests (DIR: a policy directory; default: the built-in policies)
  portcullis policy eval --point POINT --input FILE [--dir DIR | --bundle FILE] [--explain] [--format text|json]   decide one input and show which rules fired (--explain: the chain of rules, their values and the facts they read)
  portcullis policy audit [--dir DIR] [--format text|markdown|json] [--strict]   judge the policy against NIST SP 800-63B-4 and OWASP ASVS 5.0
  portcullis policy replay --log FILE... --dir CANDIDATE [--baseline DIR] [--format text|json|markdown]   decide logged inputs again and report what changes
  portcullis policy why --log FILE... --id DECISION_ID [--dir DIR | --bundle FILE] [--format text|json]   find a logged decision and explain it with today's policy
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
		return cmdPolicyEval(ctx, args[1:], stdout, stderr)
	case "why":
		return cmdPolicyWhy(ctx, args[1:], stdout, stderr)
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
