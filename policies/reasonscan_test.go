package policies

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// regoReasons is every reason code a set of Rego modules can answer or
// mentions, with where (file:row), as scanReasons finds them.
type regoReasons struct {
	// emitted are codes a decision's "reason" can carry.
	emitted map[string][]string
	// referenced are codes a reason is compared with or looked up by
	// (refusal == "x", outcome.messages, ip.priority).
	referenced map[string][]string
	// dynamic are reasons built at run time, as a pattern with * for each
	// part that is not a literal ("ip_*").
	dynamic map[string][]string
	// unresolved are reason values the scan cannot follow. A scan of the
	// shipped policies must have none.
	unresolved []string
	// messages is outcome.messages: reason code → message key.
	messages map[string]string
}

// scanReasons finds the reason codes in modules without evaluating them.
//
// It follows values into decisions: a reason is the value of a "reason" key
// in an object, or of a rule or variable named reason, refusal, denial or
// denials (or *_refusal). From there it follows string literals, set and
// array literals, variables (bound by :=, = or some ... in), rules and
// functions (every definition and else branch), function parameters (to
// the arguments of every call, so outcome.deny("x") counts), min/max and
// object.get. concat with literal parts is recorded as a pattern in
// dynamic; anything else (input, data, other built-ins) is unresolved, so
// a new way of making a reason fails the test until the scan learns it.
//
// It then collects the codes a reason is compared with (==, !=, in) and
// the keys of the objects a reason is looked up in (object.get(table,
// reason, _) or table[reason]).
func scanReasons(modules map[string]*ast.Module) regoReasons {
	s := &reasonScan{
		rules:   map[string][]*ast.Rule{},
		calls:   map[string][]callSite{},
		visited: map[string]bool{},
		params:  map[paramKey]bool{},
		out: regoReasons{
			emitted:    map[string][]string{},
			referenced: map[string][]string{},
			dynamic:    map[string][]string{},
			messages:   map[string]string{},
		},
	}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		s.modules = append(s.modules, modules[name])
	}
	for _, m := range s.modules {
		for _, r := range m.Rules {
			key := ruleKey(m, r)
			s.rules[key] = append(s.rules[key], r)
		}
	}
	s.walkAll(s.indexCall)
	s.walkAll(s.seedObject)
	for _, m := range s.modules {
		for _, r := range m.Rules {
			if reasonName.MatchString(headName(r)) {
				s.resolveRule(ruleKey(m, r))
			}
		}
	}
	s.walkAll(s.seedVariable)
	s.walkAll(s.collectReferences)
	for _, r := range s.rules["data.portcullis.outcome.messages"] {
		if obj, ok := r.Head.Value.Value.(ast.Object); ok {
			obj.Foreach(func(k, v *ast.Term) {
				ks, kok := k.Value.(ast.String)
				vs, vok := v.Value.(ast.String)
				if kok && vok {
					s.out.messages[string(ks)] = string(vs)
				}
			})
		}
	}
	return s.out
}

// reasonName matches the names of rules and variables that hold a reason.
var reasonName = regexp.MustCompile(`^(reason|refusal|denials?|[a-z0-9_]+_refusal)$`)

type reasonScan struct {
	modules []*ast.Module
	rules   map[string][]*ast.Rule // rule path → its definitions
	calls   map[string][]callSite  // function path → its calls
	visited map[string]bool        // rules whose values were followed
	params  map[paramKey]bool      // function parameters that carry a reason
	out     regoReasons
}

type paramKey struct {
	fn string
	i  int
}

type callSite struct {
	args []*ast.Term
	sc   scope
}

// scope is where a term is read: the module, the rule definition (or else
// branch) and the bodies enclosing it, innermost last.
type scope struct {
	module *ast.Module
	top    *ast.Rule // the first definition of the chain, holding the args
	rule   *ast.Rule
	bodies []ast.Body
}

func (sc scope) with(b ast.Body) scope {
	sc.bodies = append(slices.Clip(sc.bodies), b)
	return sc
}

func ruleKey(m *ast.Module, r *ast.Rule) string {
	return localPath(m, r.Head.Ref().GroundPrefix()).String()
}

