package redact

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestDestination(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+447700900123", "+**********23"},
		{"+1 (555) 010-0199", "+* (***) ***-**99"},
		{"alice@example.com", "a***@example.com"},
		{"Élodie@example.fr", "É***@example.fr"},
		{"@example.com", "***@example.com"},
		{"", ""},
		{"7", "7"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := Destination(tc.in); got != tc.want {
				t.Errorf("Destination(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSnippet(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		secrets []string
		want    string
	}{
		{"plain", "upstream down", nil, "upstream down"},
		{"secret replaced", `{"text":"hello there"}`, []string{"hello there"}, `{"text":"[redacted]"}`},
		{"digit runs masked", "code 482913, error 503, id 12", nil, "code ******, error 503, id 12"},
		{"control characters", "line one\r\nline two\x00", nil, "line one  line two"},
		{"empty secret ignored", "abc", []string{""}, "abc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Snippet([]byte(tc.in), tc.secrets...); got != tc.want {
				t.Errorf("Snippet = %q, want %q", got, tc.want)
			}
		})
	}
	long := Snippet([]byte(strings.Repeat("é", 500)))
	if !strings.HasSuffix(long, "…") || len(long) > MaxSnippet+len("…") || !utf8.ValidString(long) {
		t.Errorf("long snippet %q (%d bytes)", long, len(long))
	}
}

func FuzzSnippet(f *testing.F) {
	f.Add([]byte(`{"code":21211,"message":"The 'To' number +447700900123 is not valid"}`), "+447700900123")
	f.Add([]byte("482913 is your code\r\n"), "482913 is your code")
	f.Add([]byte{0xff, '1', '2', '3', '4', 0xc3}, "")
	f.Fuzz(func(t *testing.T, b []byte, secret string) {
		s := Snippet(b, secret)
		if len(s) > MaxSnippet+len("…") {
			t.Errorf("snippet is %d bytes", len(s))
		}
		if !utf8.ValidString(s) {
			t.Errorf("snippet %q is not UTF-8", s)
		}
		run := 0
		for _, r := range s {
			if unicode.IsControl(r) {
				t.Fatalf("snippet %q has a control character", s)
			}
			if r >= '0' && r <= '9' {
				run++
				if run >= 4 {
					t.Fatalf("snippet %q keeps a run of digits", s)
				}
			} else {
				run = 0
			}
		}
	})
}
