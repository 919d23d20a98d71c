package policies

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"

	shipped "github.com/portcullis/portcullis/rego"
)

// Test runs the Rego tests (test_* rules in *_test.rego) of the policies in
// dir, or of the embedded policies when dir is empty, with the same
// compiler settings and built-ins the engine uses. It writes OPA's usual
// report to w and returns the number of tests that passed and failed; err
// is set when the policies do not load or compile.
func Test(ctx context.Context, dir string, w io.Writer) (passed, failed int, err error) {
	var src *sources
	if dir == "" {
		src, err = readSources(shipped.FS, true)
	} else {
		src, err = readSources(os.DirFS(dir), true)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("policies: %w", err)
	}
	modules, data, err := src.parse()
	if err != nil {
		return 0, 0, fmt.Errorf("policies: %w", err)
	}
	// The runner compiles the modules itself, with its test stages added.
	compiler := ast.NewCompiler().
		WithEnablePrintStatements(true).
		WithCapabilities(capabilities()).
		WithStrict(true)
	ch, err := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(inmem.NewFromObject(data)).
		CapturePrintOutput(true).
		RaiseBuiltinErrors(true).
		SetModules(modules).
		RunTests(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("policies: run tests: %w", err)
	}
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
		switch {
		case r.Skip:
		case r.Pass():
			passed++
		default:
			failed++
		}
	}
	slices.SortFunc(results, func(a, b *tester.Result) int {
		if a.Package != b.Package {
			return compareStrings(a.Package, b.Package)
		}
		return compareStrings(a.Name, b.Name)
	})
	report := make(chan *tester.Result, len(results))
	for _, r := range results {
		report <- r
	}
	close(report)
	if err := (tester.PrettyReporter{Output: w}).Report(report); err != nil {
		return passed, failed, fmt.Errorf("policies: report: %w", err)
	}
	return passed, failed, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Explain decides point for a JSON input document (as written in
// testdata/policies) the way Decide would, and says which rules produced
// the decision: one line per rule that succeeded during evaluation,
// "file:row: rule head", in evaluation order. The input is parsed strictly:
// an unknown field is an error, as it is likely a misspelt fact the policy
// would never see. ExplainJSON gives the chain that led to the decision
// instead, with each rule's value and the facts it read. For point access the policy's whole decision rule is
// evaluated, uncached.
func (e *Engine) Explain(ctx context.Context, point string, input []byte) (Decision, []string, error) {
	set := e.current.Load()
	in, err := parseExplainInput(point, input)
	if err != nil {
		return failure(set.revision), nil, err
	}
	e.complete(set, &in)
	tracer := topdown.NewBufferTracer()
	d, err := set.decide(ctx, &in, tracer)
	rules := firedRules(*tracer)
	if err != nil {
		return failure(set.revision), rules, fmt.Errorf("policies: explain %s: %w", in.Point, err)
	}
	return d, rules, nil
}

// firedRules lists the rules whose bodies succeeded, once each, in order.
func firedRules(events []*topdown.Event) []string {
	var out []string
	seen := map[*ast.Rule]bool{}
	for _, ev := range events {
		if ev.Op != topdown.ExitOp {
			continue
		}
		r, ok := ev.Node.(*ast.Rule)
		if !ok || seen[r] {
			continue
		}
		seen[r] = true
		if r.Location == nil {
			out = append(out, r.Head.String())
			continue
		}
		text, _, _ := strings.Cut(string(r.Location.Text), "\n")
		out = append(out, fmt.Sprintf("%s:%d: %s", r.Location.File, r.Location.Row, strings.TrimSpace(text)))
	}
	return out
}
