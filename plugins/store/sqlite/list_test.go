package sqlite

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestStringList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`[]`, []string{}},
		{`["pwd"]`, []string{"pwd"}},
		{`["pwd","otp","sms"]`, []string{"pwd", "otp", "sms"}},
		{`["",""]`, []string{"", ""}},
		{`["a,b","c"]`, []string{"a,b", "c"}},
		{`["\u003cx\u003e","é"]`, []string{"<x>", "é"}},
		{`[ "pwd" , "otp" ]`, []string{"pwd", "otp"}},
	} {
		got, err := stringList(tc.in)
		if err != nil || !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("stringList(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{``, `[`, `["a"`, `["a",]`, `["a""b"]`, `[1]`, `["a"]x`, "[\"\x01\"]"} {
		if got, err := stringList(in); err == nil {
			t.Errorf("stringList(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzStringList checks that the fast path agrees with encoding/json.
func FuzzStringList(f *testing.F) {
	for _, s := range []string{`[]`, `["pwd","otp"]`, `["a\"b"]`, `["",",",""]`, `[","]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []string
		wantErr := json.Unmarshal([]byte(s), &want)
		got, err := stringList(s)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("stringList(%q): error %v, encoding/json %v", s, err, wantErr)
		}
		if err == nil && wantErr == nil && !slices.Equal(got, want) {
			t.Fatalf("stringList(%q) = %q, encoding/json %q", s, got, want)
		}
	})
}
