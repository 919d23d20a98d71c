package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Explanation is a decision and the chain of rules that produced it, in
// the words of the policy. It is built by evaluating with OPA's tracer,
// which costs two to three times a plain decision and five times its
// allocations, so only the command line and Why explain; Decide never
// does.
type Explanation struct {
	// Point is the decision point explained.
	Point Point `json:"point"`
	// Decision is what the policy decided, with its revision.
	Decision Decision `json:"decision"`
	// Chain lists the rules that contributed to the decision, from the
	// decision rule down to the rules it used, each once, in the order
	// evaluation first reached them.
	Chain []RuleStep `json:"chain"`
}

// RuleStep is one rule that contributed to a decision: its body succeeded
// in an evaluation that led to the decision.
type RuleStep struct {
	// Rule is the rule's full name, package and rule:
	// data.portcullis.ip.denial.
	Rule string `json:"rule"`
	// File and Line say where the rule is written: the policy file's path
	// (rego/NAME for the built-in policies, DIR/NAME for a directory, the
	// file's name inside a bundle, NAME when built with opa build -b . in
	// the policy directory) and the line of its head.
	File string `json:"file"`
	Line int    `json:"line"`
	// Depth is 0 for the decision rule, 1 for a rule it used, and so on.
	Depth int `json:"depth"`
	// Args are the arguments of a function rule's call.
	Args []json.RawMessage `json:"args,omitempty"`
	// Value is the value the rule took: a complete rule's value, the
	// member a "contains" rule added, a function's result.
	Value json.RawMessage `json:"value"`
	// Facts are the input facts and data settings the rule's body reads,
	// with their values in this decision.
	Facts []Fact `json:"facts,omitempty"`
}

// Fact is a part of the input or the data that a rule reads.
type Fact struct {
	// Ref names it: input.client.facts.anonymous_vpn,
	// data.portcullis.config.lockout.max_consecutive_failures.
	Ref string `json:"ref"`
	// Value is its value; absent when the input or data has none
	// (undefined, which a rule may test for with not).
	Value json.RawMessage `json:"value,omitempty"`
}

// ExplainJSON decides point for a JSON input document (as written in
// testdata/policies) the way Decide would and explains the decision. The
// input is parsed strictly, as Explain parses it.
func (e *Engine) ExplainJSON(ctx context.Context, point string, input []byte) (Explanation, error) {
	set := e.current.Load()
	in, err := parseExplainInput(point, input)
	if err != nil {
		return Explanation{Point: Point(point), Decision: failure(set.revision)}, err
	}
	return e.explain(ctx, set, in)
}

// ExplainInput decides in the way Decide would and explains the decision.
// For point access the policy's whole decision rule is evaluated,
// uncached, so its chain shows the session limits too.
func (e *Engine) ExplainInput(ctx context.Context, in Input) (Explanation, error) {
	return e.explain(ctx, e.current.Load(), in)
}

func (e *Engine) explain(ctx context.Context, set *policySet, in Input) (Explanation, error) {
	e.complete(set, &in)
	tracer := newChainTracer()
	d, err := set.decide(ctx, &in, tracer)
	x := Explanation{Point: in.Point, Decision: d}
	if err != nil {
		x.Decision = failure(set.revision)
		return x, fmt.Errorf("policies: explain %s: %w", in.Point, err)
	}
	x.Chain, err = tracer.chain(ctx, set, in.value(), e.sourceFile)
	if err != nil {
		return x, fmt.Errorf("policies: explain %s: %w", in.Point, err)
	}
	return x, nil
}

// parseExplainInput reads a JSON input document for point strictly: an
// unknown field is an error, as it is likely a misspelt fact the policy
// would never see.
func parseExplainInput(point string, input []byte) (Input, error) {
	var in Input
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, fmt.Errorf("policies: explain: input: %w", err)
	}
	switch {
	case in.Point == "":
		in.Point = Point(point)
	case point != "" && in.Point != Point(point):
		return in, fmt.Errorf("policies: explain: input is for point %q, not %q", in.Point, point)
	}
	return in, nil
}

// sourceFile names a module's file as a person finds it: in rego/ for the
// built-in policies, in the directory the policies were loaded from, or
// inside the bundle.
func (e *Engine) sourceFile(name string) string {
	switch {
	case e.bundle != nil:
		return name
	case e.fsys != nil:
		return filepath.Join(e.origin, filepath.FromSlash(name))
	}
	return path.Join("rego", name)
}

// chainTracer records, while OPA evaluates, every rule whose body is
// entered, under which query, and the value it took when it succeeded.
// Values are plugged during the event: OPA reuses an evaluation's bindings
// once it is done with them.
type chainTracer struct {
	parent map[uint64]uint64    // query ID -> the query that started it
	calls  map[uint64]*ruleCall // query ID of a rule's body -> that call
	order  []*ruleCall          // in the order evaluation entered them
}

type ruleCall struct {
	rule   *ast.Rule
	query  uint64
	exited bool
	args   []*ast.Term
	value  *ast.Term
}

func newChainTracer() *chainTracer {
	return &chainTracer{parent: map[uint64]uint64{}, calls: map[uint64]*ruleCall{}}
}

func (t *chainTracer) Enabled() bool               { return true }
func (t *chainTracer) Config() topdown.TraceConfig { return topdown.TraceConfig{} }

