package gateway_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The gateway emits reason codes (in the JSON API, logs and metrics) only
// through the constants of the shared list in package policies, whose test
// checks the list against the Rego modules and docs/policies.md. This test
// closes the loop on the Go side: no reason code is spelt as a literal
// anywhere in the gateway's code, so none can escape the list.
func TestGatewayReasonsComeFromTheSharedList(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, bad := range literalReasons(fset, f) {
			t.Errorf("%s: reason code %s is spelt as a literal; use a policies.Reason constant (and add it to the list if it is new)", bad.pos, bad.code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The scan finds each way a literal reason could be written.
func TestReasonScanCatchesLiterals(t *testing.T) {
	src := `package p
func f(d D) error {
	_ = &web.Error{Status: 403, Reason: "made_up_one"}
	_ = web.Forbidden("made_up_two", nil)
	if d.Reason == "made_up_three" {
	}
	switch d.Reason {
	case "made_up_four", policies.ReasonCSRF:
	}
	_ = web.Forbidden(policies.ReasonCSRF, nil)
	return nil
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, bad := range literalReasons(fset, f) {
		got = append(got, bad.code)
	}
	want := `"made_up_one" "made_up_two" "made_up_three" "made_up_four"`
	if strings.Join(got, " ") != want {
		t.Fatalf("found %v, want %s", got, want)
	}
}

type literalReason struct {
	pos  token.Position
	code string
}

// literalReasons finds string literals used as reason codes: a Reason field
// in a composite literal, the reason argument of web.Forbidden, and the
// operand compared with (or switched on against) a .Reason.
func literalReasons(fset *token.FileSet, f *ast.File) []literalReason {
	var out []literalReason
	add := func(e ast.Expr) {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if _, err := strconv.Unquote(lit.Value); err == nil {
				out = append(out, literalReason{fset.Position(lit.Pos()), lit.Value})
			}
		}
	}
	isReason := func(e ast.Expr) bool {
		sel, ok := e.(*ast.SelectorExpr)
		return ok && sel.Sel.Name == "Reason"
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Reason" {
				add(n.Value)
			}
		case *ast.CallExpr:
			name := ""
			switch fn := n.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			}
			if name == "Forbidden" && len(n.Args) > 0 {
				add(n.Args[0])
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				if isReason(n.X) {
					add(n.Y)
				}
				if isReason(n.Y) {
					add(n.X)
				}
			}
		case *ast.SwitchStmt:
			if n.Tag != nil && isReason(n.Tag) {
				for _, c := range n.Body.List {
					for _, e := range c.(*ast.CaseClause).List {
						add(e)
					}
				}
			}
		}
		return true
	})
	return out
}
