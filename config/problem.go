package config

import (
	"bytes"
	"cmp"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A Problem is one mistake in a configuration file.
type Problem struct {
	// Line and Column are 1-based, 0 when unknown: a syntax error has no
	// column, and a required key that is missing has the line of the
	// nearest enclosing key, or none when the file lacks that too.
	Line, Column int
	// Path names the key the way the file spells it, as in
	// "routes[1].host"; empty for the file as a whole.
	Path    string
	Message string
}

func (p Problem) text() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error is every problem in a configuration file, sorted by line, column
// and text. Its message has one line per problem,
// FILE:LINE:COLUMN: PATH: MESSAGE, leaving out what is unknown.
type Error struct {
	// File is the path given to Load; empty from Parse.
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		pos := e.File
		if p.Line > 0 {
			pos += ":" + strconv.Itoa(p.Line)
			if p.Column > 0 {
				pos += ":" + strconv.Itoa(p.Column)
			}
		}
		pos = strings.TrimPrefix(pos, ":")
		if pos != "" {
			b.WriteString(pos + ": ")
		}
		b.WriteString(p.text())
	}
	return b.String()
}

// sortProblems orders problems by line, column and text, and drops
// repeats.
func sortProblems(ps []Problem) []Problem {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column), strings.Compare(a.text(), b.text()))
	})
	return slices.Compact(ps)
}

var yamlErrorPrefix = regexp.MustCompile(`^yaml: (line \d+: )?`)

// syntaxProblem places a YAML syntax error on its line. yaml.v3 names the
// line where the enclosing block began rather than where parsing failed
// (and counts some from 0), so the line is found instead as the first one
// at which the file, cut off after it, fails in the same way.
func syntaxProblem(data []byte, err error) Problem {
	line := 0
	for n, end := 1, 0; end < len(data); n++ {
		if i := bytes.IndexByte(data[end:], '\n'); i >= 0 {
			end += i + 1
		} else {
			end = len(data)
		}
		var node yaml.Node
		if e := yaml.Unmarshal(data[:end], &node); e != nil && e.Error() == err.Error() {
			line = n
			break
		}
	}
	// The line yaml.v3 names would contradict the one found.
	return Problem{Line: line, Message: "not valid YAML: " + yamlErrorPrefix.ReplaceAllString(err.Error(), "")}
}

// locate finds the node a path names: the key of a mapping entry, the item
// of a list. A key missing from the file gives its nearest enclosing key
// that is there; none at all gives 0, 0.
func locate(root *yaml.Node, path string) (line, column int) {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	var at *yaml.Node
	for path != "" {
		n = resolve(n)
		if rest, ok := strings.CutPrefix(path, "["); ok {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				break
			}
			i, err := strconv.Atoi(rest[:end])
			if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				break
			}
			n, at, path = n.Content[i], n.Content[i], rest[end+1:]
		} else {
			key, value, rest := entry(n, path)
			if key == nil {
				break
			}
			n, at, path = value, key, rest
		}
		path = strings.TrimPrefix(path, ".")
	}
	if at == nil {
		return 0, 0
	}
	return at.Line, at.Column
}

// entry finds the entry of mapping n whose key begins path, the longest
// such key (a map key may contain dots), and returns the rest of path.
func entry(n *yaml.Node, path string) (key, value *yaml.Node, rest string) {
	if n.Kind != yaml.MappingNode {
		return nil, nil, ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		after, ok := strings.CutPrefix(path, k.Value)
		if !ok || (after != "" && after[0] != '.' && after[0] != '[') {
			continue
		}
		if key == nil || len(k.Value) > len(key.Value) {
			key, value, rest = k, n.Content[i+1], after
		}
	}
	return key, value, rest
}

// checker walks a YAML node tree against the Go type it decodes into, the
// way yaml.v3 decodes it, and reports each unknown key and each value of
// the wrong type at its own node.
type checker struct {
	problems []Problem
	// undecoded are paths whose value yaml.v3 leaves zero: their problem is
	// reported already, so the rules' complaints about the zero are not.
	undecoded []string
	// dropped are, by list path, the items yaml.v3 leaves out of the
	// decoded slice, which moves the later ones up.
	dropped map[string][]int
	// seen holds whether each node decodes as a type; an alias brings the
	// same node back, maybe many times or inside itself, and it is checked
	// once.
	seen map[visit]bool
	// merged are the mappings checked as merged into another (<<).
	merged map[visit]bool
}

type visit struct {
	n *yaml.Node
	t reflect.Type
}

func (c *checker) add(n *yaml.Node, path, format string, a ...any) {
	c.problems = append(c.problems, Problem{Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, a...)})
}

// wrongType reports that n cannot be decoded as want.
func (c *checker) wrongType(n *yaml.Node, path, want string) {
	c.add(n, path, "%s is not %s", describeNode(n), want)
	c.undecoded = append(c.undecoded, path)
}

// covers reports whether path lies at or under a value that did not decode.
func (c *checker) covers(path string) bool {
	for _, u := range c.undecoded {
		if u == "" || path == u || strings.HasPrefix(path, u+".") || strings.HasPrefix(path, u+"[") {
			return true
		}
	}
	return false
}