// localPath is the path of ref, whose head names a rule of m's package.
func localPath(m *ast.Module, ref ast.Ref) ast.Ref {
	head, _ := ref[0].Value.(ast.Var)
	return m.Package.Path.Append(ast.StringTerm(string(head))).Concat(ref[1:])
}

func headName(r *ast.Rule) string {
	if v, ok := r.Head.Ref()[0].Value.(ast.Var); ok && len(r.Head.Ref()) == 1 {
		return string(v)
	}
	return ""
}

func where(t *ast.Term) string {
	if t == nil || t.Location == nil {
		return "?"
	}
	return fmt.Sprintf("%s:%d", t.Location.File, t.Location.Row)
}

func add(m map[string][]string, code, at string) {
	if !slices.Contains(m[code], at) {
		m[code] = append(m[code], at)
	}
}

// walkAll calls visit for every term and expression of every rule, with
// its scope, comprehension bodies included.
func (s *reasonScan) walkAll(visit func(any, scope)) {
	for _, m := range s.modules {
		for _, top := range m.Rules {
			for r := top; r != nil; r = r.Else {
				sc := scope{module: m, top: top, rule: r, bodies: []ast.Body{r.Body}}
				for _, t := range []*ast.Term{r.Head.Key, r.Head.Value} {
					s.walkTerm(t, sc, visit)
				}
				s.walkBody(r.Body, sc, visit)
			}
		}
	}
}

func (s *reasonScan) walkBody(b ast.Body, sc scope, visit func(any, scope)) {
	for _, e := range b {
		visit(e, sc)
		switch ts := e.Terms.(type) {
		case *ast.Term:
			s.walkTerm(ts, sc, visit)
		case []*ast.Term:
			for _, t := range ts {
				s.walkTerm(t, sc, visit)
			}
		case *ast.SomeDecl:
			for _, t := range ts.Symbols {
				s.walkTerm(t, sc, visit)
			}
		case *ast.Every:
			inner := sc.with(ts.Body)
			s.walkTerm(ts.Domain, sc, visit)
			s.walkBody(ts.Body, inner, visit)
		}
	}
}

func (s *reasonScan) walkTerm(t *ast.Term, sc scope, visit func(any, scope)) {
	if t == nil {
		return
	}
	visit(t, sc)
	switch v := t.Value.(type) {
	case ast.Object:
		v.Foreach(func(k, val *ast.Term) {
			s.walkTerm(k, sc, visit)
			s.walkTerm(val, sc, visit)
		})
	case *ast.Array:
		v.Foreach(func(e *ast.Term) { s.walkTerm(e, sc, visit) })
	case ast.Set:
		v.Foreach(func(e *ast.Term) { s.walkTerm(e, sc, visit) })
	case ast.Call:
		for _, e := range v {
			s.walkTerm(e, sc, visit)
		}
	case ast.Ref:
		for _, e := range v {
			s.walkTerm(e, sc, visit)
		}
	case *ast.ArrayComprehension:
		inner := sc.with(v.Body)
		s.walkTerm(v.Term, inner, visit)
		s.walkBody(v.Body, inner, visit)
	case *ast.SetComprehension:
		inner := sc.with(v.Body)
		s.walkTerm(v.Term, inner, visit)
		s.walkBody(v.Body, inner, visit)
	case *ast.ObjectComprehension:
		inner := sc.with(v.Body)
		s.walkTerm(v.Key, inner, visit)
		s.walkTerm(v.Value, inner, visit)
		s.walkBody(v.Body, inner, visit)
	}
}

// target resolves ref, read in sc, to the rule it names and what follows
// the rule's path; ok is false when it names no rule.
func (s *reasonScan) target(ref ast.Ref, sc scope) (key string, rest ast.Ref, ok bool) {
	full := ref
	if head, isVar := ref[0].Value.(ast.Var); isVar {
		switch {
		case ast.RootDocumentNames.Contains(ref[0]):
		case s.imported(head, sc) != nil:
			full = s.imported(head, sc).Concat(ref[1:])
		default:
			full = localPath(sc.module, ref)
		}
	}
	for i := len(full); i > 0; i-- {
		if k := full[:i].String(); len(s.rules[k]) > 0 {
			return k, full[i:], true
		}
	}
	return "", nil, false
}

