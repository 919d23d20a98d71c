package policies

import (
	"slices"
	"time"
)

// RecoveryRules are the recovery settings of the serving policy data
// (data.portcullis.config.recovery) that the gateway applies in Go: the
// window it counts identity proofs in, whose counts rego/recover.rego
// judges; whether a password recovery asks the identity questions; the
// methods every recovery offers, shown alike whether or not the answers
// matched a profile; and the lifetime of a code (codes.ttl_seconds), which
// a recovery that sends nothing gives its stand-in code too.
type RecoveryRules struct {
	// Window is the fixed window identity proofs are counted in, per
	// account and per client address (recovery.window_seconds).
	Window time.Duration
	// PasswordIdentityQuestions is whether a password recovery asks for
	// the last 4 of the SSN or TIN and the date of birth besides the last
	// name and the username (recovery.password_identity_questions).
	PasswordIdentityQuestions bool
	// Methods are the methods of each kind of recovery (username,
	// password), before the policy filters them by what the account can
	// receive (recovery.methods).
	Methods map[string][]string
	// CodeLifetime is how long a security code lives (codes.ttl_seconds).
	CodeLifetime time.Duration
}

// Offers reports the methods a recovery of kind offers, in the data's
// order; none for an unknown kind.
func (r RecoveryRules) Offers(kind string) []string { return slices.Clone(r.Methods[kind]) }

// RecoveryRules are the recovery settings of the serving policy.
func (e *Engine) RecoveryRules() RecoveryRules { return e.current.Load().recovery }
