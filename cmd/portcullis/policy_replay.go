package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/portcullis/portcullis/policies"
)

const policyReplayUsage = `usage: portcullis policy replay --log FILE [--log FILE ...] --dir CANDIDATE [--baseline DIR] [--format text|json|markdown]

Decides every input in the decision logs again with the CANDIDATE policy
directory and reports which decisions would change. Each line is decided
with the baseline too (the built-in policies, or --baseline DIR): a line
the baseline no longer decides as logged is a baseline mismatch, counted
apart from the changes. Exit status: 0 when no decision changes, 1 when
some do, 2 on a usage, policy or read error.
`

// exitError ends the command with status, after the usual report of err.
type exitError struct {
	status int
	err    error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// stringsFlag is a flag that may be given more than once.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func cmdPolicyReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyReplayUsage); fs.PrintDefaults() }
	var logs stringsFlag
	fs.Var(&logs, "log", "decision log file to replay (repeat for several; read in the order given)")
	dir := fs.String("dir", "", "candidate policy directory")
	baseline := fs.String("baseline", "", "baseline policy directory (default: the built-in policies)")
	format := fs.String("format", "text", "report format: text, json or markdown")
	workers := fs.Int("workers", 0, "decisions evaluated at once (default: GOMAXPROCS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logs = append(logs, fs.Args()...)
	if len(logs) == 0 || *dir == "" || (*format != "text" && *format != "json" && *format != "markdown") {
		fs.Usage()
		return flag.ErrHelp
	}
	fail := func(err error) error { return &exitError{status: 2, err: err} }
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(policies.ReplayGCPercent)
	}
	candidate, err := policies.New(ctx, policies.Config{Dir: *dir})
	if err != nil {
		return fail(fmt.Errorf("candidate: %w", err))
	}
	base, err := policies.New(ctx, policies.Config{Dir: *baseline})
	if err != nil {
		return fail(fmt.Errorf("baseline: %w", err))
	}
	sources := make([]policies.ReplaySource, 0, len(logs))
	for _, name := range logs {
		f, err := os.Open(name)
		if err != nil {
			return fail(fmt.Errorf("policy replay: %w", err))
		}
		defer f.Close()
		sources = append(sources, policies.ReplaySource{Name: name, R: f})
	}
	cfg := policies.ReplayConfig{Candidate: candidate, Baseline: base, Workers: *workers}
	var progress *progressLine
	if isTerminal(stderr) {
		progress = &progressLine{w: stderr}
		cfg.Progress = progress.show
	}
	report, err := policies.Replay(ctx, cfg, sources...)
	if progress != nil {
		progress.end()
	}
	if err != nil {
		return fail(err)
	}
	baseName := *baseline
	if baseName == "" {
		baseName = "built-in"
	}
	switch *format {
	case "json":
		out := json.NewEncoder(stdout)
		out.SetIndent("", "  ")
		err = out.Encode(report)
	case "markdown":
		err = writeReplayMarkdown(stdout, report, *dir, baseName)
	default:
		err = writeReplayText(stdout, report, *dir, baseName)
	}
	if err != nil {
		return fail(fmt.Errorf("policy replay: %w", err))
	}
	if report.Changed > 0 {
		return &exitError{status: 1, err: fmt.Errorf("policy replay: %d of %d decisions change", report.Changed, report.Read)}
	}
	return nil
}

// isTerminal reports whether w is a terminal, where progress is shown.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine rewrites one line on a terminal at most five times a
// second.
type progressLine struct {
	w    io.Writer
	mu   sync.Mutex
	last time.Time
}

func (p *progressLine) show(lines int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\rreplayed %d lines", lines)
}

func (p *progressLine) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func replayTotals(r *policies.ReplayReport) string {
	return fmt.Sprintf("read %d, unchanged %d, changed %d, baseline mismatches %d, unparseable %d, shadow lines skipped %d",
		r.Read, r.Unchanged, r.Changed, r.BaselineMismatches, r.Unparseable, r.Shadow)
}

func writeReplayText(w io.Writer, r *policies.ReplayReport, dir, baseline string) error {
	fmt.Fprintf(w, "candidate %s (policy %s), baseline %s (policy %s)\n%s\n", dir, r.CandidateRevision, baseline, r.BaselineRevision, replayTotals(r))
	table := func(title string, cs []policies.ReplayChange) error {
		if len(cs) == 0 {
			return nil
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POINT\tREASON\tFIELDS\tCOUNT\tFIRST\tLAST\tEXAMPLES")
		for _, c := range cs {
			fmt.Fprintf(tw, "%s\t%s -> %s\t%s\t%d\t%s\t%s\t%s\n", c.Point, c.OldReason, c.NewReason, strings.Join(c.Fields, ","),
				c.Count, c.First.Format(time.RFC3339), c.Last.Format(time.RFC3339), strings.Join(c.Examples, " "))
		}
		return tw.Flush()
	}
	if err := table("changes (logged -> candidate)", r.Changes); err != nil {
		return err
	}
	if err := table("baseline mismatches (logged -> baseline now)", r.Mismatches); err != nil {
		return err
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\nunparseable lines (first %d):\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	return nil
}

func writeReplayMarkdown(w io.Writer, r *policies.ReplayReport, dir, baseline string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## Policy replay\n\nCandidate `%s` (policy `%s`), baseline `%s` (policy `%s`).\n\n", dir, r.CandidateRevision, baseline, r.BaselineRevision)
	fmt.Fprintf(&b, "| read | unchanged | changed | baseline mismatches | unparseable | shadow (skipped) |\n|---:|---:|---:|---:|---:|---:|\n| %d | %d | %d | %d | %d | %d |\n",
		r.Read, r.Unchanged, r.Changed, r.BaselineMismatches, r.Unparseable, r.Shadow)
	table := func(title string, cs []policies.ReplayChange) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n### %s\n\n| point | reason | fields | count | first | last | examples |\n|---|---|---|---:|---|---|---|\n", title)
		for _, c := range cs {
			fmt.Fprintf(&b, "| %s | %s → %s | %s | %d | %s | %s | %s |\n", c.Point, c.OldReason, c.NewReason, strings.Join(c.Fields, ", "),
				c.Count, c.First.Format(time.RFC3339), c.Last.Format(time.RFC3339), markdownCodes(c.Examples))
		}
	}
	table("Changes (logged → candidate)", r.Changes)
	table("Baseline mismatches (logged → baseline now)", r.Mismatches)
	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, "\n### Unparseable lines (first %d)\n\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "- `%s`\n", strings.ReplaceAll(p, "`", "'"))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func markdownCodes(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "`" + strings.ReplaceAll(id, "`", "'") + "`"
	}
	return strings.Join(out, " ")
}