func (s *reasonScan) imported(alias ast.Var, sc scope) ast.Ref {
	for _, imp := range sc.module.Imports {
		path, ok := imp.Path.Value.(ast.Ref)
		if !ok || len(path) < 2 || !path[0].Equal(ast.DefaultRootDocument) {
			continue
		}
		name := imp.Alias
		if name == "" {
			if s, ok := path[len(path)-1].Value.(ast.String); ok {
				name = ast.Var(s)
			}
		}
		if name == alias {
			return path
		}
	}
	return nil
}

func (s *reasonScan) indexCall(x any, sc scope) {
	var call []*ast.Term
	switch x := x.(type) {
	case *ast.Term:
		call, _ = x.Value.(ast.Call)
	case *ast.Expr:
		call, _ = x.Terms.([]*ast.Term)
	}
	if len(call) == 0 {
		return
	}
	if op, ok := call[0].Value.(ast.Ref); ok {
		if key, rest, ok := s.target(op, sc); ok && len(rest) == 0 {
			s.calls[key] = append(s.calls[key], callSite{args: call[1:], sc: sc})
		}
	}
}

// seedObject follows the value of every "reason" key.
func (s *reasonScan) seedObject(x any, sc scope) {
	t, ok := x.(*ast.Term)
	if !ok {
		return
	}
	if obj, ok := t.Value.(ast.Object); ok {
		if v := obj.Get(ast.StringTerm("reason")); v != nil {
			s.resolve(v, sc, 0)
		}
	}
}

// seedVariable follows the value of every variable named like a reason.
func (s *reasonScan) seedVariable(x any, sc scope) {
	e, ok := x.(*ast.Expr)
	if !ok || !(e.IsAssignment() || e.IsEquality()) {
		return
	}
	for i, t := range []*ast.Term{e.Operand(0), e.Operand(1)} {
		if v, ok := t.Value.(ast.Var); ok && reasonName.MatchString(string(v)) {
			s.resolve(e.Operand(1-i), sc, 0)
		}
	}
}

const maxDepth = 64

// resolve records every reason code t, read in sc, can be.
func (s *reasonScan) resolve(t *ast.Term, sc scope, depth int) {
	if depth > maxDepth {
		s.out.unresolved = append(s.out.unresolved, where(t)+": too deep")
		return
	}
	depth++
	switch v := t.Value.(type) {
	case ast.String:
		add(s.out.emitted, string(v), where(t))
	case ast.Number, ast.Boolean, ast.Null:
		// Not a code.
	case ast.Set:
		v.Foreach(func(e *ast.Term) { s.resolve(e, sc, depth) })
	case *ast.Array:
		v.Foreach(func(e *ast.Term) { s.resolve(e, sc, depth) })
	case *ast.SetComprehension:
		s.resolve(v.Term, sc.with(v.Body), depth)
	case *ast.ArrayComprehension:
		s.resolve(v.Term, sc.with(v.Body), depth)
	case ast.Var:
		s.resolveVar(t, v, sc, depth)
	case ast.Ref:
		if _, isCall := v[0].Value.(ast.Call); isCall {
			// min({...})[1]: follow the call; an element of it is a part
			// of what it gives.
			s.resolve(v[0], sc, depth)
			return
		}
		key, rest, ok := s.target(v, sc)
		if !ok || len(rest) > 0 {
			s.out.unresolved = append(s.out.unresolved, where(t)+": "+v.String())
			return
		}
		s.resolveRule(key)
	case ast.Call:
		s.resolveCall(t, v, sc, depth)
	default:
		s.out.unresolved = append(s.out.unresolved, where(t)+": "+t.String())
	}
}

func (s *reasonScan) resolveVar(t *ast.Term, v ast.Var, sc scope, depth int) {
	if v.IsWildcard() {
		s.out.unresolved = append(s.out.unresolved, where(t)+": "+string(v))
		return
	}
	if bound := bindings(v, sc); len(bound) > 0 {
		for _, b := range bound {
			s.resolve(b, sc, depth)
		}
		return
	}
	if i := paramIndex(v, sc); i >= 0 {
		s.resolveParam(ruleKey(sc.module, sc.top), i, depth)
		return
	}
	if key, rest, ok := s.target(ast.Ref{t}, sc); ok && len(rest) == 0 {
		s.resolveRule(key)
		return
	}
	s.out.unresolved = append(s.out.unresolved, where(t)+": "+string(v))
}

