package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDisplayPathIsRelativeInsideTheWorkingDirectory(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	for _, tc := range []struct{ in, want string }{
		{"portcullis-demo", "portcullis-demo"},
		{filepath.Join(wd, "portcullis-demo"), "portcullis-demo"},
		{filepath.Join(wd, "a", "b"), filepath.Join("a", "b")},
		{outside, outside},
		{"../elsewhere", "../elsewhere"},
	} {
		if got := displayPath(tc.in); got != tc.want {
			t.Errorf("displayPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
