package policies

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// A decision allocates a few hundred objects, and on the request path
// garbage collection of them is most of the latency tail. Two things OPA
// redoes on every evaluation are the same for every request of a revision,
// so they are done once at load and shared, read-only, by every evaluation:
//
//   - reading the data document: OPA reads base documents from the store
//     and caches them per evaluation in a trie it builds anew each time
//     (about a tenth of a login decision's bytes); dataCache answers from the
//     data as the store holds it.
//   - evaluating rules that do not depend on the input (outcome.messages,
//     outcome.allowed, session limits from config, ...): constants holds
//     their values, and evalCache, the per-evaluation virtual cache that
//     replaces OPA's, serves them before its own entries.
//
// Explain evaluates without either, so its trace still shows every rule.

// dataCache is a topdown.BaseCache over the policy data. The store never
// changes after load, so every read gives what a store read would; refs
// the store would resolve differently (non-scalar keys, missing paths) are
// left to OPA, which then reads the store as before.
type dataCache struct {
	root     ast.Value // data as the store holds it
	rootRead ast.Value // data as OPA reads the whole of it: without data.system
}

func newDataCache(ctx context.Context, store storage.Store) (*dataCache, error) {
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Abort(ctx, txn)
	v, err := store.Read(ctx, txn, storage.RootPath)
	if err != nil {
		return nil, fmt.Errorf("read data: %w", err)
	}
	root, ok := v.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("data is %T, not an AST object", v)
	}
	c := &dataCache{root: root, rootRead: root}
	if root.Get(ast.InternedTerm(string(ast.SystemDocumentKey))) != nil {
		// As OPA does when it reads the whole of data from a store.
		out := ast.NewObject()
		root.Foreach(func(k, v *ast.Term) {
			if !k.Equal(ast.InternedTerm(string(ast.SystemDocumentKey))) {
				out.Insert(k, v)
			}
		})
		c.rootRead = out
	}
	return c, nil
}

// Get returns the data at ref (data.x.y...), or nil to let OPA read it.
func (c *dataCache) Get(ref ast.Ref) ast.Value {
	if len(ref) == 1 {
		return c.rootRead
	}
	for _, t := range ref[1:] {
		if !ast.IsScalar(t.Value) {
			return nil
		}
	}
	v, err := c.root.Find(ref[1:])
	if err != nil {
		return nil
	}
	return v
}

// Put does nothing: every value OPA could store is already here.
func (*dataCache) Put(ast.Ref, ast.Value) {}

// constants are the values of the rules that read no input, by path below
// data.
type constants struct {
	value    *ast.Term
	children map[string]*constants
}

func (c *constants) get(ref ast.Ref) *ast.Term {
	if c == nil || len(ref) < 2 || !ref[0].Equal(ast.DefaultRootDocument) {
		return nil
	}
	node := c
	for _, t := range ref[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			return nil
		}
		if node = node.children[string(s)]; node == nil {
			return nil
		}
	}
	return node.value
}

func (c *constants) put(path []string, value *ast.Term) {
	node := c
	for _, s := range path {
		next := node.children[s]
		if next == nil {
			next = &constants{}
			if node.children == nil {
				node.children = map[string]*constants{}
			}
			node.children[s] = next
		}
		node = next
	}
	node.value = value
}

// evalCache is the virtual cache of one evaluation: the revision's
// constants, then the rule and function results of this evaluation. Inside
// a `with` (depth > 0) the constants are not served, since `with` may
// replace what they were computed from.
//
// It stands in for OPA's own cache (topdown.NewVirtualCache), a trie with
// a hash map per node: an evaluation caches a few dozen results, and a
// list scanned from the newest entry allocates a fraction of that.
type evalCache struct {
	consts *constants
	frames []cacheFrame // the innermost last; frames[0] is the evaluation's
}

type cacheFrame struct {
	entries []cacheEntry
	terms   []*ast.Term // backing for the entries' refs
}

type cacheEntry struct {
	ref       ast.Ref
	value     *ast.Term
	undefined bool
}

var (
	_ topdown.VirtualCache = (*evalCache)(nil)
	_ topdown.BaseCache    = (*dataCache)(nil)
)

func newEvalCache(consts *constants) *evalCache {
	return &evalCache{consts: consts, frames: make([]cacheFrame, 1, 2)}
}

func (c *evalCache) Push() { c.frames = append(c.frames, cacheFrame{}) }

func (c *evalCache) Pop() {
	c.frames[len(c.frames)-1] = cacheFrame{}
	c.frames = c.frames[:len(c.frames)-1]
}

func (c *evalCache) top() *cacheFrame { return &c.frames[len(c.frames)-1] }

func (c *evalCache) find(ref ast.Ref) *cacheEntry {
	f := c.top()
	for i := len(f.entries) - 1; i >= 0; i-- {
		if e := &f.entries[i]; sameRef(e.ref, ref) {
			return e
		}
	}
	return nil
}

// sameRef compares the last term first: refs in one evaluation mostly
// share their leading terms (data, portcullis, ...).
func sameRef(a, b ast.Ref) bool {
	if len(a) != len(b) {
		return false
	}
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] != b[i] && !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// Get follows topdown.VirtualCache: (nil, true) for a ref cached as
// undefined, (nil, false) for one not cached.
func (c *evalCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if len(c.frames) == 1 {
		if t := c.consts.get(ref); t != nil {
			return t, false
		}
	}
	e := c.find(ref)
	switch {
	case e == nil:
		return nil, false
	case e.undefined:
		return nil, true
	}
	return e.value, false
}