// bindings are the terms v is bound to in sc's bodies: v := x, v = x, and
// the collection x of some v in x (the codes of its elements).
func bindings(v ast.Var, sc scope) []*ast.Term {
	var out []*ast.Term
	for _, b := range slices.Backward(sc.bodies) {
		for _, e := range b {
			if e.IsAssignment() || e.IsEquality() {
				for i, t := range []*ast.Term{e.Operand(0), e.Operand(1)} {
					if t.Value.Compare(v) == 0 {
						out = append(out, e.Operand(1-i))
					}
				}
			}
			some, ok := e.Terms.(*ast.SomeDecl)
			if !ok {
				continue
			}
			for _, sym := range some.Symbols {
				call, ok := sym.Value.(ast.Call)
				if !ok {
					continue
				}
				switch {
				case call[0].Value.Compare(ast.Member.Ref()) == 0:
					if call[1].Value.Compare(v) == 0 {
						out = append(out, call[2])
					}
				case call[0].Value.Compare(ast.MemberWithKey.Ref()) == 0:
					if call[2].Value.Compare(v) == 0 {
						out = append(out, call[3])
					}
				}
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return out
}

func paramIndex(v ast.Var, sc scope) int {
	for i, a := range sc.top.Head.Args {
		if a.Value.Compare(v) == 0 {
			return i
		}
	}
	return -1
}

// resolveParam follows argument i of every call of function fn.
func (s *reasonScan) resolveParam(fn string, i, depth int) {
	k := paramKey{fn, i}
	if s.params[k] {
		return
	}
	s.params[k] = true
	for _, c := range s.calls[fn] {
		if i < len(c.args) {
			s.resolve(c.args[i], c.sc, depth)
		}
	}
}

// resolveRule follows every definition of the rule at key.
func (s *reasonScan) resolveRule(key string) {
	if s.visited[key] {
		return
	}
	s.visited[key] = true
	for _, top := range s.rules[key] {
		m := s.moduleOf(top)
		for r := top; r != nil; r = r.Else {
			sc := scope{module: m, top: top, rule: r, bodies: []ast.Body{r.Body}}
			v := r.Head.Value
			if v == nil {
				v = r.Head.Key // a contains rule
			}
			if v != nil {
				s.resolve(v, sc, 0)
			}
		}
	}
}

func (s *reasonScan) moduleOf(r *ast.Rule) *ast.Module {
	for _, m := range s.modules {
		if slices.Contains(m.Rules, r) {
			return m
		}
	}
	panic("rule outside every module")
}

func (s *reasonScan) resolveCall(t *ast.Term, call ast.Call, sc scope, depth int) {
	op, _ := call[0].Value.(ast.Ref)
	if key, rest, ok := s.target(op, sc); ok && len(rest) == 0 {
		s.resolveRule(key)
		return
	}
	args := call[1:]
	switch op.String() {
	case ast.Concat.Name:
		s.dynamic(t, args)
	case ast.Min.Name, ast.Max.Name:
		s.resolve(args[0], sc, depth)
	case ast.ObjectGet.Name:
		// object.get(obj, key, default): a value of obj, or default.
		s.resolveValues(args[0], sc, depth)
		s.resolve(args[2], sc, depth)
	default:
		s.out.unresolved = append(s.out.unresolved, where(t)+": "+t.String())
	}
}

// resolveValues follows the values of an object literal, or of the rules
// that term names.
func (s *reasonScan) resolveValues(t *ast.Term, sc scope, depth int) {
	for _, obj := range s.objects(t, sc) {
		obj.Foreach(func(_, v *ast.Term) { s.resolve(v, sc, depth) })
	}
}

// objects are the object literals t is, or its rules' values are.
func (s *reasonScan) objects(t *ast.Term, sc scope) []ast.Object {
	if obj, ok := t.Value.(ast.Object); ok {
		return []ast.Object{obj}
	}
	var ref ast.Ref
	switch v := t.Value.(type) {
	case ast.Var:
		ref = ast.Ref{t}
	case ast.Ref:
		ref = v
	default:
		return nil
	}
	key, rest, ok := s.target(ref, sc)
	if !ok || len(rest) > 0 {
		return nil
	}
	var out []ast.Object
	for _, r := range s.rules[key] {
		for ; r != nil; r = r.Else {
			if r.Head.Value != nil {
				if obj, ok := r.Head.Value.Value.(ast.Object); ok {
					out = append(out, obj)
				}
			}
		}
	}
	return out
}

// dynamic records concat(sep, [parts...]) as a pattern.
func (s *reasonScan) dynamic(t *ast.Term, args []*ast.Term) {
	sep, ok1 := args[0].Value.(ast.String)
	parts, ok2 := args[1].Value.(*ast.Array)
	if !ok1 || !ok2 {
		s.out.unresolved = append(s.out.unresolved, where(t)+": "+t.String())
		return
	}
	var pattern []string
	parts.Foreach(func(p *ast.Term) {
		if str, ok := p.Value.(ast.String); ok {
			pattern = append(pattern, string(str))
		} else {
			pattern = append(pattern, "*")
		}
	})
	add(s.out.dynamic, strings.Join(pattern, string(sep)), where(t))
}

// isReason reports whether t, read in sc, holds a reason: a rule or
// function the scan followed, a parameter it followed into, or a variable
// bound to one of those.
func (s *reasonScan) isReason(t *ast.Term, sc scope, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch v := t.Value.(type) {
	case ast.Var:
		if v.IsWildcard() {
			return false
		}
		if bound := bindings(v, sc); len(bound) > 0 {
			return slices.ContainsFunc(bound, func(b *ast.Term) bool { return s.isReason(b, sc, depth+1) })
		}
		if i := paramIndex(v, sc); i >= 0 {
			return s.params[paramKey{ruleKey(sc.module, sc.top), i}]
		}
		key, rest, ok := s.target(ast.Ref{t}, sc)
		return ok && len(rest) == 0 && s.visited[key]
	case ast.Ref:
		key, rest, ok := s.target(v, sc)
		return ok && len(rest) == 0 && s.visited[key]
	case ast.Call:
		op, _ := v[0].Value.(ast.Ref)
		key, rest, ok := s.target(op, sc)
		return ok && len(rest) == 0 && s.visited[key]
	}
	return false
}

// collectReferences records the codes a reason is compared with and the
// keys of the tables it is looked up in.
func (s *reasonScan) collectReferences(x any, sc scope) {
	switch x := x.(type) {
	case *ast.Expr:
		if !x.IsCall() {
			return
		}
		op := x.Operator().String()
		if op != ast.Equal.Name && op != ast.NotEqual.Name && op != ast.Member.Name {
			return
		}
		a, b := x.Operand(0), x.Operand(1)
		if op == ast.Member.Name {
			if s.isReason(a, sc, 0) {
				s.literals(b)
			}
			return
		}
		if s.isReason(a, sc, 0) {
			s.literals(b)
		}
		if s.isReason(b, sc, 0) {
			s.literals(a)
		}
	case *ast.Term:
		switch v := x.Value.(type) {
		case ast.Call:
			if v[0].Value.Compare(ast.ObjectGet.Ref()) == 0 && len(v) == 4 && s.isReason(v[2], sc, 0) {
				s.tableKeys(v[1], sc)
			}
		case ast.Ref:
			if len(v) >= 2 && s.isReason(v[len(v)-1], sc, 0) {
				s.tableKeys(ast.NewTerm(v[:len(v)-1]), sc)
			}
		}
	}
}

// literals records the strings of t (a string, or a set or array literal).
func (s *reasonScan) literals(t *ast.Term) {
	switch v := t.Value.(type) {
	case ast.String:
		add(s.out.referenced, string(v), where(t))
	case ast.Set:
		v.Foreach(s.literals)
	case *ast.Array:
		v.Foreach(s.literals)
	}
}

func (s *reasonScan) tableKeys(t *ast.Term, sc scope) {
	for _, obj := range s.objects(t, sc) {
		obj.Foreach(func(k, _ *ast.Term) {
			if str, ok := k.Value.(ast.String); ok {
				add(s.out.referenced, string(str), where(k))
			}
		})
	}
}
