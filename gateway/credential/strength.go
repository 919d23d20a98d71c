package credential

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/frequency"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/portcullis/portcullis/policies"
)

// MaxScoredLen is how many characters of a password zxcvbn scores. Its
// cost grows with the square of the length (BenchmarkPasswordFacts on two
// cores: under 1 ms for a 12-character password or a passphrase, about
// 10 ms for 64 random characters), and more for each l33t symbol that
// could stand for several letters: 64 characters of symbols such as
// "4@8({[<3691!|7" take 150 ms, and several times that on a loaded
// machine. So a longer password is scored on its first
// MaxScoredLen characters (more characters can only add guesses, so the
// estimate errs low, never high), scoring runs in bounded slots at a
// lowered priority as hashing does, and the shipped policy refuses
// passwords over 64 characters on length before it reads the estimate.
const MaxScoredLen = 64

// minNameLen is the shortest name word a password is checked for: shorter
// ones ("Li", "Ng") occur by chance in too many passwords to refuse them.
const minNameLen = 3

// maxBlocklistLine bounds a line of a blocklist file, in bytes.
const maxBlocklistLine = 4096

// Blocklist is a set of refused passwords, held in their NFC, case-folded
// form. The zero value is empty. It is safe for concurrent reads and is
// never modified after ReadBlocklist returns it.
type Blocklist struct {
	set map[string]struct{}
}

// Len is the number of distinct passwords on the list.
func (b Blocklist) Len() int { return len(b.set) }

// ReadBlocklist reads a list of breached passwords, one a line. Lines are
// taken whole (spaces are part of a password); a final "\r" is dropped and
// empty lines are skipped. Entries are compared after NFC normalisation and
// case folding, so "PassWord" and "password" are one entry.
func ReadBlocklist(r io.Reader) (Blocklist, error) {
	b := Blocklist{set: map[string]struct{}{}}
	fold := cases.Fold()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxBlocklistLine), maxBlocklistLine)
	line := 0
	for sc.Scan() {
		line++
		p := strings.TrimSuffix(sc.Text(), "\r")
		if p == "" {
			continue
		}
		b.set[blockKey(fold, p)] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Blocklist{}, fmt.Errorf("password blocklist: line %d is longer than %d bytes", line+1, maxBlocklistLine)
		}
		return Blocklist{}, fmt.Errorf("password blocklist: line %d: %w", line+1, err)
	}
	return b, nil
}

// LoadBlocklist reads the blocklist file at path (see ReadBlocklist).
func LoadBlocklist(path string) (Blocklist, error) {
	f, err := os.Open(path)
	if err != nil {
		return Blocklist{}, fmt.Errorf("password blocklist: %w", err)
	}
	defer f.Close()
	b, err := ReadBlocklist(f)
	if err != nil {
		return Blocklist{}, fmt.Errorf("%w (%s)", err, path)
	}
	return b, nil
}