// Put records value for ref, nil meaning undefined, as OPA's cache does
// (a ref once undefined stays so). The ref is copied: OPA reuses the
// slices it passes.
func (c *evalCache) Put(ref ast.Ref, value *ast.Term) {
	if e := c.find(ref); e != nil {
		if value != nil {
			e.value = value
		} else {
			e.undefined = true
		}
		return
	}
	f := c.top()
	if f.entries == nil {
		// A decision caches about a dozen results.
		f.entries = make([]cacheEntry, 0, 8)
	}
	if cap(f.terms)-len(f.terms) < len(ref) {
		f.terms = make([]*ast.Term, 0, max(32, 2*len(ref)))
	}
	start := len(f.terms)
	f.terms = append(f.terms, ref...)
	f.entries = append(f.entries, cacheEntry{ref: f.terms[start:len(f.terms):len(f.terms)], value: value, undefined: value == nil})
}

// Keys lists the refs cached with a value in the innermost frame.
func (c *evalCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.top().entries {
		if e.value != nil {
			keys = append(keys, e.ref)
		}
	}
	return keys
}

// readConstants evaluates, once, every complete rule whose value cannot
// depend on the input: neither it nor anything it depends on reads input
// or uses `with`, nor calls a nondeterministic builtin. A rule whose evaluation fails or is undefined is left out
// and is evaluated per request as before.
func readConstants(ctx context.Context, s *policySet) (*constants, error) {
	c := s.compiler
	constant := map[*ast.Rule]bool{}
	var isConstant func(r *ast.Rule, visiting map[*ast.Rule]bool) bool
	isConstant = func(r *ast.Rule, visiting map[*ast.Rule]bool) bool {
		if v, ok := constant[r]; ok {
			return v
		}
		if visiting[r] {
			return false // recursion is refused by the compiler; be safe
		}
		visiting[r] = true
		ok := !readsInput(r) && !callsNondeterministic(r)
		for dep := range c.Graph.Dependencies(r) {
			if !ok {
				break
			}
			if dr, isRule := dep.(*ast.Rule); isRule {
				ok = isConstant(dr, visiting)
			} else {
				ok = false
			}
		}
		for e := r.Else; ok && e != nil; e = e.Else {
			ok = isConstant(e, visiting)
		}
		constant[r] = ok
		return ok
	}
	out := &constants{}
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(c.Modules)) {
		for _, r := range c.Modules[name].Rules {
			// After compilation a rule's ref is its whole path from data.
			full := r.Ref().GroundPrefix()
			if len(r.Head.Args) > 0 || r.Head.RuleKind() != ast.SingleValue || len(full) != len(r.Ref()) ||
				!full[0].Equal(ast.DefaultRootDocument) {
				continue
			}
			key := full.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			rules := c.GetRulesExact(full)
			all := len(rules) > 0
			for _, rr := range rules {
				all = all && isConstant(rr, map[*ast.Rule]bool{})
			}
			if !all || len(c.GetRulesWithPrefix(full)) != len(rules) {
				continue
			}
			strs, ok := refStrings(full)
			if !ok {
				continue
			}
			t, err := s.evalConstant(ctx, full)
			if err != nil {
				return nil, err
			}
			if t != nil {
				out.put(strs, t)
			}
		}
	}
	return out, nil
}

// readsInput reports whether r refers to input or uses `with`.
func readsInput(r *ast.Rule) bool {
	found := false
	ast.WalkRefs(r, func(x ast.Ref) bool {
		found = found || x[0].Equal(ast.InputRootDocument)
		return found
	})
	ast.WalkExprs(r, func(e *ast.Expr) bool {
		found = found || len(e.With) > 0
		return found
	})
	return found
}

// callsNondeterministic reports whether r calls a builtin whose result may
// differ between calls with the same arguments (time.now_ns, rand.intn,
// http.send, uuid.rfc4122, ...): such a rule is evaluated per request.
func callsNondeterministic(r *ast.Rule) bool {
	found := false
	check := func(op ast.Ref) {
		if b, ok := ast.BuiltinMap[op.String()]; ok && b.Nondeterministic {
			found = true
		}
	}
	ast.WalkExprs(r, func(e *ast.Expr) bool {
		if e.IsCall() {
			check(e.Operator())
		}
		return found
	})
	ast.WalkTerms(r, func(t *ast.Term) bool {
		if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
			if op, ok := c[0].Value.(ast.Ref); ok {
				check(op)
			}
		}
		return found
	})
	return found
}

func refStrings(ref ast.Ref) ([]string, bool) {
	out := make([]string, 0, len(ref)-1)
	for _, t := range ref[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			return nil, false
		}
		out = append(out, string(s))
	}
	return out, true
}

// evalConstant evaluates ref without input; nil when it is undefined or
// fails (it then fails alike on every request and is left to them).
func (s *policySet) evalConstant(ctx context.Context, ref ast.Ref) (*ast.Term, error) {
	pq, err := s.prepare(ctx, ref)
	if err != nil {
		return nil, err
	}
	rs, err := pq.Eval(ctx, rego.EvalGenerateJSON(keepTerm), rego.EvalMetrics(noMetrics))
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) == 0 {
		return nil, nil //nolint:nilerr // left to per-request evaluation
	}
	t, _ := rs[0].Expressions[0].Value.(*ast.Term)
	return t, nil
}
