package phone

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/policies"
)

func newClassifier(t testing.TB, cfg Config) *Classifier {
	t.Helper()
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = "US"
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestClassifyByPrefix(t *testing.T) {
	c := newClassifier(t, Config{DefaultRegion: "US"})
	tests := []struct {
		name string
		raw  string
		e164 string
		want policies.PhoneFacts
	}{
		// The numbers libphonenumber knows to be VoIP.
		{"uk voip", "+44 56 1234 5678", "+445612345678",
			policies.PhoneFacts{Valid: true, Region: "GB", CallingCode: 44, LineType: VoIP, Source: SourcePrefix, Masked: "+44 •• •••• ••78"}},
		{"france voip", "+33 9 12 34 56 78", "+33912345678",
			policies.PhoneFacts{Valid: true, Region: "FR", CallingCode: 33, LineType: VoIP, Source: SourcePrefix, Masked: "+33 • •• •• •• 78"}},
		{"netherlands voip", "+31 85 123 4567", "+31851234567",
			policies.PhoneFacts{Valid: true, Region: "NL", CallingCode: 31, LineType: VoIP, Source: SourcePrefix, Masked: "+31 •• ••• ••67"}},
		{"japan voip", "+81 50 1234 5678", "+815012345678",
			policies.PhoneFacts{Valid: true, Region: "JP", CallingCode: 81, LineType: VoIP, Source: SourcePrefix, Masked: "+81 •• •••• ••78"}},
		{"north america 600 voip", "+1 600 201 2345", "+16002012345",
			policies.PhoneFacts{Valid: true, Region: "CA", CallingCode: 1, LineType: VoIP, Source: SourcePrefix, Masked: "+1 ••• ••• ••45"}},

		// US numbers cannot be told apart by prefix.
		{"us number", "+1 650 253 0000", "+16502530000",
			policies.PhoneFacts{Valid: true, Region: "US", CallingCode: 1, LineType: FixedLineOrMobile, Source: SourcePrefix, Masked: "+1 ••• ••• ••00"}},
		{"us national format", "(650) 253-0000", "+16502530000",
			policies.PhoneFacts{Valid: true, Region: "US", CallingCode: 1, LineType: FixedLineOrMobile, Source: SourcePrefix, Masked: "+1 ••• ••• ••00"}},
		{"us dotted with spaces around", "  650.253.0000 ", "+16502530000",
			policies.PhoneFacts{Valid: true, Region: "US", CallingCode: 1, LineType: FixedLineOrMobile, Source: SourcePrefix, Masked: "+1 ••• ••• ••00"}},
		{"us with trunk prefix", "1-650-253-0000", "+16502530000",
			policies.PhoneFacts{Valid: true, Region: "US", CallingCode: 1, LineType: FixedLineOrMobile, Source: SourcePrefix, Masked: "+1 ••• ••• ••00"}},
		{"toll free", "+1 800 253 0000", "+18002530000",
			policies.PhoneFacts{Valid: true, Region: "US", CallingCode: 1, LineType: TollFree, Source: SourcePrefix, Masked: "+1 ••• ••• ••00"}},
		{"premium rate", "+1 900 253 0000", "+19002530000",
			policies.PhoneFacts{Valid: true, Region: "US", CallingCode: 1, LineType: PremiumRate, Source: SourcePrefix, Masked: "+1 ••• ••• ••00"}},

		{"uk mobile", "+44 7400 123456", "+447400123456",
			policies.PhoneFacts{Valid: true, Region: "GB", CallingCode: 44, LineType: Mobile, Source: SourcePrefix, Masked: "+44 •••• ••••56"}},
		{"uk landline", "+44 20 7946 0958", "+442079460958",
			policies.PhoneFacts{Valid: true, Region: "GB", CallingCode: 44, LineType: FixedLine, Source: SourcePrefix, Masked: "+44 •• •••• ••58"}},
		{"international dialling prefix from the us", "011 44 7400 123456", "+447400123456",
			policies.PhoneFacts{Valid: true, Region: "GB", CallingCode: 44, LineType: Mobile, Source: SourcePrefix, Masked: "+44 •••• ••••56"}},
		{"non-geographic number has no region", "+800 1234 5678", "+80012345678",
			policies.PhoneFacts{Valid: true, CallingCode: 800, LineType: TollFree, Source: SourcePrefix, Masked: "+800 •••• ••78"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second answer comes from the cache.
			for range 2 {
				facts, e164, err := c.Classify(t.Context(), tc.raw)
				if err != nil {
					t.Fatalf("Classify(%q): %v", tc.raw, err)
				}
				if e164 != tc.e164 {
					t.Errorf("e164 = %q, want %q", e164, tc.e164)
				}
				if facts != tc.want {
					t.Errorf("facts = %+v, want %+v", facts, tc.want)
				}
			}
		})
	}
}

func TestClassifyDefaultRegion(t *testing.T) {
	c := newClassifier(t, Config{DefaultRegion: "gb"}) // case does not matter
	facts, e164, err := c.Classify(t.Context(), "07400 123456")
	if err != nil {
		t.Fatal(err)
	}
	if e164 != "+447400123456" || facts.Region != "GB" || facts.CallingCode != 44 || facts.LineType != Mobile {
		t.Errorf("got %q %+v, want +447400123456 GB +44 mobile", e164, facts)
	}
}

func TestClassifyInvalid(t *testing.T) {
	c := newClassifier(t, Config{DefaultRegion: "US"})
	tests := []struct {
		name, raw, msg string
	}{
		{"too short", "12", "phone: not a valid phone number for region US"},
		{"letters", "abc", "phone: not a valid phone number for region US"},
		{"empty", "", "phone: not a valid phone number for region US"},
		{"blank", "   ", "phone: not a valid phone number for region US"},
		{"unassigned us area code", "(123) 456-7890", "phone: not a valid phone number for region US"},
		{"invalid for its country", "+44 12", "phone: not a valid phone number for region GB"},
		{"short uk number", "+44 7400 1234", "phone: not a valid phone number for region GB"},
		{"unknown country code", "+999 1234567", "phone: not a valid phone number"},
		{"plus only", "+", "phone: not a valid phone number"},
		{"extension", "+1 650 253 0000 ext. 12", "phone: not a valid phone number: extensions are not supported"},
		{"too long", "+1 650 253 0000" + strings.Repeat(" ", 60) + "1", "phone: not a valid phone number: too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			facts, e164, err := c.Classify(t.Context(), tc.raw)
			if !errors.Is(err, ErrInvalidNumber) {
				t.Fatalf("Classify(%q) error = %v, want ErrInvalidNumber", tc.raw, err)
			}
			if err.Error() != tc.msg {
				t.Errorf("error = %q, want %q", err, tc.msg)
			}
			if want := (policies.PhoneFacts{LineType: Unknown}); facts != want {
				t.Errorf("facts = %+v, want %+v", facts, want)
			}
			if e164 != "" {
				t.Errorf("e164 = %q, want empty", e164)
			}
			if _, err := c.Normalize(tc.raw); !errors.Is(err, ErrInvalidNumber) {
				t.Errorf("Normalize(%q) error = %v, want ErrInvalidNumber", tc.raw, err)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	c := newClassifier(t, Config{DefaultRegion: "US"})
	for raw, want := range map[string]string{
		"+16502530000":       "+16502530000",
		"(650) 253-0000":     "+16502530000",
		"+1 (650) 253 0000":  "+16502530000",
		"1-800-FLOWERS":      "+18003569377",
		"+44 (0)7400 123456": "+447400123456",
	} {
		got, err := c.Normalize(raw)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{DefaultRegion: "XX"},
		{DefaultRegion: "USA"},
		{DefaultRegion: "US", CacheTTL: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestCacheDisabled(t *testing.T) {
	c := newClassifier(t, Config{CacheSize: -1})
	for range 2 {
		if _, e164, err := c.Classify(t.Context(), "650 253 0000"); err != nil || e164 != "+16502530000" {
			t.Fatalf("Classify = %q, %v", e164, err)
		}
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"+1 650-253-0000":   "+1 ••• ••• ••00",
		"+44 7400 123456":   "+44 •••• ••••56",
		"+81 50-1234-5678":  "+81 •• •••• ••78",
		"+33 9 12 34 56 78": "+33 • •• •• •• 78",
		"+1 12":             "+1 12",
		"+12025550142":      "••",
	} {
		if got := mask(in); got != want {
			t.Errorf("mask(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClassify feeds arbitrary input, as a person might type it: it must
// never panic, and a valid answer always carries an E.164 number that
// normalizes to itself and facts that hide all but two digits.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"+44 56 1234 5678", "+1 600 201 2345", "(650) 253-0000", "011 44 7400 123456",
		"1-800-FLOWERS", "+800 1234 5678", "+1 650 253 0000 ext. 12", "12", "abc", "", "+",
		"++1", "+0", "tel:+1-650-253-0000", "0", "+44 (0)7400 123456", "650253000０",
		"\x00", "+1 650 253 0000;ext=1", "+\u0661\u0662",
	} {
		f.Add(s)
	}
	c := newClassifier(f, Config{DefaultRegion: "US"})
	f.Fuzz(func(t *testing.T, raw string) {
		facts, e164, err := c.Classify(t.Context(), raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidNumber) {
				t.Fatalf("Classify(%q) error %v does not wrap ErrInvalidNumber", raw, err)
			}
			if facts.Valid || e164 != "" || facts.LineType != Unknown {
				t.Fatalf("Classify(%q) = %+v, %q with error %v", raw, facts, e164, err)
			}
			return
		}
		if !facts.Valid || !strings.HasPrefix(e164, "+") || len(e164) < 3 {
			t.Fatalf("Classify(%q) = %+v, %q: valid numbers need an E.164 string", raw, facts, e164)
		}
		for _, r := range e164[1:] {
			if r < '0' || r > '9' {
				t.Fatalf("Classify(%q) e164 = %q: not all digits", raw, e164)
			}
		}
		if !isLineType(facts.LineType) {
			t.Fatalf("Classify(%q) line type %q", raw, facts.LineType)
		}
		if facts.CallingCode <= 0 || !strings.HasPrefix(e164, "+"+strconv.Itoa(facts.CallingCode)) {
			t.Fatalf("Classify(%q) calling code %d does not begin %q", raw, facts.CallingCode, e164)
		}
		if again, err := c.Normalize(e164); err != nil || again != e164 {
			t.Fatalf("Normalize(%q) = %q, %v; want it unchanged", e164, again, err)
		}
		digits := 0
		for _, r := range facts.Masked {
			if r >= '0' && r <= '9' {
				digits++
			}
		}
		cc := strings.IndexByte(facts.Masked, ' ') - 1 // digits of the country code
		if digits-cc > 2 {
			t.Fatalf("Classify(%q) masked %q shows more than two digits", raw, facts.Masked)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	numbers := []string{
		"+1 650 253 0000", "(650) 253-0000", "+44 7400 123456", "+44 56 1234 5678",
		"+33 9 12 34 56 78", "+81 50 1234 5678", "+1 800 253 0000", "12",
	}
	for _, bc := range []struct {
		name string
		size int
	}{
		{"uncached", -1},
		{"cached", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newClassifier(b, Config{CacheSize: bc.size})
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.Classify(ctx, numbers[i%len(numbers)])
				i++
			}
		})
	}
}