// filePath turns a path into the decoded File into one into the file,
// counting back the list items yaml.v3 left out.
func (c *checker) filePath(path string) string {
	if len(c.dropped) == 0 {
		return path
	}
	var b strings.Builder
	for {
		open := strings.IndexByte(path, '[')
		if open < 0 {
			break
		}
		end := strings.IndexByte(path[open:], ']')
		if end < 0 {
			break
		}
		b.WriteString(path[:open])
		i, err := strconv.Atoi(path[open+1 : open+end])
		if err == nil {
			for _, d := range c.dropped[b.String()] { // ascending
				if d <= i {
					i++
				}
			}
			fmt.Fprintf(&b, "[%d]", i)
		} else {
			b.WriteString(path[open : open+end+1])
		}
		path = path[open+end+1:]
	}
	return b.String() + path
}

// walk checks n against t and reports whether yaml.v3 decodes n as t at
// all: it leaves out a list item that does not.
func (c *checker) walk(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind == yaml.DocumentNode {
		ok := true
		for _, d := range n.Content {
			ok = c.walk(d, t, path) && ok
		}
		return ok
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return true
		}
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if c.seen == nil {
		c.seen = map[visit]bool{}
	}
	v := visit{n, t}
	if ok, seen := c.seen[v]; seen {
		return ok
	}
	c.seen[v] = true
	ok := c.check(n, t, path)
	c.seen[v] = ok
	return ok
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return true // yaml.v3 leaves the value zero
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.wrongType(n, path, "a mapping")
			return false
		}
		return c.mapping(n, t, path, nil)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.wrongType(n, path, "a list")
			return false
		}
		for i, item := range n.Content {
			if !c.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)) {
				if c.dropped == nil {
					c.dropped = map[string][]int{}
				}
				c.dropped[path] = append(c.dropped[path], i)
			}
		}
		if len(n.Content) > 0 && len(c.dropped[path]) == len(n.Content) {
			c.undecoded = append(c.undecoded, path) // nothing of the list is left
		}
		return true
	case reflect.Interface:
		return true
	}
	// yaml.v3 itself decides whether the value fits.
	if n.Decode(reflect.New(t).Interface()) != nil {
		c.wrongType(n, path, describeType(t))
		return false
	}
	return true
}

// mapping checks the entries of n, a mapping decoded into t, a struct or a
// map. It reports repeated keys, and returns false for them: yaml.v3
// decodes nothing of such a mapping. Merged is nil, or, when n is merged
// into another mapping (<<), the keys given already, which yaml.v3 skips.
func (c *checker) mapping(n *yaml.Node, t reflect.Type, path string, merged map[string]bool) bool {
	ok := true
	given := merged
	if given == nil {
		given = map[string]bool{}
	}
	first := map[string]*yaml.Node{}
	var merge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		// As yaml.v3 tells a merge key, and it uses only the last.
		if key.Kind == yaml.ScalarNode && key.Value == "<<" && (key.Tag == "" || key.Tag == "!" || key.ShortTag() == "!!merge") {
			merge = value
			continue
		}
		name := resolve(key).Value
		p := name
		if path != "" {
			p = path + "." + name
		}
		// As yaml.v3 compares keys: unresolved, by kind and text.
		if prev, seen := first[fmt.Sprint(key.Kind, key.Value)]; seen {
			c.add(key, p, "repeats the key of line %d", prev.Line)
			c.undecoded = append(c.undecoded, path)
			ok = false
			continue
		}
		first[fmt.Sprint(key.Kind, key.Value)] = key
		if merged != nil && given[name] {
			continue
		}
		given[name] = true
		c.entry(key, value, t, p)
	}
	if merge != nil {
		c.merge(merge, t, path, given)
	}
	return ok
}

// entry checks one entry of a mapping decoded into t.
func (c *checker) entry(key, value *yaml.Node, t reflect.Type, path string) {
	if t.Kind() == reflect.Map {
		c.walk(key, t.Key(), path)
		c.walk(value, t.Elem(), path)
		return
	}
	if !c.walk(key, reflect.TypeFor[string](), path) {
		return // yaml.v3 skips the entry
	}
	ft, ok := yamlFields(t)[resolve(key).Value]
	if !ok {
		c.add(key, path, "unknown key")
		return
	}
	c.walk(value, ft, path)
}

// resolve follows an alias to its node.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// merge checks the value of a merge key: a mapping or an alias of one, or
// a list of them. Anything else stops yaml.v3 decoding the whole file.
func (c *checker) merge(value *yaml.Node, t reflect.Type, path string, given map[string]bool) {
	maps := []*yaml.Node{value}
	if value.Kind == yaml.SequenceNode {
		maps = value.Content
	}
	for _, m := range maps {
		m = resolve(m)
		if m.Kind != yaml.MappingNode {
			c.add(m, path, "%s is not a mapping to merge", describeNode(m))
			c.undecoded = append(c.undecoded, "")
			continue
		}
		// A mapping merged again (an alias) is checked once; its keys
		// still count as given.
		v := visit{m, t}
		if c.merged == nil {
			c.merged = map[visit]bool{}
		}
		if c.merged[v] {
			for i := 0; i+1 < len(m.Content); i += 2 {
				given[resolve(m.Content[i]).Value] = true
			}
			continue
		}
		c.merged[v] = true
		c.mapping(m, t, path, given)
	}
}

// yamlFields maps the keys yaml.v3 decodes into struct type t to the
// fields' types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// describeType says what a value of type t looks like in YAML.
func describeType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "a duration such as 90s or 15m"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a whole number from 0 to %d", ^uint64(0)>>(64-t.Bits()))
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}
