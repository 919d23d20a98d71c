package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/policies"
)

const policyAuditUsage = `usage: portcullis policy audit [--dir DIR] [--format text|markdown|json] [--strict]

Judges the policy against NIST SP 800-63B-4 and OWASP ASVS 5.0.0, one row per
control, with the justification data.portcullis.standards.deviations carries
for each deviation. Exit status: 0 when the report is written, 1 when the
policy does not load or, with --strict, when a control deviates without a
justification, 2 for a usage error.
`

// cmdPolicyAudit is "portcullis policy audit".
func cmdPolicyAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, policyAuditUsage)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "", "policy directory (default: the built-in policies)")
	format := fs.String("format", "text", "text (an aligned table), markdown or json")
	strict := fs.Bool("strict", false, "exit with status 1 when a control deviates without a justification")
	if err := fs.Parse(args); err != nil {
		return err
	}
	write := map[string]func(*policies.AuditReport, io.Writer) error{
		"text":     (*policies.AuditReport).WriteText,
		"markdown": (*policies.AuditReport).WriteMarkdown,
		"json":     (*policies.AuditReport).WriteJSON,
	}[*format]
	if write == nil || fs.NArg() > 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	engine, err := policies.New(ctx, policies.Config{Dir: *dir})
	if err != nil {
		return err
	}
	report, err := engine.Audit(ctx, policies.AuditFacts{CodeDigits: credential.CodeDigits})
	if err != nil {
		return err
	}
	if err := write(report, stdout); err != nil {
		return fmt.Errorf("policy audit: %w", err)
	}
	if n := report.Unjustified(); *strict && n > 0 {
		return errors.New("policy audit: " + plural(n, "control deviates", "controls deviate") + " without a justification")
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
