package selfservice

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseBirthDate(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"07/04/1980", "1980-07-04", true},
		{" 12/31/1999 ", "1999-12-31", true},
		{"02/29/2000", "2000-02-29", true},
		{"02/29/1999", "", false},
		{"02/30/1980", "", false},
		{"13/01/1980", "", false},
		{"00/10/1980", "", false},
		{"7/4/1980", "", false},
		{"07/04/80", "", false},
		{"07-04-1980", "", false},
		{"07.04.1980", "", false},
		{"1980-07-04", "", false},
		{"1980/07/04", "", false},
		{"07/04/1980 x", "", false},
		{"03/02/2026", "", false}, // tomorrow
		{"01/01/1899", "", false},
		{"", "", false},
	} {
		got, ok := ParseBirthDate(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseBirthDate(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNormalAccountNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sav-1002-0033", "SAV10020033"},
		{" 4111 1111 1111 1111 ", "4111111111111111"},
		{"1hgcm82633a004352", "1HGCM82633A004352"},
		{"12", ""},
		{"ACC_1234", ""},
		{"12345678901234567890123456789012345", ""},
		{"", ""},
	} {
		if got := NormalAccountNumber(tc.in); got != tc.want {
			t.Errorf("NormalAccountNumber(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMatchAccount(t *testing.T) {
	accounts := []Account{
		{Number: "SAV-1", Product: "savings"},
		{Number: "1HGCM82633A004352", Product: "carloans"},
		{Number: "SAV 1", Product: "duplicate"},
	}
	for _, tc := range []struct {
		number, product string
		ok              bool
	}{
		{"SAV1", "savings", true},
		{"1HGCM82633A004352", "carloans", true},
		{"1HGCM82633A00435", "", false},
		{"", "", false},
	} {
		a, ok := matchAccount(accounts, tc.number)
		if ok != tc.ok || a.Product != tc.product {
			t.Errorf("matchAccount(%q) = %q, %v; want %q, %v", tc.number, a.Product, ok, tc.product, tc.ok)
		}
	}
}

// isoDate is the form ParseBirthDate returns.
var isoDate = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

func FuzzParseBirthDate(f *testing.F) {
	for _, s := range []string{"07/04/1980", "02/29/2000", "1980-07-04", "7/4/80", "０７/04/1980", "07/04/1980\x00"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseBirthDate(s, now)
		if !ok {
			if got != "" {
				t.Fatalf("refused %q but returned %q", s, got)
			}
			return
		}
		if !isoDate.MatchString(got) {
			t.Fatalf("ParseBirthDate(%q) = %q, not yyyy-mm-dd", s, got)
		}
		d, err := time.Parse("2006-01-02", got)
		if err != nil || d.After(now) || d.Year() < 1900 || d.Format("01/02/2006") != strings.TrimSpace(s) {
			t.Fatalf("ParseBirthDate(%q) = %q does not round-trip", s, got)
		}
	})
}

// accountNumber is the form NormalAccountNumber returns.
var accountNumber = regexp.MustCompile(`^[0-9A-Z]{4,34}$`)

func FuzzNormalAccountNumber(f *testing.F) {
	for _, s := range []string{"sav-1002-0033", "4111 1111 1111 1111", "1HGCM82633A004352", "ß1234", "ＡＢＣＤ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormalAccountNumber(s)
		if got == "" {
			return
		}
		if !accountNumber.MatchString(got) {
			t.Fatalf("NormalAccountNumber(%q) = %q", s, got)
		}
		if again := NormalAccountNumber(got); again != got {
			t.Fatalf("NormalAccountNumber is not idempotent on %q: %q", got, again)
		}
	})
}