// blockKey is the form passwords are compared in: NFC, then case folding
// (which maps "ß" to "ss" and "İ" to "i̇"), then NFC again because folding
// can leave a string unnormalised. ASCII is its own NFC form and folds to
// lower case, which is quicker to compute: zxcvbn's list is ASCII.
func blockKey(fold cases.Caser, p string) string {
	if ascii(p) {
		return strings.ToLower(p)
	}
	return norm.NFC.String(fold.String(norm.NFC.String(p)))
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// PasswordOwner is who a new password is for: what an attacker who knows
// the person would try first.
type PasswordOwner struct {
	// Username is the profile's username.
	Username string
	// Names are the person's names as the profile or the customer record
	// spells them: the display name, the last name. Each is split into
	// words of letters; words of three or more letters are checked.
	Names []string
}

// CheckerConfig configures a PasswordChecker.
type CheckerConfig struct {
	// Breached is the operator's list of breached passwords, refused
	// beside zxcvbn's common passwords; the zero Blocklist for none.
	Breached Blocklist
	// MaxConcurrent bounds how many passwords are scored at once, so that
	// a burst of adversarial passwords (see MaxScoredLen) takes no more
	// cores than hashing does. 0 means the hasher's default: one fewer
	// than the cores, at least one. The gateway passes its hashing
	// settings (password.max_concurrent, queue_timeout, nice).
	MaxConcurrent int
	// QueueTimeout bounds how long a password waits to be scored; past it
	// Measure fails with ErrBusy. 0 means 2 seconds.
	QueueTimeout time.Duration
	// Nice lowers the scoring threads' priority as Params.Nice lowers the
	// hashing threads' (0 keeps it, 19 is the lowest).
	Nice int
}

// PasswordChecker measures a new password for the password rules
// (rego/password.rego) following NIST SP 800-63B rev. 4 §3.1.1.2: the
// length, whether it contains the username or one of the person's names,
// whether it is on the blocklist (zxcvbn's common passwords and the
// operator's breached list), and zxcvbn's estimate of the guesses it
// takes. It never stores, logs or returns the password. It is safe for
// concurrent use.
type PasswordChecker struct {
	common   map[string]struct{} // zxcvbn's list, as blockKey makes them
	breached map[string]struct{} // the operator's list, shared with its Blocklist (never modified)
	slots    chan struct{}
	wait     time.Duration
	nice     int
}

// NewPasswordChecker returns a checker whose blocklist is zxcvbn's list of
// common passwords plus cfg.Breached.
func NewPasswordChecker(cfg CheckerConfig) (*PasswordChecker, error) {
	if cfg.MaxConcurrent < 0 {
		return nil, fmt.Errorf("password checker: max concurrent %d is negative", cfg.MaxConcurrent)
	}
	if cfg.QueueTimeout < 0 {
		return nil, fmt.Errorf("password checker: queue timeout %v is negative", cfg.QueueTimeout)
	}
	if cfg.Nice < 0 || cfg.Nice > 19 {
		return nil, fmt.Errorf("password checker: nice %d is outside 0 to 19", cfg.Nice)
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultParams().MaxConcurrent
	}
	if cfg.QueueTimeout == 0 {
		cfg.QueueTimeout = defaultQueueTimeout
	}
	list := frequency.FrequencyLists["passwords"]
	c := &PasswordChecker{common: make(map[string]struct{}, len(list)), breached: cfg.Breached.set,
		slots: make(chan struct{}, cfg.MaxConcurrent), wait: cfg.QueueTimeout, nice: cfg.Nice}
	fold := cases.Fold()
	for _, p := range list {
		c.common[blockKey(fold, p)] = struct{}{}
	}
	return c, nil
}

// Breached is the number of passwords on the operator's list.
func (c *PasswordChecker) Breached() int { return len(c.breached) }

// Measure measures password for owner. Every fact is computed on the NFC
// form of the password; the comparisons with the blocklist, the username
// and the names also ignore case. A password that is not valid UTF-8
// cannot be scored and gets GuessesLog10 0, which the policy refuses. The
// error is ErrBusy (wrapped) when every scoring slot stayed taken for the
// queue timeout, or the context's; the facts then have GuessesLog10 0, so
// that a caller that passes them on anyway has the password refused.
func (c *PasswordChecker) Measure(ctx context.Context, password string, owner PasswordOwner) (policies.PasswordFacts, error) {
	p := norm.NFC.String(password)
	fold := cases.Fold()
	key := blockKey(fold, p)
	_, common := c.common[key]
	if _, breached := c.breached[key]; breached {
		common = true
	}
	f := policies.PasswordFacts{
		Length:  utf8.RuneCountInString(p),
		Classes: classes(p),
		Common:  common,
	}
	// zxcvbn's user inputs: words an attacker who knows the person tries
	// first, matched wherever they occur in the password (whole or
	// reversed, with l33t substitutions).
	inputs := make([]string, 0, 4+2*len(owner.Names))
	if u := blockKey(fold, strings.TrimSpace(owner.Username)); utf8.RuneCountInString(u) >= minNameLen {
		f.ContainsUsername = strings.Contains(key, u)
		inputs = append(inputs, u)
		for _, w := range nameWords(u) { // "john.smith" also gives john and smith
			if utf8.RuneCountInString(w) >= minNameLen && w != u {
				inputs = append(inputs, w)
			}
		}
	}
	for _, name := range owner.Names {
		for _, w := range nameWords(name) {
			w = blockKey(fold, w)
			if utf8.RuneCountInString(w) < minNameLen {
				continue
			}
			if strings.Contains(key, w) {
				f.ContainsName = true
			}
			inputs = append(inputs, w)
		}
	}
	if err := c.acquire(ctx); err != nil {
		return f, err
	}
	defer func() { <-c.slots }()
	runAtNice(c.nice, func() { f.GuessesLog10 = guessesLog10(p, inputs) })
	return f, nil
}

// Facts is Measure for the flows that set a password (their
// PasswordChecker interfaces): names are the display name and the last
// name. It waits for a scoring slot up to the queue timeout; past it the
// password has GuessesLog10 0 and the policy refuses it as guessable
// rather than accept it unscored.
func (c *PasswordChecker) Facts(password, username string, names ...string) policies.PasswordFacts {
	f, _ := c.Measure(context.Background(), password, PasswordOwner{Username: username, Names: names})
	return f
}

// acquire takes a scoring slot, waiting at most the queue timeout.
func (c *PasswordChecker) acquire(ctx context.Context) error {
	select {
	case c.slots <- struct{}{}:
		return nil
	default:
	}
	wait := time.NewTimer(c.wait)
	defer wait.Stop()
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-wait.C:
		return fmt.Errorf("password checker: %d scoring slots busy for %v: %w", cap(c.slots), c.wait, ErrBusy)
	case <-ctx.Done():
		return fmt.Errorf("password checker: waiting for a scoring slot: %w", ctx.Err())
	}
}

// guessesLog10 is the whole part of log10 of zxcvbn's guesses estimate for
// the first MaxScoredLen characters of p, with inputs as words the attacker
// knows.
func guessesLog10(p string, inputs []string) int {
	if !utf8.ValidString(p) {
		return 0
	}
	n := 0
	for i := range p {
		if n == MaxScoredLen {
			p = p[:i]
			break
		}
		n++
	}
	g := zxcvbn.PasswordStrength(p, inputs).Guesses
	if !(g >= 1) || math.IsInf(g, 0) {
		// zxcvbn gives 0 for what it cannot score; NaN fails the test too.
		return 0
	}
	// The small margin keeps exact powers of ten (zxcvbn's estimate for
	// random characters is 10^length) from flooring to one less.
	return int(math.Floor(math.Log10(g) + 1e-9))
}

// classes counts the character classes p uses: lower case, upper case,
// digits, others.
func classes(p string) int {
	var lower, upper, digit, other int
	for _, r := range p {
		switch {
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			other = 1
		}
	}
	return lower + upper + digit + other
}

// nameWords splits a name into its words: runs of letters and combining
// marks, so "Mary-Jane O'Neil" is Mary, Jane, O and Neil.
func nameWords(name string) []string {
	return strings.FieldsFunc(name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsMark(r) })
}
