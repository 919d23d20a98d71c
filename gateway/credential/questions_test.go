package credential

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestQuestions(t *testing.T) {
	qs := Questions()
	if len(qs) < 8 || len(qs) > 10 {
		t.Fatalf("%d questions, want 8 to 10", len(qs))
	}
	ids := map[string]bool{}
	for _, q := range qs {
		if q.ID == "" || q.ID != strings.ToLower(q.ID) || strings.ContainsAny(q.ID, " -") {
			t.Errorf("question ID %q is not a lowercase snake_case identifier", q.ID)
		}
		if ids[q.ID] {
			t.Errorf("question ID %q appears twice", q.ID)
		}
		ids[q.ID] = true
		if !strings.HasSuffix(q.Text, "?") {
			t.Errorf("question %s text %q is not a question", q.ID, q.Text)
		}
	}
	// IDs key stored answers: renaming one silently loses them.
	if qs[0] != (Question{ID: "first_pet", Text: "What was the name of your first pet?"}) {
		t.Errorf("first question = %+v", qs[0])
	}
	qs[0].ID = "changed"
	if Questions()[0].ID != "first_pet" {
		t.Error("Questions returns shared state")
	}
}

func TestNormalizeAnswer(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"lowercased", "Rex", "rex"},
		{"trimmed", "  rex\t", "rex"},
		{"inner whitespace collapsed", "mr \t\n whiskers", "mr whiskers"},
		{"punctuation dropped", "Mr. Whiskers!", "mr whiskers"},
		{"apostrophe dropped", "O'Brien", "obrien"},
		{"typographic apostrophe dropped", "O\u2019Brien", "obrien"},
		{"hyphen dropped", "Smith-Jones", "smithjones"},
		{"punctuation between spaces", "a . b", "a b"},
		{"digits kept", "Route 66", "route 66"},
		{"composed accent", "Jos\u00e9", "jos\u00e9"},
		{"decomposed accent", "Jose\u0301", "jos\u00e9"},
		{"upper decomposed accent", "JOSE\u0301", "jos\u00e9"},
		{"accent kept apart by punctuation recomposes", "e.\u0301", "\u00e9"},
		{"full-width letters", "ＲＥＸ", "rex"},
		{"full-width space", "ＭＲ\u3000ＷＨＩＳＫＥＲＳ", "mr whiskers"},
		{"no-break space", "mr\u00a0whiskers", "mr whiskers"},
		{"ligature", "\ufb01do", "fido"},
		{"sharp s folded", "Straße", "strasse"},
		{"final sigma folded", "ΟΔΟΣ", "οδοσ"},
		{"greek lowercase sigma forms agree", "οδος", "οδοσ"},
		{"non-latin letters kept", "東京", "東京"},
		{"cherokee upper", "\u13a3\u13f0", "\uab73\u13f8"},
		{"cherokee lower", "\uab73\u13f8", "\uab73\u13f8"},
		{"devanagari marks kept", "दिल्ली", "दिल्ली"},
		{"symbols dropped", "rex ♥ 😀", "rex"},
		{"control characters dropped", "re\x00x\u200b", "rex"},
		{"empty", "", ""},
		{"only punctuation", "?!...", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormalizeAnswer(tc.in); got != tc.want {
				t.Fatalf("NormalizeAnswer(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzNormalizeAnswer(f *testing.F) {
	for _, s := range []string{"Mr. Whiskers", "Jose\u0301", "ＲＥＸ", "e.\u0301", "Straße", "ǅ", "\u00b4a", "ΟΔΟΣ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormalizeAnswer(s)
		if again := NormalizeAnswer(got); again != got {
			t.Fatalf("not idempotent: %q → %q → %q", s, got, again)
		}
		if !utf8.ValidString(got) || strings.TrimSpace(got) != got || strings.Contains(got, "  ") {
			t.Fatalf("NormalizeAnswer(%q) = %q: invalid UTF-8 or untidy spaces", s, got)
		}
	})
}

var testAnswers = map[string]string{
	"first_pet":         "Mr. Whiskers",
	"birth_city":        "São Paulo",
	"elementary_school": "Lincoln Elementary",
}

func TestSealAnswersRoundTrip(t *testing.T) {
	ctx := t.Context()
	h := testHasher(t)
	sealed, err := SealAnswers(ctx, h, testAnswers)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range testAnswers {
		if bytes.Contains(bytes.ToLower(sealed), []byte(NormalizeAnswer(a))) {
			t.Fatalf("sealed answers contain %q", a)
		}
	}
	var blob struct {
		V       int               `json:"v"`
		Answers map[string]string `json:"answers"`
	}
	if err := json.Unmarshal(sealed, &blob); err != nil || blob.V != 1 || len(blob.Answers) != 3 {
		t.Fatalf("sealed = %s, %v; want a version-1 JSON object with 3 answers", sealed, err)
	}
	for id, hash := range blob.Answers {
		if !strings.HasPrefix(hash, "$argon2id$v=19$m=8192,t=1,p=1$") {
			t.Errorf("answer %s hash %q is not argon2id from the Hasher", id, hash)
		}
	}
	for _, tc := range []struct {
		name, id, answer string
		want             bool
	}{
		{"as typed", "first_pet", "Mr. Whiskers", true},
		{"typed differently", "first_pet", "  MR WHISKERS ", true},
		{"decomposed accent", "birth_city", "Sa\u0303o Paulo", true},
		{"full-width", "elementary_school", "ＬＩＮＣＯＬＮ　ＥＬＥＭＥＮＴＡＲＹ", true},
		{"wrong answer", "first_pet", "Rex", false},
		{"another question's answer", "first_pet", "Lincoln Elementary", false},
		{"accent missing", "birth_city", "Sao Paulo", false},
		{"empty", "first_pet", "", false},
		{"known question not answered", "first_car", "Mr. Whiskers", false},
		{"too long", "first_pet", "Mr. Whiskers" + strings.Repeat(" ", MaxAnswerLen), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := CheckAnswer(ctx, h, sealed, tc.id, tc.answer)
			if err != nil || ok != tc.want {
				t.Fatalf("CheckAnswer(%s, %q) = %v, %v; want %v", tc.id, tc.answer, ok, err, tc.want)
			}
		})
	}
}