func (t *chainTracer) TraceEvent(ev topdown.Event) {
	if _, ok := t.parent[ev.QueryID]; !ok {
		t.parent[ev.QueryID] = ev.ParentID
	}
	r, ok := ev.Node.(*ast.Rule)
	if !ok {
		return
	}
	switch ev.Op {
	case topdown.EnterOp:
		c := &ruleCall{rule: r, query: ev.QueryID}
		t.calls[ev.QueryID] = c
		t.order = append(t.order, c)
	case topdown.ExitOp:
		c := t.calls[ev.QueryID]
		if c == nil || c.rule != r || c.exited {
			return
		}
		c.exited = true
		for _, a := range r.Head.Args {
			c.args = append(c.args, ev.Plug(a))
		}
		switch {
		case r.Head.Value != nil && r.Head.Key != nil && len(r.Head.Args) == 0:
			// An object rule: show key and value as one object.
			c.value = ast.ObjectTerm(ast.Item(ev.Plug(r.Head.Key), ev.Plug(r.Head.Value)))
		case r.Head.Value != nil:
			c.value = ev.Plug(r.Head.Value)
		case r.Head.Key != nil:
			c.value = ev.Plug(r.Head.Key)
		}
	}
}

// caller is the rule call whose body started c, nil for the decision
// rule evaluated by the query itself.
func (t *chainTracer) caller(c *ruleCall) *ruleCall {
	q := t.parent[c.query]
	for range len(t.parent) + 1 {
		if q == 0 {
			return nil
		}
		if p, ok := t.calls[q]; ok && p != c {
			return p
		}
		q = t.parent[q]
	}
	return nil
}

// contributed reports whether c succeeded and so did every rule call up
// to the decision: a rule that succeeded for a caller that then failed
// did not lead to the decision.
func (t *chainTracer) contributed(c *ruleCall, memo map[*ruleCall]bool) bool {
	if v, ok := memo[c]; ok {
		return v
	}
	memo[c] = false // a cycle cannot contribute; OPA refuses recursion anyway
	ok := c.exited
	if p := t.caller(c); ok && p != nil {
		ok = t.contributed(p, memo)
	}
	memo[c] = ok
	return ok
}

// chain reduces the recorded calls to the rules that contributed, each
// once at its first place, as a tree from the decision rule down.
func (t *chainTracer) chain(ctx context.Context, set *policySet, input ast.Value, file func(string) string) ([]RuleStep, error) {
	memo := map[*ruleCall]bool{}
	children := map[*ruleCall][]*ruleCall{}
	var roots []*ruleCall
	for _, c := range t.order {
		if !t.contributed(c, memo) {
			continue
		}
		if p := t.caller(c); p != nil {
			children[p] = append(children[p], c)
		} else {
			roots = append(roots, c)
		}
	}
	facts := map[*ast.Rule][]Fact{}
	seen := map[*ast.Rule]bool{}
	var out []RuleStep
	var walk func(c *ruleCall, depth int) error
	walk = func(c *ruleCall, depth int) error {
		next := depth
		if !seen[c.rule] {
			seen[c.rule] = true
			fs, ok := facts[c.rule]
			if !ok {
				var err error
				if fs, err = ruleFacts(ctx, set, c.rule, input); err != nil {
					return err
				}
				facts[c.rule] = fs
			}
			step := RuleStep{Rule: c.rule.Ref().String(), Depth: depth, Value: termJSON(c.value), Facts: fs}
			if loc := c.rule.Location; loc != nil {
				step.File, step.Line = file(loc.File), loc.Row
			}
			for _, a := range c.args {
				step.Args = append(step.Args, termJSON(a))
			}
			out = append(out, step)
			next = depth + 1
		}
		for _, k := range children[c] {
			if err := walk(k, next); err != nil {
				return err
			}
		}
		return nil
	}
	for _, r := range roots {
		if err := walk(r, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ruleFacts lists the input facts and data settings that rule's head and
// body read, in the order they are written, with their values: each
// reference up to its first variable part (input.client.facts for
// input.client.facts[flag]). References to other rules are left out: those
// rules have their own place in the chain.
func ruleFacts(ctx context.Context, set *policySet, rule *ast.Rule, input ast.Value) ([]Fact, error) {
	var refs []ast.Ref
	collect := func(r ast.Ref) bool {
		r = r.GroundPrefix()
		if len(r) < 2 {
			return false
		}
		for _, have := range refs {
			if have.Equal(r) {
				return false
			}
		}
		refs = append(refs, r)
		return false
	}
	ast.WalkRefs(rule.Head, collect)
	ast.WalkRefs(rule.Body, collect)
	var out []Fact
	for _, r := range refs {
		switch {
		case r[0].Equal(ast.InputRootDocument):
			f := Fact{Ref: r.String()}
			if v, err := input.Find(r[1:]); err == nil {
				f.Value = termJSON(ast.NewTerm(v))
			}
			out = append(out, f)
		case r[0].Equal(ast.DefaultRootDocument):
			if len(set.compiler.GetRules(r)) > 0 {
				continue
			}
			p, err := storage.NewPathForRef(r)
			if err != nil {
				continue // a reference no document can have, such as data.x[1]
			}
			f := Fact{Ref: r.String()}
			v, err := storage.ReadOne(ctx, set.store, p)
			switch {
			case storage.IsNotFound(err):
			case err != nil:
				return nil, fmt.Errorf("read %s: %w", r, err)
			default:
				if av, ok := v.(ast.Value); ok {
					// The store keeps data in OPA's own representation.
					f.Value = termJSON(ast.NewTerm(av))
					break
				}
				b, err := json.Marshal(v)
				if err != nil {
					return nil, fmt.Errorf("read %s: %w", r, err)
				}
				f.Value = b
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// termJSON is t as JSON, or, when t is not a plain value (a set, a value
// OPA could not bind), its Rego text as a JSON string.
func termJSON(t *ast.Term) json.RawMessage {
	if t == nil {
		return json.RawMessage("null")
	}
	if v, err := ast.JSON(t.Value); err == nil {
		if b, err := json.Marshal(v); err == nil {
			return b
		}
	}
	b, _ := json.Marshal(t.String()) // a string always marshals
	return b
}
