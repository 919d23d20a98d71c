package credential

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/portcullis/portcullis/policies"
	"github.com/portcullis/portcullis/rego"
)

// shippedMinGuesses is passwords.min_guesses_log10 in the shipped policy
// data, so that these tests hold the estimate to the number that judges it.
func shippedMinGuesses(t testing.TB) int {
	t.Helper()
	b, err := rego.FS.ReadFile("data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Portcullis struct {
			Config struct {
				Passwords struct {
					MinGuessesLog10 *int `json:"min_guesses_log10"`
				} `json:"passwords"`
			} `json:"config"`
		} `json:"portcullis"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	if data.Portcullis.Config.Passwords.MinGuessesLog10 == nil {
		t.Fatal("rego/data.json has no portcullis.config.passwords.min_guesses_log10")
	}
	return *data.Portcullis.Config.Passwords.MinGuessesLog10
}

func writeBlocklist(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "breached.txt")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// nfd is s decomposed, the way some keyboards and systems send accents.
func nfd(s string) string { return norm.NFD.String(s) }

// newChecker is a checker with the given breached list and default slots.
func newChecker(t testing.TB, breached Blocklist) *PasswordChecker {
	t.Helper()
	c, err := NewPasswordChecker(CheckerConfig{Breached: breached, Nice: DefaultNice})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// facts measures password, failing the test on an error.
func facts(t testing.TB, c *PasswordChecker, password string, owner PasswordOwner) policies.PasswordFacts {
	t.Helper()
	f, err := c.Measure(t.Context(), password, owner)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var jane = PasswordOwner{Username: "jdoe.banker", Names: []string{"Jane Q. Doe-Okonkwo", "Doe-Okonkwo"}}

func TestPasswordFacts(t *testing.T) {
	path := writeBlocklist(t, strings.Join([]string{
		"Tr0ub4dor&3-horse",       // as typed
		"ZEBRA-CROSSING-2019",     // in upper case
		nfd("café-crème-brûlée9"), // decomposed
		"straße-nach-berlin",      // folds to strasse
		"",                        // skipped
		"windows line ending 77\r",
	}, "\n")+"\n")
	list, err := LoadBlocklist(path)
	if err != nil {
		t.Fatal(err)
	}
	if list.Len() != 5 {
		t.Fatalf("blocklist has %d entries, want 5", list.Len())
	}
	c := newChecker(t, list)
	if c.Breached() != 5 {
		t.Errorf("Breached = %d, want 5", c.Breached())
	}
	minGuesses := shippedMinGuesses(t)
	type want struct {
		username, name, common bool
		guessable              bool // below the shipped min_guesses_log10
	}
	for _, tc := range []struct {
		name     string
		password string
		owner    PasswordOwner
		want     want
	}{
		// zxcvbn's common passwords, in any case.
		{"common", "password1234", jane, want{common: true, guessable: true}},
		{"common in upper case", "QWERTY123456", jane, want{common: true, guessable: true}},
		{"common with mixed case", "1QaZ2wSx3EdC", jane, want{common: true, guessable: true}},
		// The operator's breached list, in another case or normal form.
		{"breached as listed", "Tr0ub4dor&3-horse", jane, want{common: true}},
		{"breached in another case", "tR0UB4DOR&3-HORSE", jane, want{common: true}},
		{"breached listed in upper case", "zebra-crossing-2019", jane, want{common: true}},
		{"breached listed decomposed, typed composed", "Café-Crème-Brûlée9", jane, want{common: true}},
		{"breached typed decomposed", nfd("CAFÉ-CRÈME-BRÛLÉE9"), jane, want{common: true}},
		{"breached by case folding", "STRASSE-NACH-BERLIN", jane, want{common: true}},
		{"breached line with CRLF", "Windows Line Ending 77", jane, want{common: true}},
		{"one character off the list", "Tr0ub4dor&3-horses", jane, want{}},
		// The username and the names, anywhere and in any case.
		{"username inside", "my-JDOE.BANKER-secret-2024", PasswordOwner{Username: "jdoe.banker"}, want{username: true}},
		{"username and name inside", "my-JDOE.BANKER-secret-2024", jane, want{username: true, name: true}},
		{"first name inside", "purple-JANE-elephant-91", jane, want{name: true}},
		{"last name part inside", "okonkwo-river-sunrise-88", jane, want{name: true}},
		{"decomposed name inside", "zoë-walks-the-quiet-dog", PasswordOwner{Username: "zw1", Names: []string{nfd("Zoë Walker")}}, want{name: true}},
		{"two-letter names are not checked", "violet-Lighthouse-Ngong-42", PasswordOwner{Username: "lng", Names: []string{"Li Ng"}}, want{}},
		{"no owner", "violet lighthouse ngong 42", PasswordOwner{}, want{}},
		// Guessable patterns.
		{"season and year", "Summer2024!!", jane, want{guessable: true}},
		{"welcome and year", "Welcome2024!", jane, want{guessable: true}},
		{"keyboard walk", "qwertyuiop[]asdf", jane, want{guessable: true}},
		{"repeats", "aaaaaaaaaaaaaaaa", jane, want{guessable: true}},
		{"word and year", "Football2024", jane, want{guessable: true}},
		{"username and year", "Customer771990", PasswordOwner{Username: "customer77"}, want{username: true, guessable: true}},
		// Strong passwords.
		{"four random words", "plinth mantra gusty orbit", jane, want{}},
		{"four random words, hyphens", "tundra-velvet-mosaic-quiver", jane, want{}},
		{"16 random characters", "q8Zt2mWc7LpX4vNa", jane, want{}},
		{"16 random with symbols", "kX9#vQ2@mL7$pR4!", jane, want{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := facts(t, c, tc.password, tc.owner)
			got := want{username: f.ContainsUsername, name: f.ContainsName, common: f.Common, guessable: f.GuessesLog10 < minGuesses}
			if got != tc.want {
				t.Errorf("facts %+v (min_guesses_log10 %d): got %+v, want %+v", f, minGuesses, got, tc.want)
			}
			if f.Length != policies.PasswordLength(tc.password) {
				t.Errorf("Length %d, PasswordLength %d", f.Length, policies.PasswordLength(tc.password))
			}
		})
	}
}

// TestPasswordFactsOfNormalForms: a password typed composed or decomposed
// is one password.
func TestPasswordFactsOfNormalForms(t *testing.T) {
	c := newChecker(t, Blocklist{})
	for _, p := range []string{"Ångström-Café-Noël-42", "ÉLÉPHANT rosé à Zürich", "Jane-Über-Straße"} {
		composed, decomposed := facts(t, c, norm.NFC.String(p), jane), facts(t, c, nfd(p), jane)
		if composed != decomposed {
			t.Errorf("%q: NFC facts %+v, NFD facts %+v", p, composed, decomposed)
		}
		if composed.Length != len([]rune(norm.NFC.String(p))) {
			t.Errorf("%q: Length %d", p, composed.Length)
		}
	}
}

func TestPasswordClasses(t *testing.T) {
	c := newChecker(t, Blocklist{})
	for _, tc := range []struct {
		password string
		want     int
	}{
		{"lowercaseonly", 1},
		{"Upper and lower", 3}, // the spaces are others
		{"MixedCase123", 3},
		{"Mixed Case 123!", 4},
		{"ÄÖÜ", 1},
		{"日本語のパスワード", 1}, // letters without case are others
		{"", 0},
	} {
		if got := facts(t, c, tc.password, PasswordOwner{}).Classes; got != tc.want {
			t.Errorf("Classes(%q) = %d, want %d", tc.password, got, tc.want)
		}
	}
}

// TestPasswordFactsOfLongInput: length is counted in full, the estimate on
// the first MaxScoredLen characters only, so a huge password costs no more
// than a long one.
func TestPasswordFactsOfLongInput(t *testing.T) {
	c := newChecker(t, Blocklist{})
	strong := "tundra-velvet-mosaic-quiver-plinth-mantra-gusty-orbit-"
	long := strings.Repeat(strong, 200)
	f := facts(t, c, long, jane) // uncapped, zxcvbn would take minutes
	if f.Length != len(long) {
		t.Errorf("Length %d, want %d", f.Length, len(long))
	}
	prefix := facts(t, c, long[:MaxScoredLen], jane)
	if f.GuessesLog10 != prefix.GuessesLog10 {
		t.Errorf("GuessesLog10 %d, want %d, the estimate of the first %d characters", f.GuessesLog10, prefix.GuessesLog10, MaxScoredLen)
	}
	// The cut falls on a character, not inside one.
	wide := strings.Repeat("é", 3*MaxScoredLen)
	if got, want := facts(t, c, wide, jane).GuessesLog10, facts(t, c, strings.Repeat("é", MaxScoredLen), jane).GuessesLog10; got != want {
		t.Errorf("%d two-byte characters: GuessesLog10 %d, want %d", 3*MaxScoredLen, got, want)
	}
}

func TestPasswordFactsOfInvalidUTF8(t *testing.T) {
	f := facts(t, newChecker(t, Blocklist{}), "valid-start-\xff\xfe-random-Q8zT2mWc", jane)
	if f.GuessesLog10 != 0 {
		t.Errorf("GuessesLog10 %d for invalid UTF-8, want 0 (unscored, refused)", f.GuessesLog10)
	}
}

func TestReadBlocklist(t *testing.T) {
	if _, err := LoadBlocklist(filepath.Join(t.TempDir(), "missing.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	dir := writeBlocklist(t, "")
	if _, err := LoadBlocklist(filepath.Dir(dir)); err == nil {
		t.Error("a directory loaded as a blocklist")
	}
	long := writeBlocklist(t, "ok-line\n"+strings.Repeat("x", maxBlocklistLine+1)+"\n")
	if _, err := LoadBlocklist(long); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("overlong line: %v, want an error naming line 2", err)
	}
	empty, err := LoadBlocklist(writeBlocklist(t, "\n\n"))
	if err != nil || empty.Len() != 0 {
		t.Errorf("empty lines: %d entries, %v", empty.Len(), err)
	}
	// Without the operator's list, zxcvbn's still applies.
	if !facts(t, newChecker(t, empty), "iloveyou", PasswordOwner{}).Common {
		t.Error("zxcvbn's common passwords are not on the list")
	}
}

// TestPasswordCheckerConcurrent runs many measurements at once (go test
// -race finds shared state) and checks each gets its own answer.
func TestPasswordCheckerConcurrent(t *testing.T) {
	list, err := ReadBlocklist(strings.NewReader("Breached-Password-42\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := newChecker(t, list)
	cases := []struct {
		password string
		owner    PasswordOwner
	}{
		{"breached-password-42", jane},
		{"purple-JANE-elephant-91", jane},
		{"plinth mantra gusty orbit", jane},
		{"Summer2024!!", PasswordOwner{Username: "other"}},
	}
	want := make([]policies.PasswordFacts, len(cases))
	for i, tc := range cases {
		want[i] = facts(t, c, tc.password, tc.owner)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				k := (g + i) % len(cases)
				if got, err := c.Measure(t.Context(), cases[k].password, cases[k].owner); err != nil || got != want[k] {
					select {
					case errs <- cases[k].password:
					default:
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for p := range errs {
		t.Errorf("concurrent facts for %q differ from the sequential ones", p)
	}
}

// The flows that set a password take the checker through an interface of
// this shape (settings.PasswordChecker, selfservice.PasswordChecker).
var _ interface {
	Facts(password, username string, names ...string) policies.PasswordFacts
} = (*PasswordChecker)(nil)

// TestPasswordCheckerSlots: scoring waits for a slot, and past the queue
// timeout or a cancelled context fails with zero facts, which the policy
// refuses.
func TestPasswordCheckerSlots(t *testing.T) {
	c, err := NewPasswordChecker(CheckerConfig{MaxConcurrent: 1, QueueTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const strong = "plinth mantra gusty orbit"
	c.slots <- struct{}{} // a scoring in progress
	f, err := c.Measure(t.Context(), strong, jane)
	if !errors.Is(err, ErrBusy) || f.GuessesLog10 != 0 || f.Length != len(strong) {
		t.Errorf("busy: %+v, %v; want ErrBusy, the length and GuessesLog10 0", f, err)
	}
	if f := c.Facts(strong, jane.Username, jane.Names...); f.GuessesLog10 != 0 {
		t.Errorf("busy: Facts %+v, want GuessesLog10 0", f)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c.wait = time.Hour
	if f, err := c.Measure(ctx, strong, jane); !errors.Is(err, context.Canceled) || f.GuessesLog10 != 0 {
		t.Errorf("cancelled: %+v, %v; want context.Canceled and GuessesLog10 0", f, err)
	}
	<-c.slots
	f, err = c.Measure(t.Context(), strong, jane)
	if err != nil || f.GuessesLog10 < shippedMinGuesses(t) {
		t.Errorf("free slot: %+v, %v", f, err)
	}
	if got := c.Facts(strong, jane.Username, jane.Names...); got != f {
		t.Errorf("Facts %+v, Measure %+v", got, f)
	}
	for _, cfg := range []CheckerConfig{{MaxConcurrent: -1}, {QueueTimeout: -time.Second}, {Nice: -1}, {Nice: 20}} {
		if _, err := NewPasswordChecker(cfg); err == nil {
			t.Errorf("NewPasswordChecker(%+v) accepted", cfg)
		}
	}
}

func BenchmarkPasswordFacts(b *testing.B) {
	c := newChecker(b, Blocklist{})
	for _, bc := range []struct{ name, password string }{
		{"12", "Summer2024!!"},
		{"passphrase", "plinth mantra gusty orbit"},
		{"64", strings.Repeat("q8Zt2mWc", MaxScoredLen/8)},
		{"1024", strings.Repeat("q8Zt2mWc", 128)},
		{"l33t64", strings.Repeat("4@8({[<3691!|70$5+7%2", 4)[:MaxScoredLen]}, // the costliest kind found
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.Measure(b.Context(), bc.password, jane); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewPasswordChecker(b *testing.B) {
	for b.Loop() {
		newChecker(b, Blocklist{})
	}
}
