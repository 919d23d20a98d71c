package policies

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

const examplesDir = "../testdata/policies"

// exampleNames lists testdata/policies/NAME.json, each with a
// NAME.expected.json.
func exampleNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.expected.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s: %v", examplesDir, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".expected.json"))
	}
	return names
}

func readJSON(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestExamplesDecide checks that each example input yields the decision
// named in its NAME.expected.json. Fields absent from a decision count as
// false, zero or empty.
func TestExamplesDecide(t *testing.T) {
	e := newEngine(t, Config{})
	for _, name := range exampleNames(t) {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(examplesDir, name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var in Input
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				t.Fatalf("example is not a policies.Input: %v", err)
			}
			d := e.Decide(t.Context(), in)
			b, _ := json.Marshal(d)
			var got map[string]any
			_ = json.Unmarshal(b, &got)
			want := readJSON(t, filepath.Join(examplesDir, name+".expected.json")).(map[string]any)
			for k, w := range want {
				if g := got[k]; !sameJSON(g, w) {
					t.Errorf("%s = %v, want %v (decision %+v)", k, g, w, d)
				}
			}
		})
	}
}

func sameJSON(got, want any) bool {
	if got == nil {
		switch w := want.(type) {
		case bool:
			return !w
		case float64:
			return w == 0
		case []any:
			return len(w) == 0
		case string:
			return w == ""
		}
	}
	return reflect.DeepEqual(got, want)
}

// TestExamplesMatchRegoTests keeps testdata/policies in step with
// rego/examples_test.rego, whose tests check the same inputs and decisions.
func TestExamplesMatchRegoTests(t *testing.T) {
	rs, err := rego.New(
		rego.Query("data.portcullis.examples_test.examples"),
		rego.Load([]string{"../rego"}, nil),
	).Eval(t.Context())
	if err != nil || len(rs) != 1 {
		t.Fatalf("eval examples: %v (%d results)", err, len(rs))
	}
	examples := rs[0].Expressions[0].Value.(map[string]any)
	names := exampleNames(t)
	var regoNames []string
	for name := range examples {
		regoNames = append(regoNames, name)
	}
	slices.Sort(regoNames)
	if !slices.Equal(names, regoNames) {
		t.Fatalf("examples differ:\n testdata: %v\n rego:     %v", names, regoNames)
	}
	for _, name := range names {
		ex := examples[name].(map[string]any)
		for _, part := range []struct{ key, file string }{
			{"input", name + ".json"},
			{"expected", name + ".expected.json"},
		} {
			// Compare as JSON: Rego numbers arrive as json.Number.
			b, _ := json.Marshal(ex[part.key])
			var fromRego any
			_ = json.Unmarshal(b, &fromRego)
			fromFile := readJSON(t, filepath.Join(examplesDir, part.file))
			if !reflect.DeepEqual(fromRego, fromFile) {
				t.Errorf("%s differs from examples[%q].%s in rego/examples_test.rego", part.file, name, part.key)
			}
		}
	}
}