func TestCheckAnswerErrors(t *testing.T) {
	ctx := t.Context()
	h := testHasher(t)
	sealed, err := SealAnswers(ctx, h, testAnswers)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckAnswer(ctx, h, sealed, "favourite_colour", "blue"); !errors.Is(err, ErrUnknownQuestion) {
		t.Errorf("unknown question: err = %v, want ErrUnknownQuestion", err)
	}
	for _, bad := range []string{"", "{", `{"v":2,"answers":{}}`, `[]`} {
		if _, err := CheckAnswer(ctx, h, []byte(bad), "first_pet", "x"); !errors.Is(err, ErrSealedAnswers) {
			t.Errorf("sealed %q: err = %v, want ErrSealedAnswers", bad, err)
		}
	}
	if _, err := CheckAnswer(ctx, h, []byte(`{"v":1,"answers":{"first_pet":"$bcrypt$x"}}`), "first_pet", "x"); !errors.Is(err, ErrPasswordHash) {
		t.Errorf("malformed hash: err = %v, want ErrPasswordHash", err)
	}
}

func TestSealAnswersRefuses(t *testing.T) {
	ctx := t.Context()
	h := testHasher(t)
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range testAnswers {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		answers map[string]string
		want    error
	}{
		{"none", nil, ErrTooFewAnswers},
		{"two", map[string]string{"first_pet": "Rex the dog", "birth_city": "Boston"}, ErrTooFewAnswers},
		{"unknown question", with(map[string]string{"favourite_colour": "blue"}), ErrUnknownQuestion},
		{"three with one unknown", map[string]string{"first_pet": "Rex", "birth_city": "Boston", "Birth_City": "Paris"}, ErrUnknownQuestion},
		{"short answer", with(map[string]string{"first_car": "VW"}), ErrAnswerTooShort},
		{"short after normalisation", with(map[string]string{"first_car": " v.w. "}), ErrAnswerTooShort},
		{"empty answer", with(map[string]string{"first_car": ""}), ErrAnswerTooShort},
		{"duplicate answer", with(map[string]string{"first_car": "mr whiskers"}), ErrDuplicateAnswer},
		{"duplicate after normalisation", with(map[string]string{"first_car": "MR. WHISKERS!"}), ErrDuplicateAnswer},
		{"duplicate with decomposed accent", with(map[string]string{"oldest_cousin": "SA\u0303O PAULO"}), ErrDuplicateAnswer},
		{"accents tell answers apart", with(map[string]string{"oldest_cousin": "SAO PAULO"}), nil},
		{"too long", with(map[string]string{"first_car": strings.Repeat("a", MaxAnswerLen+1)}), ErrAnswerTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SealAnswers(ctx, h, tc.answers)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("SealAnswers: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("SealAnswers: err = %v, want %v", err, tc.want)
			}
			for _, a := range tc.answers {
				if len(a) >= MinAnswerLen && strings.Contains(err.Error(), a) {
					t.Fatalf("error %q repeats an answer", err)
				}
			}
		})
	}
}

