package credential

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

func testCodes(t testing.TB, r io.Reader) *Codes {
	t.Helper()
	c, err := NewCodes(bytes.Repeat([]byte{7}, MinCodeKeyLen), r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// draws is a randomness source that returns the given 32-bit values, big
// endian, then fails.
func draws(vs ...uint32) io.Reader {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return bytes.NewReader(b)
}

func TestNewCodesRefusesShortKey(t *testing.T) {
	for _, n := range []int{0, 16, MinCodeKeyLen - 1} {
		if _, err := NewCodes(make([]byte, n), rand.Reader); err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
			t.Errorf("NewCodes with a %d-byte key: err = %v, want a key-length error", n, err)
		}
	}
	if _, err := NewCodes(make([]byte, MinCodeKeyLen), nil); err == nil {
		t.Error("NewCodes accepted a nil randomness source")
	}
	if _, err := NewCodes(make([]byte, MinCodeKeyLen), rand.Reader); err != nil {
		t.Errorf("NewCodes with a 32-byte key: %v", err)
	}
}

func TestGenerateIsUniform(t *testing.T) {
	const n = 100_000
	c := testCodes(t, mrand.NewChaCha8([32]byte{1})) // fixed seed: not flaky
	var counts [CodeDigits][10]int
	leadingZeros := 0
	seen := make(map[string]bool, n)
	for range n {
		code, err := c.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != CodeDigits {
			t.Fatalf("code %q has %d characters", code, len(code))
		}
		for i, d := range []byte(code) {
			if d < '0' || d > '9' {
				t.Fatalf("code %q is not all digits", code)
			}
			counts[i][d-'0']++
		}
		if code[0] == '0' {
			leadingZeros++
		}
		seen[code] = true
	}
	// Chi-squared with 9 degrees of freedom: 27.88 is the 0.1% tail.
	for pos, cs := range counts {
		chi2 := 0.0
		for _, got := range cs {
			d := float64(got) - n/10
			chi2 += d * d / (n / 10)
		}
		if chi2 > 27.88 {
			t.Errorf("digit position %d: counts %v, chi-squared %.1f: not uniform", pos, cs, chi2)
		}
	}
	if leadingZeros < n/10*9/10 {
		t.Errorf("%d of %d codes start with 0, want about %d", leadingZeros, n, n/10)
	}
	// 100k draws from 10^6 values: about 95k distinct expected.
	if len(seen) < 90_000 {
		t.Errorf("only %d distinct codes in %d", len(seen), n)
	}
}

func TestGenerateRejectsBiasedDraws(t *testing.T) {
	// 2^32 = 4294 * 10^6 + 967296: draws from 4294000000 up would make
	// codes 000000..967295 more likely under a plain modulo.
	const limit = 4_294_000_000
	for _, tc := range []struct {
		name  string
		draws []uint32
		want  string
	}{
		{"first draw accepted", []uint32{123456}, "123456"},
		{"leading zeros kept", []uint32{42}, "000042"},
		{"top of accepted range", []uint32{limit - 1}, "999999"},
		{"rejected draws skipped", []uint32{0xFFFFFFFF, limit, limit + 967295, 4_000_654_321}, "654321"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := testCodes(t, draws(tc.draws...)).Generate()
			if err != nil || got != tc.want {
				t.Fatalf("Generate = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("source stuck in the rejected range", func(t *testing.T) {
		stuck := make([]uint32, maxRandomTries+1)
		for i := range stuck {
			stuck[i] = 0xFFFFFFFF
		}
		if code, err := testCodes(t, draws(stuck...)).Generate(); !errors.Is(err, ErrRandom) {
			t.Fatalf("Generate = %q, %v; want ErrRandom", code, err)
		}
	})
	t.Run("source fails", func(t *testing.T) {
		if code, err := testCodes(t, draws()).Generate(); !errors.Is(err, ErrRandom) {
			t.Fatalf("Generate = %q, %v; want ErrRandom", code, err)
		}
	})
}

func TestMatch(t *testing.T) {
	c := testCodes(t, rand.Reader)
	code, err := c.Generate()
	if err != nil {
		t.Fatal(err)
	}
	binding := CodeBinding("user-1", "flow-9", "stepup")
	sealed := c.Seal(code, binding)
	if bytes.Contains(sealed, []byte(code)) {
		t.Fatal("sealed value contains the code")
	}
	if !c.Match(sealed, code, binding) {
		t.Fatal("code does not match its own seal")
	}
	other := testCodes(t, rand.Reader)
	other.key[0] ^= 1
	if other.Match(sealed, code, binding) {
		t.Error("code matched under a different key")
	}
	if c.Match(nil, code, binding) || c.Match(sealed[:16], code, binding) {
		t.Error("code matched a missing or truncated seal")
	}
}

func TestMatchSeparatesBindings(t *testing.T) {
	c := testCodes(t, rand.Reader)
	const code = "123456"
	base := CodeBinding("user-1", "flow-9", "stepup")
	sealed := c.Seal(code, base)
	for _, tc := range []struct{ name, binding string }{
		{"other user", CodeBinding("user-2", "flow-9", "stepup")},
		{"other flow", CodeBinding("user-1", "flow-8", "stepup")},
		{"other purpose", CodeBinding("user-1", "flow-9", "security_phone")},
		{"parts moved", CodeBinding("user-1flow-9", "stepup")},
		{"no binding", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c.Match(sealed, code, tc.binding) {
				t.Fatalf("code sealed for %q matched binding %q", base, tc.binding)
			}
		})
	}
	t.Run("parts cannot be re-split", func(t *testing.T) {
		if CodeBinding("ab", "c") == CodeBinding("a", "bc") {
			t.Fatal(`CodeBinding("ab", "c") == CodeBinding("a", "bc")`)
		}
		if c.Match(c.Seal(code, CodeBinding("ab", "c")), code, CodeBinding("a", "bc")) {
			t.Fatal(`code for ("ab", "c") matched ("a", "bc")`)
		}
	})
	t.Run("binding and code cannot be re-split", func(t *testing.T) {
		// Both pairs concatenate to "ab123456".
		if bytes.Equal(c.Seal("123456", "ab"), c.Seal("23456", "ab1")) {
			t.Fatal("Seal does not separate binding from code")
		}
	})
}

func TestMatchNormalizesTypedCode(t *testing.T) {
	c := testCodes(t, rand.Reader)
	binding := CodeBinding("user-1", "flow-9", "stepup")
	sealed := c.Seal("012345", binding)
	for _, tc := range []struct {
		name, typed string
		want        bool
	}{
		{"exact", "012345", true},
		{"spaces around", "  012345 ", true},
		{"space inside", "012 345", true},
		{"hyphen inside", "012-345", true},
		{"many separators", " 0-1 2-3 4-5 ", true},
		{"tab and newline", "012\t345\n", true},
		{"no-break space", "012\u00a0345", true},
		{"en dash", "012\u2013345", true},
		{"wrong code", "012346", false},
		{"five digits", "01234", false},
		{"seven digits", "0123456", false},
		{"leading zero dropped", "12345", false},
		{"letter", "01234a", false},
		{"letter O for zero", "O12345", false},
		{"dot separator", "012.345", false},
		{"full-width digits", "０１２３４５", false},
		{"arabic-indic digits", "٠١٢٣٤٥", false},
		{"plus sign", "+012345", false},
		{"empty", "", false},
		{"only separators", " - - ", false},
		{"very long", strings.Repeat(" ", 100) + "012345", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Match(sealed, tc.typed, binding); got != tc.want {
				t.Fatalf("Match(%q) = %v, want %v", tc.typed, got, tc.want)
			}
		})
	}
}

func FuzzTypedCode(f *testing.F) {
	for _, s := range []string{"012345", "012 345", "012-345", "０１２３４５", "", "1234567", "12\u20133456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := normalizeTypedCode(s)
		if !ok {
			return
		}
		if len(got) != CodeDigits {
			t.Fatalf("normalizeTypedCode(%q) = %q: not %d characters", s, got, CodeDigits)
		}
		for _, d := range []byte(got) {
			if d < '0' || d > '9' {
				t.Fatalf("normalizeTypedCode(%q) = %q: not all ASCII digits", s, got)
			}
		}
		var digits []byte
		for _, b := range []byte(s) {
			if b >= '0' && b <= '9' {
				digits = append(digits, b)
			}
		}
		if string(digits) != got {
			t.Fatalf("normalizeTypedCode(%q) = %q, want the digits typed, %q", s, got, digits)
		}
	})
}
