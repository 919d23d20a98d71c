package geoiptest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedDatabasesAreCurrent fails when the databases in
// testdata/geoip differ from what Generate writes, so the committed files
// cannot drift from the contents declared here.
func TestCommittedDatabasesAreCurrent(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{AnonymousIPFile, CountryFile} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "geoip", name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("testdata/geoip/%s is out of date; regenerate with: go run ./testdata/geoip/gen", name)
			}
		})
	}
}

func TestGenerateIsReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if err := Generate(a); err != nil {
		t.Fatal(err)
	}
	if err := Generate(b); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{AnonymousIPFile, CountryFile} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s: two runs of Generate differ", name)
		}
	}
}