func TestSealAnswersRespectsCancellation(t *testing.T) {
	h := testHasher(t)
	for range cap(h.slots) {
		h.slots <- struct{}{} // every slot busy
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := SealAnswers(ctx, h, testAnswers); err == nil {
		t.Fatal("SealAnswers with no free slot and a cancelled context did not fail")
	}
}

func TestAskedQuestion(t *testing.T) {
	h := testHasher(t)
	sealed, err := SealAnswers(t.Context(), h, testAnswers)
	if err != nil {
		t.Fatal(err)
	}
	// Answered questions in Questions order: first_pet, elementary_school,
	// birth_city.
	for _, tc := range []struct {
		name  string
		draws []uint32
		want  string
	}{
		{"first", []uint32{0}, "first_pet"},
		{"second", []uint32{1}, "elementary_school"},
		{"third", []uint32{5}, "birth_city"},
		// 2^32 mod 3 = 1: the top value would favour index 0.
		{"biased draw rejected", []uint32{0xFFFFFFFF, 4}, "elementary_school"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AskedQuestion(sealed, draws(tc.draws...))
			if err != nil || got != tc.want {
				t.Fatalf("AskedQuestion = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("every answered question is asked", func(t *testing.T) {
		counts := map[string]int{}
		r := draws(func() []uint32 {
			var vs []uint32
			for i := range uint32(300) {
				vs = append(vs, i*2654435761)
			}
			return vs
		}()...)
		for range 300 {
			id, err := AskedQuestion(sealed, r)
			if err != nil {
				t.Fatal(err)
			}
			counts[id]++
		}
		if len(counts) != 3 {
			t.Fatalf("asked %v, want the 3 answered questions", counts)
		}
	})
	t.Run("retired questions are not asked", func(t *testing.T) {
		got, err := AskedQuestion([]byte(`{"v":1,"answers":{"retired":"$argon2id$x","first_car":"$argon2id$y"}}`), draws(0, 1, 2))
		if err != nil || got != "first_car" {
			t.Fatalf("AskedQuestion = %q, %v; want first_car", got, err)
		}
	})
	for _, bad := range []string{"", `{"v":1,"answers":{}}`, `{"v":1,"answers":{"retired":"$argon2id$x"}}`} {
		if _, err := AskedQuestion([]byte(bad), draws(0)); !errors.Is(err, ErrSealedAnswers) {
			t.Errorf("AskedQuestion(%q): err = %v, want ErrSealedAnswers", bad, err)
		}
	}
	if _, err := AskedQuestion(sealed, draws()); !errors.Is(err, ErrRandom) {
		t.Errorf("failing randomness: err = %v, want ErrRandom", err)
	}
}
