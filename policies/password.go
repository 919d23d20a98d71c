package policies

import (
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// PasswordRules are the rules for a new password in the serving policy
// data (data.portcullis.config.passwords). rego/password.rego judges the
// same numbers from the facts the gateway measures, so a password Check
// accepts is one the policy accepts on length, and facts Judge accepts are
// facts the policy accepts. There are no composition rules. An empty
// password is always refused, and the zero value refuses every password.
type PasswordRules struct {
	// MinLength and MaxLength bound the length in characters, counted as
	// PasswordLength counts them (passwords.min_length, .max_length).
	MinLength int
	MaxLength int
	// MinGuessesLog10 is the fewest guesses, as a power of ten, that
	// PasswordFacts.GuessesLog10 must reach (passwords.min_guesses_log10).
	MinGuessesLog10 int
}

// PasswordLength is a password's length as the rules count it: Unicode
// code points after NFC normalisation (an invalid UTF-8 byte counts as
// one), so that "é" is one character however it was typed. The gateway
// reports this as PasswordFacts.Length.
func PasswordLength(p string) int {
	return utf8.RuneCountInString(norm.NFC.String(p))
}

// MaxBytes is the most UTF-8 bytes the NFC form of a password meeting the
// rules can take, for sizing what the gateway reads and hashes.
func (r PasswordRules) MaxBytes() int { return r.MaxLength * utf8.UTFMax }

// Check returns nil when p meets the rules, and otherwise a *PasswordError
// that says what to change. It never quotes the password.
func (r PasswordRules) Check(p string) error {
	n := PasswordLength(p)
	switch {
	case n < max(r.MinLength, 1):
		return &PasswordError{Reason: ReasonPasswordTooShort, Rules: r}
	case n > r.MaxLength:
		return &PasswordError{Reason: ReasonPasswordTooLong, Rules: r}
	}
	return nil
}

// Judge returns nil when a password with facts f meets every rule, and
// otherwise a *PasswordError for the first rule it breaks, in the order
// rego/password.rego refuses in: length, the username, a name, the common
// list, the guesses estimate. It is for tools that set a password without
// asking the policy (the admin command); the flows ask the policy.
func (r PasswordRules) Judge(f PasswordFacts) error {
	reason := ""
	switch {
	case f.Length < max(r.MinLength, 1):
		reason = ReasonPasswordTooShort
	case f.Length > r.MaxLength:
		reason = ReasonPasswordTooLong
	case f.ContainsUsername:
		reason = ReasonPasswordContainsUsername
	case f.ContainsName:
		reason = ReasonPasswordContainsName
	case f.Common:
		reason = ReasonPasswordCommon
	case f.GuessesLog10 < r.MinGuessesLog10:
		reason = ReasonPasswordGuessable
	default:
		return nil
	}
	return &PasswordError{Reason: reason, Rules: r}
}

// PasswordError is why a password does not meet the rules. Its message
// tells the person what to change and is safe to show and to log.
type PasswordError struct {
	// Reason is the policy's reason code for the same refusal: one of
	// the ReasonPassword constants.
	Reason string
	// Rules are the rules the password was checked against.
	Rules PasswordRules
}

func (e *PasswordError) Error() string {
	switch e.Reason {
	case ReasonPasswordTooLong:
		return fmt.Sprintf("a password can have at most %d characters: choose a shorter one", e.Rules.MaxLength)
	case ReasonPasswordContainsUsername:
		return "a password may not contain the username: choose one without it"
	case ReasonPasswordContainsName:
		return "a password may not contain the person's first or last name: choose one without them"
	case ReasonPasswordCommon:
		return "that password is on a list of common or breached passwords: choose another"
	case ReasonPasswordGuessable:
		return "that password would be easy to guess: make it longer and less predictable, for example four or more unrelated words"
	}
	return fmt.Sprintf("a password needs at least %d characters: choose a longer one", max(e.Rules.MinLength, 1))
}
