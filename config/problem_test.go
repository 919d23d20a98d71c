package config

import (
	"os"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzChecker: the walk over the node tree finds a value that does not
// decode exactly when yaml.v3 fails to decode the file into File, so that
// nothing yaml.v3 refuses goes unplaced and nothing it accepts is refused.
func FuzzChecker(f *testing.F) {
	if b, err := os.ReadFile("../testdata/portcullis.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"routes: [x, {name: a}]\nsession: {idle_timeout: soon}",
		"a: &a {b: 1}\nlisten: {<<: *a}",
		"listen: {<<: [{https: x}, {admin: y}]}",
		"password: {parallelism: 300}\npolicies: {watch: maybe}",
		"identity: {headers: {a: 1, a: 2}}",
		"routes: [{name: a, name: b}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var root yaml.Node
		if yaml.Unmarshal(b, &root) != nil || root.Kind == 0 {
			return
		}
		var c checker
		c.walk(&root, reflect.TypeFor[File](), "")
		var file File
		err := decode(&root, &file)
		if (err == nil) != (len(c.undecoded) == 0) {
			t.Fatalf("yaml.v3: %v\nchecker: %v", err, &Error{Problems: c.problems})
		}
	})
}
