// Package redact hides what the delivery plugins must not log: the full
// destination of a message, and anything in a provider's answer that may
// quote the message or its destination.
package redact

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Destination is to as it may be logged: an email address keeps the first
// character of its local part and its domain ("a***@example.com"), anything
// else is treated as a phone number and keeps only its last two digits
// ("+*********23").
func Destination(to string) string {
	if at := strings.LastIndexByte(to, '@'); at >= 0 {
		local, domain := to[:at], to[at+1:]
		first, _ := utf8.DecodeRuneInString(local)
		if local == "" || first == utf8.RuneError {
			return "***@" + domain
		}
		return string(first) + "***@" + domain
	}
	return Digits(to, 2)
}

// Digits replaces every ASCII digit of s with '*' except the last keep.
func Digits(s string, keep int) string {
	n := 0
	for i := range len(s) {
		if isDigit(s[i]) {
			n++
		}
	}
	b := []byte(s)
	for i := range b {
		if isDigit(b[i]) {
			if n > keep {
				b[i] = '*'
			}
			n--
		}
	}
	return string(b)
}

// MaxSnippet bounds the bytes of a provider's answer that Snippet keeps.
const MaxSnippet = 200

// Snippet makes a provider's answer (an error body, an error message) fit
// for an error string: at most MaxSnippet bytes, on one line, with every
// occurrence of the given secrets (the message text, the destination)
// replaced, and every run of four or more digits masked, since a code or a
// phone number may be quoted in part or in another format.
func Snippet(b []byte, secrets ...string) string {
	s := string(b)
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = maskDigitRuns(s, 4)
	truncated := false
	if len(s) > MaxSnippet {
		s = s[:MaxSnippet]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		truncated = true
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if truncated {
		s += "…"
	}
	return s
}

// maskDigitRuns replaces each run of at least min consecutive ASCII digits
// with asterisks.
func maskDigitRuns(s string, min int) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		if !isDigit(b[i]) {
			i++
			continue
		}
		j := i
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if j-i >= min {
			for k := i; k < j; k++ {
				b[k] = '*'
			}
		}
		i = j
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
