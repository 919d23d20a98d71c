package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/policies"
)

const policyWhyUsage = `usage: portcullis policy why --log FILE [--log FILE ...] --id DECISION_ID [--dir DIR | --bundle FILE] [--format text|json]

Finds the decision DECISION_ID in the decision logs (each FILE, then its
rotations FILE.1, FILE.2, ..., plain or gzip-compressed), prints when it
was made, at which point, the facts of its input and the logged result,
then decides the logged input again with today's policy (the built-in
policies, --dir DIR or --bundle FILE) and explains that decision rule by
rule. It says whether today's policy reaches the same result, and when the
policy revision differs from the logged one. Exit status: 0 when the
result is the same, 1 when it differs, 2 when the ID is in no log, or on a
usage, policy or read error.
`

func cmdPolicyWhy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy why", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyWhyUsage); fs.PrintDefaults() }
	var logs stringsFlag
	fs.Var(&logs, "log", "decision log file (repeat for several); its rotations are searched too")
	id := fs.String("id", "", "the decision_id to explain")
	pf := addPolicyFlags(fs)
	format := fs.String("format", "text", "output format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logs = append(logs, fs.Args()...)
	if len(logs) == 0 || *id == "" || (*format != "text" && *format != "json") {
		fs.Usage()
		return flag.ErrHelp
	}
	fail := func(err error) error { return &exitError{status: 2, err: err} }
	engine, err := pf.engine(ctx)
	if err != nil {
		return fail(err)
	}
	r, err := policies.Why(ctx, logs, *id, engine)
	if err != nil {
		return fail(err)
	}
	if *format == "json" {
		err = writeJSON(stdout, r)
	} else {
		err = writeWhy(stdout, r, pf.name())
	}
	if err != nil {
		return fail(fmt.Errorf("policy why: %w", err))
	}
	if !r.SameResult {
		return &exitError{status: 1, err: fmt.Errorf("policy why: today's policy decides %s otherwise (%s)",
			r.Logged.DecisionID, strings.Join(r.Differences, ", "))}
	}
	return nil
}

func verdict(d policies.Decision) string {
	if d.Allow {
		return "allow " + d.Reason
	}
	return "deny " + d.Reason
}

func writeWhy(w io.Writer, r *policies.WhyReport, policy string) error {
	l := r.Logged
	result, err := resultJSON(l.Result)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "decision %s (%s:%d)\n", l.DecisionID, l.File, l.Line)
	fmt.Fprintf(w, "  when:   %s\n", l.Time.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(w, "  point:  %s\n", l.Point)
	fmt.Fprintf(w, "  policy: %s\n", l.Revision)
	fmt.Fprintf(w, "  result: %s %s\n", verdict(l.Result), result)
	if l.ShadowOf != "" {
		fmt.Fprintf(w, "  a shadow decision, never enforced: the live decision was %s\n", l.ShadowOf)
	}
	facts, err := inputFacts(l.Input)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "input facts:")
	for _, f := range facts {
		fmt.Fprintf(w, "  %s\n", f)
	}
	now := r.Now.Decision
	fmt.Fprintf(w, "\ntoday's policy (%s, policy %s), deciding the logged input at its logged time:\n", policy, now.Revision)
	if r.SameResult {
		fmt.Fprintf(w, "  the same result: %s\n", verdict(now))
	} else {
		nowResult, err := resultJSON(now)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  a different result, in %s: now %s %s, logged %s %s\n", strings.Join(r.Differences, ", "),
			verdict(now), nowResult, verdict(l.Result), result)
	}
	if r.SameRevision {
		fmt.Fprintln(w, "  the same policy revision as logged")
	} else {
		fmt.Fprintf(w, "  a different policy revision: logged %s, evaluated %s\n", orNone(l.Revision), now.Revision)
	}
	if err := printDecision(w, now); err != nil {
		return err
	}
	printChain(w, r.Now.Chain)
	return nil
}

// resultJSON is the part of d a decision log line records as its result.
func resultJSON(d policies.Decision) ([]byte, error) {
	return json.Marshal(policies.Decision{Allow: d.Allow, Reason: d.Reason, StepUp: d.StepUp, Lock: d.Lock, Notify: d.Notify})
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// inputFacts summarises an input one line per part (client, device,
// account, ...): each leaf as path=value, leaving out what is empty. The
// logged input holds no secret (the log redacts it), so all of it may be
// shown.
func inputFacts(in policies.Input) ([]string, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out []string
	for _, part := range slices.Sorted(maps.Keys(doc)) {
		if part == "point" || part == "now" {
			continue // shown as the point and the time
		}
		var leaves []string
		flatten("", doc[part], &leaves)
		if len(leaves) > 0 {
			out = append(out, part+": "+strings.Join(leaves, " "))
		}
	}
	return out, nil
}

func flatten(prefix string, v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, v[k], out)
		}
	case nil:
	case string:
		if v != "" {
			*out = append(*out, prefix+"="+v)
		}
	case []any:
		if len(v) == 0 {
			return
		}
		b, _ := json.Marshal(v) // decoded from JSON, so it encodes
		*out = append(*out, prefix+"="+string(b))
	default:
		*out = append(*out, fmt.Sprintf("%s=%v", prefix, v))
	}
}
