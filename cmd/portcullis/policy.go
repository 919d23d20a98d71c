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
  portcullis policy eval --point POINT --input FILE [--dir DIR]   decide one input and show which rules fired
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
		out := json.NewEncoder(stdout)
		out.SetIndent("", "  ")
		if err := out.Encode(struct {
			Decision policies.Decision `json:"decision"`
			Rules    []string          `json:"rules"`
		}{d, rules}); err != nil {
			return err
		}
		return nil
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
