package policies

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
)

// The standards the audit judges the policy against.
const (
	// StandardNIST is NIST SP 800-63B revision 4 (final, 2025).
	StandardNIST = "NIST SP 800-63B-4"
	// StandardASVS is the OWASP Application Security Verification
	// Standard 5.0.0 (2025).
	StandardASVS = "OWASP ASVS 5.0.0"
)

// AuditStatus is how a control fares against the standards.
type AuditStatus string

// The audit statuses. A control that does not meet a requirement is a
// deviation when the policy data carries a justification for it
// (data.portcullis.standards.deviations[control]) and unjustified when it
// does not.
const (
	AuditPass        AuditStatus = "pass"
	AuditDeviation   AuditStatus = "deviation"
	AuditUnjustified AuditStatus = "unjustified"
)

// Requirement is one requirement of a standard that a control answers to.
type Requirement struct {
	// Standard is StandardNIST or StandardASVS.
	Standard string `json:"standard"`
	// Section is the section or requirement number: "3.1.3.2", "V6.5.5".
	Section string `json:"section"`
	// Text says what the requirement asks, briefly.
	Text string `json:"text"`
}

// String is the requirement as the reports print it:
// "SP 800-63B §3.1.3.2: ..." or "ASVS 5.0 V6.5.5: ...".
func (r Requirement) String() string { return r.Ref() + ": " + r.Text }

// Ref is the requirement's short reference: "SP 800-63B §3.1.3.2" or
// "ASVS 5.0 V6.5.5".
func (r Requirement) Ref() string {
	if r.Standard == StandardNIST {
		return "SP 800-63B §" + r.Section
	}
	return "ASVS 5.0 " + r.Section
}

// Deviation is a justification for a control that departs from the
// standards on purpose: one entry of data.portcullis.standards.deviations,
// keyed by the control's ID. Every field is required; Date is YYYY-MM-DD.
type Deviation struct {
	Justification string `json:"justification"`
	ApprovedBy    string `json:"approved_by"`
	Date          string `json:"date"`
}

// AuditRow is one control of the audit: what the standards ask, what the
// policy enforces, and how the two compare.
type AuditRow struct {
	// Control is the control's stable ID, the key of its justification in
	// data.portcullis.standards.deviations.
	Control string `json:"control"`
	// Title names the control.
	Title string `json:"title"`
	// Requirements are the sections of the standards the control answers
	// to.
	Requirements []Requirement `json:"requirements"`
	// Settings are the policy data (below data.portcullis.config) and
	// rules the value was read from.
	Settings []string `json:"settings"`
	// Value is what the policy enforces, as read from the serving policy.
	Value string `json:"value"`
	// Status is pass, deviation or unjustified.
	Status AuditStatus `json:"status"`
	// Note explains the judgement where it needs explaining.
	Note string `json:"note,omitempty"`
	// Justification is the policy data's justification for this control,
	// when it has one (also on a control that passes).
	Justification *Deviation `json:"justification,omitempty"`
}

// AuditSummary counts the rows of an audit by status.
type AuditSummary struct {
	Pass        int `json:"pass"`
	Deviation   int `json:"deviation"`
	Unjustified int `json:"unjustified"`
}

// AuditReport is the serving policy judged against NIST SP 800-63B-4 and
// OWASP ASVS 5.0.0, one row per control the policies govern. Its JSON
// field names are stable.
type AuditReport struct {
	// Revision is the policy revision audited.
	Revision string `json:"policy_revision"`
	// Source is where the policies came from: "embedded" or a directory.
	Source string `json:"source"`
	// Standards are the standards judged against.
	Standards []string `json:"standards"`
	// Rows are the controls, in a fixed order.
	Rows []AuditRow `json:"controls"`
	// Summary counts the rows by status.
	Summary AuditSummary `json:"summary"`
}

// AuditFacts are what the audit needs that the policy data does not hold:
// properties of the gateway binary.
type AuditFacts struct {
	// CodeDigits is the length, in decimal digits, of the security codes
	// the gateway generates.
	CodeDigits int
}

// control is one control of the audit and how it is judged.
type control struct {
	id, title string
	reqs      []Requirement
	settings  []string
	// judge reads the value and says whether it meets the requirements.
	judge func(a *auditData) (value string, pass bool, note string)
}

// auditData is what the controls are judged on: the serving policy's
// settings, the answers of its rules to probe inputs, and the gateway's
// facts.
type auditData struct {
	cfg   configData
	facts AuditFacts
	// plainAccepted: a minimum-length password of one character class,
	// not common and hard to guess, is accepted.
	plainAccepted bool
	// plainRefusal is why it was refused, when it was.
	plainRefusal string
	// commonRefused: the same password on the common list is refused.
	commonRefused bool
	// usernameRefused: the same password containing the username is
	// refused.
	usernameRefused bool
	// deviceSkips: a device registered a second ago is recognised, so it
	// skips the login step-up.
	deviceSkips bool
}

func nist(section, text string) Requirement {
	return Requirement{Standard: StandardNIST, Section: section, Text: text}
}

func asvs(section, text string) Requirement {
	return Requirement{Standard: StandardASVS, Section: section, Text: text}
}

// pstnMethods are the step-up methods that send a code over the public
// telephone network.
var pstnMethods = []string{"sms", "voice"}

// controls are the audited controls, in report order.
var controls = []control{
	{
		id: "code_lifetime", title: "Security code lifetime",
		reqs: []Requirement{
			nist("3.1.3.2", "an out-of-band authentication is invalid unless completed within 10 minutes"),
			asvs("V6.5.5", "out-of-band requests, codes or tokens have a maximum lifetime of 10 minutes"),
		},
		settings: []string{"codes.ttl_seconds"},
		judge: func(a *auditData) (string, bool, string) {
			ttl := *a.cfg.Codes.TTLSeconds
			return seconds(ttl), ttl > 0 && ttl <= 600, ""
		},
	},
	{
		id: "code_entropy", title: "Security code entropy",
		reqs: []Requirement{
			nist("3.1.3.2", "authentication secrets of at least six decimal digits from an approved random bit generator"),
			asvs("V6.5.4", "out-of-band codes have at least 20 bits of entropy (6 random digits suffice)"),
		},
		settings: []string{"the gateway's code generator"},
		judge: func(a *auditData) (string, bool, string) {
			d := a.facts.CodeDigits
			return fmt.Sprintf("%d random digits (%.1f bits)", d, float64(d)*math.Log2(10)), d >= 6, ""
		},
	},
	{
		id: "code_attempts", title: "Tries per security code",
		reqs: []Requirement{
			nist("3.1.3.2", "secrets under 64 bits need rate limiting of failed attempts as in §3.2.2"),
			asvs("V6.6.3", "code-based out-of-band authentication is protected against brute force by rate limiting"),
		},
		settings: []string{"codes.max_attempts"},
		judge: func(a *auditData) (string, bool, string) {
			n := *a.cfg.Codes.MaxAttempts
			return fmt.Sprintf("%d tries per code, then the code is void", n), n >= 1 && n <= 100, ""
		},
	},
	{
		id: "step_up_failure_limit", title: "Wrong step-up answers per account",
		reqs: []Requirement{
			nist("3.2.2", "consecutive failed attempts on one account limited to no more than 100"),
			nist("3.1.3.2", "generating a new authentication secret does not reset the failed-attempt count"),
			asvs("V6.3.1", "brute-force controls implemented as documented"),
		},
		settings: []string{"step_up.max_consecutive_failures", "step_up.failures.max", "step_up.failures.window_seconds"},
		judge: func(a *auditData) (string, bool, string) {
			n := *a.cfg.StepUp.MaxConsecutiveFailures
			f := a.cfg.StepUp.Failures
			value := fmt.Sprintf("locks after %d wrong answers in a row, over all codes, logins and windows; "+
				"throttled to %d per account per %s window", n, *f.Max, seconds(*f.WindowSeconds))
			return value, n >= 1 && n <= 100,
				"Only a passed step-up resets the count; a new code, a resend, a new login or the window ending do not. " +
					"Unlocking takes a password reset or an administrator."
		},
	},
	{
		id: "password_lockout", title: "Wrong passwords before the profile locks",
		reqs: []Requirement{
			nist("3.2.2", "consecutive failed attempts on one account limited to no more than 100"),
			asvs("V6.3.1", "credential stuffing and password brute force are prevented as documented"),
		},
		settings: []string{"lockout.max_consecutive_failures"},
		judge: func(a *auditData) (string, bool, string) {
			n := *a.cfg.Lockout.MaxConsecutiveFailures
			return fmt.Sprintf("locks after %d wrong passwords in a row", n), n >= 1 && n <= 100,
				"A success resets the count; unlocking takes a password reset or an administrator."
		},
	},
	{
		id: "password_min_length", title: "Password minimum length",
		reqs: []Requirement{
			nist("3.1.1.2", "passwords at least 15 characters when used as a single factor, at least 8 when used only with multi-factor authentication"),
			asvs("V6.2.1", "passwords at least 8 characters; 15 strongly recommended"),
		},
		settings: []string{"passwords.min_length", "step_up.allow_without_second_factor", "step_up.methods"},
		judge: func(a *auditData) (string, bool, string) {
			n := *a.cfg.Passwords.MinLength
			value := fmt.Sprintf("%d characters", n)
			if n >= 15 {
				return value, true, ""
			}
			if a.multiFactor() {
				return value, n >= 8, "Judged as used with multi-factor authentication (minimum 8): a right password on an unrecognised device " +
					"always needs a step-up (step_up.allow_without_second_factor is false and step-up methods are set). " +
					"Alone the password would need 15. Registered devices and challenge-question step-ups are judged in " +
					"remembered_devices and knowledge_questions."
			}
			return value, false, "A login can succeed on the password alone (step_up.allow_without_second_factor, or no step-up methods), " +
				"so the single-factor minimum of 15 applies."
		},
	},
	{
		id: "password_max_length", title: "Password maximum length",
		reqs: []Requirement{
			nist("3.1.1.2", "a maximum password length of at least 64 characters is permitted"),
			asvs("V6.2.9", "passwords of at least 64 characters are permitted"),
		},
		settings: []string{"passwords.max_length"},
		judge: func(a *auditData) (string, bool, string) {
			n := *a.cfg.Passwords.MaxLength
			return fmt.Sprintf("%d characters", n), n >= 64, ""
		},
	},
	{
		id: "password_blocklist", title: "Common and breached passwords refused",
		reqs: []Requirement{
			nist("3.1.1.2", "new passwords are compared against a blocklist of commonly used, expected or compromised values"),
			asvs("V6.2.4", "new passwords are checked against at least the top 3000 passwords"),
			asvs("V6.2.12", "new passwords are checked against a set of breached passwords"),
		},
		settings: []string{"password.refusal"},
		judge: func(a *auditData) (string, bool, string) {
			parts := []string{"common or breached: allowed"}
			if a.commonRefused {
				parts[0] = "common or breached: refused"
			}
			if a.usernameRefused {
				parts = append(parts, "containing the username: refused")
			} else {
				parts = append(parts, "containing the username: allowed")
			}
			return strings.Join(parts, "; "), a.commonRefused,
				"Probed on the policy's password rule; the list itself is the gateway's."
		},
	},
	{
		id: "password_composition", title: "No composition rules",
		reqs: []Requirement{
			nist("3.1.1.2", "no composition rules (such as mixtures of character types) are imposed"),
			asvs("V6.2.5", "passwords of any composition are accepted, with no character-type rules"),
		},
		settings: []string{"password.refusal"},
		judge: func(a *auditData) (string, bool, string) {
			n := *a.cfg.Passwords.MinLength
			if a.plainAccepted {
				return "none", true, fmt.Sprintf("Probed: a %d-character password of one character class that is not common is accepted.", n)
			}
			return "password refused: " + a.plainRefusal, false,
				fmt.Sprintf("Probed: a %d-character password of one character class that is not common is refused.", n)
		},
	},
	{
		id: "pstn_codes", title: "Codes by text message or voice call (restricted)",
		reqs: []Requirement{
			nist("3.1.3.3", "out-of-band authentication over the PSTN (SMS, voice) is restricted"),
			nist("3.2.9", "a restricted authenticator needs a risk assessment, notice to subscribers and a migration plan"),
			asvs("V6.6.1", "PSTN codes only to validated numbers, with stronger methods also offered; not at L3"),
		},
		settings: []string{"step_up.methods", "settings.step_up_methods", "access.step_up_methods", "recovery.methods"},
		judge: func(a *auditData) (string, bool, string) {
			uses := a.uses(pstnMethods...)
			if len(uses) == 0 {
				return "not used", true, ""
			}
			return "sms, voice in " + strings.Join(uses, ", "), false, ""
		},
	},
	{
		id: "pstn_alternatives", title: "Stronger methods beside phone codes",
		reqs: []Requirement{
			nist("3.1.3.3", "verifiers using the PSTN ensure alternative authenticator types are available to all subscribers"),
			asvs("V6.6.1", "alternate stronger methods (such as TOTP) are offered beside PSTN codes"),
		},
		settings: []string{"step_up.methods"},
		judge: func(a *auditData) (string, bool, string) {
			var strong []string
			for _, m := range *a.cfg.StepUp.Methods {
				if m == "totp" || m == "passkey" {
					strong = append(strong, m)
				}
			}
			if len(strong) > 0 {
				return "login step-up also offers " + strings.Join(strong, ", "), true, ""
			}
			if len(a.uses(pstnMethods...)) == 0 {
				return "no phone codes", true, ""
			}
			return "phone codes without an authenticator app or passkey", false, ""
		},
	},
	{
		id: "knowledge_questions", title: "Challenge questions as a step-up",
		reqs: []Requirement{
			nist("2.2.1", "knowledge-based questions are not among the permitted authenticator types"),
			asvs("V6.4.2", "no password hints or knowledge-based authentication (secret questions)"),
		},
		settings: []string{"step_up.methods", "settings.step_up_methods", "access.step_up_methods", "recovery.methods"},
		judge: func(a *auditData) (string, bool, string) {
			uses := a.uses("questions")
			if len(uses) == 0 {
				return "not used", true, ""
			}
			return "questions in " + strings.Join(uses, ", "), false, ""
		},
	},
	{
		id: "remembered_devices", title: "Registered devices skip the login step-up",
		reqs: []Requirement{
			nist("5.1", "cookies and \"remember my browser\" features are not used instead of authentication"),
			nist("3.2.1", "a browser cookie is not a physical authenticator above AAL1"),
			asvs("V6.3.3", "multi-factor authentication is required; relaxing it needs a documented rationale and mitigations"),
		},
		settings: []string{"devices.offer_registration", "devices.lifetime_seconds", "stepup.device_recognised"},
		judge: func(a *auditData) (string, bool, string) {
			if !a.deviceSkips {
				return "every login step-up is asked", true, ""
			}
			value := "registered devices skip the step-up for " + seconds(*a.cfg.Devices.LifetimeSeconds)
			if *a.cfg.Devices.OfferRegistration {
				return value + "; registration offered", false, ""
			}
			return value + "; registration not offered", false, "Devices registered earlier still skip the step-up until their registration ends."
		},
	},
	{
		id: "session_idle", title: "Session inactivity limit",
		reqs: []Requirement{
			nist("2.2.3", "inactivity timeout no more than 1 hour at AAL2 (15 minutes at AAL3, §2.3.3)"),
			asvs("V7.3.1", "an inactivity timeout enforces re-authentication"),
		},
		settings: []string{"session.idle_seconds", "access.routes.*.session_idle_seconds"},
		judge: func(a *auditData) (string, bool, string) {
			n, route := a.longest(*a.cfg.Session.IdleSeconds, func(r routeData) *int { return r.SessionIdleSeconds })
			return sessionValue(n, route), n > 0 && n <= 3600, aal3Note(n, 900)
		},
	},
	{
		id: "session_max", title: "Session absolute limit",
		reqs: []Requirement{
			nist("2.2.3", "overall reauthentication timeout no more than 24 hours at AAL2 (12 hours at AAL3, §2.3.3)"),
			asvs("V7.3.2", "an absolute maximum session lifetime enforces re-authentication"),
		},
		settings: []string{"session.max_seconds", "access.routes.*.session_max_seconds"},
		judge: func(a *auditData) (string, bool, string) {
			n, route := a.longest(*a.cfg.Session.MaxSeconds, func(r routeData) *int { return r.SessionMaxSeconds })
			return sessionValue(n, route), n > 0 && n <= 86400, aal3Note(n, 43200)
		},
	},
	{
		id: "settings_step_up", title: "Fresh step-up for security changes",
		reqs: []Requirement{
			nist("4.1.2", "binding a new authenticator (such as a new security phone, §3.1.3.3) requires authentication in the session"),
			asvs("V7.5.3", "further authentication with at least one factor before highly sensitive operations"),
		},
		settings: []string{"settings.step_up_window_seconds", "settings.step_up_methods", "settings.changes"},
		judge: func(a *auditData) (string, bool, string) {
			window := *a.cfg.Settings.StepUpWindowSeconds
			methods := slices.DeleteFunc(slices.Clone(*a.cfg.Settings.StepUpMethods), func(m string) bool { return m == "questions" })
			kinds := slices.Sorted(maps.Keys(a.cfg.Settings.Changes))
			value := fmt.Sprintf("step-up within %s for every change (%d kinds)", seconds(window), len(kinds))
			note := "Changes: " + strings.Join(kinds, ", ") + ". "
			if len(methods) == 0 {
				return value, false, note + "No step-up method other than challenge questions is accepted for settings."
			}
			return value, window > 0 && window <= 3600,
				note + "A step-up older than the AAL2 inactivity limit (1 hour) would not count as fresh."
		},
	},
}

// controlIDs are the IDs of the audited controls.
func controlIDs() []string {
	ids := make([]string, len(controls))
	for i, c := range controls {
		ids[i] = c.id
	}
	return ids
}

// multiFactor reports whether a right password alone never signs anyone in
// on an unrecognised device.
func (a *auditData) multiFactor() bool {
	return !*a.cfg.StepUp.AllowWithoutSecondFactor && len(*a.cfg.StepUp.Methods) > 0
}

// uses names where any of methods is offered: the login step-up, settings,
// sensitive paths, and each kind of recovery.
func (a *auditData) uses(methods ...string) []string {
	offered := func(list []string) bool {
		return slices.ContainsFunc(list, func(m string) bool { return slices.Contains(methods, m) })
	}
	var out []string
	if offered(*a.cfg.StepUp.Methods) {
		out = append(out, "login step-up")
	}
	if offered(*a.cfg.Settings.StepUpMethods) {
		out = append(out, "settings")
	}
	if offered(*a.cfg.Access.StepUpMethods) {
		out = append(out, "sensitive paths")
	}
	for _, kind := range slices.Sorted(maps.Keys(a.cfg.Recovery.Methods)) {
		if offered(a.cfg.Recovery.Methods[kind]) {
			out = append(out, kind+" recovery")
		}
	}
	return out
}

// longest is the largest of def and the per-route overrides field picks,
// and the route that sets it ("" when it is def).
func (a *auditData) longest(def int, field func(routeData) *int) (int, string) {
	n, at := def, ""
	routes := a.cfg.Access.Routes
	for _, name := range slices.Sorted(maps.Keys(routes)) {
		if v := field(routes[name]); v != nil && *v > n {
			n, at = *v, name
		}
	}
	if v := field(*a.cfg.Access.DefaultRoute); v != nil && *v > n {
		n, at = *v, "default_route"
	}
	return n, at
}

func sessionValue(n int, route string) string {
	if route == "" {
		return seconds(n)
	}
	return seconds(n) + " (route " + route + ")"
}

func aal3Note(n, aal3 int) string {
	if n > 0 && n <= aal3 {
		return "Also within the AAL3 limit."
	}
	return ""
}

// seconds writes a number of seconds with a readable equivalent:
// "1200 s (20 min)".
func seconds(n int) string {
	d := time.Duration(n) * time.Second
	switch {
	case n <= 0 || n%60 != 0:
		return fmt.Sprintf("%d s", n)
	case n == 86400:
		return fmt.Sprintf("%d s (1 day)", n)
	case n%86400 == 0:
		return fmt.Sprintf("%d s (%d days)", n, n/86400)
	case n%3600 == 0:
		return fmt.Sprintf("%d s (%d h)", n, int(d.Hours()))
	}
	return fmt.Sprintf("%d s (%d min)", n, int(d.Minutes()))
}

// Audit judges the serving policy against NIST SP 800-63B-4 and OWASP
// ASVS 5.0.0: one row per control the policies govern, each read from the
// policy's effective data or from its rules' answers to probe inputs, with
// the justification the data carries for a deviation. facts are the
// gateway's own properties. An error means no report: the policy could not
// be read, or facts are incomplete.
func (e *Engine) Audit(ctx context.Context, facts AuditFacts) (*AuditReport, error) {
	if facts.CodeDigits <= 0 {
		return nil, errors.New("policies: audit: the security code length is unknown")
	}
	set := e.current.Load()
	a := &auditData{facts: facts}
	raw, err := set.query(ctx, "data.portcullis.config", nil)
	if err != nil {
		return nil, fmt.Errorf("policies: audit: %w", err)
	}
	if err := decodeStrict(raw, &a.cfg); err != nil {
		return nil, fmt.Errorf("policies: audit: data.portcullis.config: %w", err)
	}
	if err := a.probe(ctx, set); err != nil {
		return nil, fmt.Errorf("policies: audit: %w", err)
	}
	raw, err = set.query(ctx, "data.portcullis.standards", nil)
	if err != nil {
		return nil, fmt.Errorf("policies: audit: %w", err)
	}
	deviations, err := decodeDeviations(raw)
	if err != nil {
		return nil, fmt.Errorf("policies: audit: %w", err)
	}
	r := &AuditReport{
		Revision:  set.revision,
		Source:    e.origin,
		Standards: []string{StandardNIST + " (2025)", StandardASVS + " (2025)"},
	}
	for _, c := range controls {
		value, pass, note := c.judge(a)
		row := AuditRow{
			Control: c.id, Title: c.title, Requirements: c.reqs, Settings: c.settings,
			Value: value, Status: AuditPass, Note: note,
		}
		if d, ok := deviations[c.id]; ok {
			row.Justification = &d
		}
		switch {
		case pass:
			r.Summary.Pass++
			if row.Justification != nil {
				row.Note = strings.TrimSpace(row.Note + " A justification is on file although the control passes.")
			}
		case row.Justification != nil:
			row.Status = AuditDeviation
			r.Summary.Deviation++
		default:
			row.Status = AuditUnjustified
			r.Summary.Unjustified++
		}
		r.Rows = append(r.Rows, row)
	}
	return r, nil
}

// probe asks the policy's rules about made-up inputs, for the controls the
// data alone cannot show.
func (a *auditData) probe(ctx context.Context, set *policySet) error {
	minLength := *a.cfg.Passwords.MinLength
	password := func(common, containsUsername bool) map[string]any {
		// A password at the minimum length, of lower-case letters only,
		// that an attacker could not guess.
		return map[string]any{
			"length": minLength, "classes": 1, "contains_username": containsUsername,
			"contains_name": false, "common": common, "guesses_log10": 100,
		}
	}
	refusal := func(facts map[string]any) (string, error) {
		v, err := set.query(ctx, "data.portcullis.password.refusal(input)", facts)
		if err != nil || v == nil {
			return "", err
		}
		s, _ := v.(string)
		return cmp.Or(s, fmt.Sprint(v)), nil
	}
	var err error
	if a.plainRefusal, err = refusal(password(false, false)); err != nil {
		return err
	}
	a.plainAccepted = a.plainRefusal == ""
	common, err := refusal(password(true, false))
	if err != nil {
		return err
	}
	a.commonRefused = common != ""
	username, err := refusal(password(false, true))
	if err != nil {
		return err
	}
	a.usernameRefused = username != ""
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	v, err := set.query(ctx, "data.portcullis.stepup.device_recognised", map[string]any{
		"now":    now,
		"device": map[string]any{"recognised": true, "registered_at": now - 1},
	})
	if err != nil {
		return err
	}
	a.deviceSkips = v == true
	return nil
}

// query evaluates a query against the policy with input (nil for none) and
// returns its value, nil when it is undefined.
func (s *policySet) query(ctx context.Context, query string, input any) (any, error) {
	opts := []func(*rego.Rego){
		rego.Query(query),
		rego.Compiler(s.compiler),
		rego.Store(s.store),
		rego.StrictBuiltinErrors(true),
	}
	if input != nil {
		opts = append(opts, rego.Input(input))
	}
	rs, err := rego.New(opts...).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", query, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	return rs[0].Expressions[0].Value, nil
}

// decodeStrict decodes v, a JSON-like value, into dst, refusing unknown
// fields.
func decodeStrict(v any, dst any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// readDeviations checks and returns data.portcullis.standards.deviations
// from the policy data; load refuses data where it is malformed.
func readDeviations(data map[string]any) (map[string]Deviation, error) {
	portcullis, _ := data["portcullis"].(map[string]any)
	return decodeDeviations(portcullis["standards"])
}

// decodeDeviations reads data.portcullis.standards (nil when absent): an
// object whose only key, deviations, maps a control ID of the audit to a
// Deviation with every field set and a YYYY-MM-DD date.
func decodeDeviations(standards any) (map[string]Deviation, error) {
	if standards == nil {
		return nil, nil
	}
	var doc struct {
		Deviations map[string]Deviation `json:"deviations"`
	}
	if err := decodeStrict(standards, &doc); err != nil {
		return nil, fmt.Errorf("data.portcullis.standards: %w", err)
	}
	known := controlIDs()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(doc.Deviations)) {
		d := doc.Deviations[id]
		at := "data.portcullis.standards.deviations." + id
		if !slices.Contains(known, id) {
			errs = append(errs, fmt.Errorf("%s: no such control (controls: %s)", at, strings.Join(known, ", ")))
			continue
		}
		if strings.TrimSpace(d.Justification) == "" || strings.TrimSpace(d.ApprovedBy) == "" {
			errs = append(errs, fmt.Errorf("%s needs a justification and approved_by", at))
		}
		if _, err := time.Parse(time.DateOnly, d.Date); err != nil {
			errs = append(errs, fmt.Errorf("%s.date must be YYYY-MM-DD, got %q", at, d.Date))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return doc.Deviations, nil
}

// Unjustified is the number of controls that deviate without a
// justification.
func (r *AuditReport) Unjustified() int { return r.Summary.Unjustified }

// WriteJSON writes the report as one indented JSON document.
func (r *AuditReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// refs are a row's requirement references, one group per standard:
// "SP 800-63B §3.2.2, §3.1.3.2; ASVS 5.0 V6.3.1".
func (row AuditRow) refs() string {
	var groups []string
	last := ""
	for _, req := range row.Requirements {
		if req.Standard == last {
			short := req.Section
			if req.Standard == StandardNIST {
				short = "§" + short
			}
			groups[len(groups)-1] += ", " + short
			continue
		}
		groups = append(groups, req.Ref())
		last = req.Standard
	}
	return strings.Join(groups, "; ")
}

// WriteText writes the report for a terminal: an aligned table, one row
// per control, then each deviation with its requirements, note and
// justification.
func (r *AuditReport) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "policy %s (%s) against %s\n\n", r.Revision, r.Source, strings.Join(r.Standards, " and "))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCONTROL\tVALUE\tREQUIREMENTS")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.Status, row.Control, row.Value, row.refs())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\n%d pass, %d deviation, %d unjustified\n", r.Summary.Pass, r.Summary.Deviation, r.Summary.Unjustified)
	for _, row := range r.Rows {
		if row.Status == AuditPass && row.Note == "" {
			continue
		}
		fmt.Fprintf(&b, "\n%s: %s (%s)\n", row.Control, row.Title, row.Status)
		for _, req := range row.Requirements {
			fmt.Fprintf(&b, "  %s\n", req)
		}
		fmt.Fprintf(&b, "  configured: %s (%s)\n", row.Value, strings.Join(row.Settings, ", "))
		if row.Note != "" {
			fmt.Fprintf(&b, "  note: %s\n", row.Note)
		}
		switch {
		case row.Justification != nil:
			fmt.Fprintf(&b, "  justification (%s, %s): %s\n", row.Justification.ApprovedBy, row.Justification.Date, row.Justification.Justification)
		case row.Status == AuditUnjustified:
			fmt.Fprintf(&b, "  NO JUSTIFICATION: add data.portcullis.standards.deviations.%s or change the setting\n", row.Control)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteMarkdown writes the report as a Markdown table for an auditor.
func (r *AuditReport) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Policy audit: %s\n\n", strings.Join(r.Standards, ", "))
	fmt.Fprintf(&b, "Policy revision `%s` (%s): %d pass, %d deviation with a justification, %d deviation without one.\n\n",
		r.Revision, r.Source, r.Summary.Pass, r.Summary.Deviation, r.Summary.Unjustified)
	b.WriteString("| Control | Requirement | Configured value | Result | Justification or note |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		reqs := make([]string, len(row.Requirements))
		for i, req := range row.Requirements {
			reqs[i] = "**" + req.Ref() + "**: " + req.Text
		}
		result := "pass"
		switch row.Status {
		case AuditDeviation:
			result = "**deviation** (justified)"
		case AuditUnjustified:
			result = "**deviation — no justification**"
		}
		var just []string
		if d := row.Justification; d != nil {
			just = append(just, fmt.Sprintf("%s — approved by %s, %s", d.Justification, d.ApprovedBy, d.Date))
		}
		if row.Note != "" {
			just = append(just, row.Note)
		}
		fmt.Fprintf(&b, "| %s<br>`%s` | %s | %s<br>(%s) | %s | %s |\n",
			mdCell(row.Title), row.Control, strings.Join(mdCells(reqs), "<br>"),
			mdCell(row.Value), mdCell(strings.Join(row.Settings, ", ")), result, strings.Join(mdCells(just), "<br>"))
	}
	_, err := w.Write(b.Bytes())
	return err
}

// mdCell makes s safe inside a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func mdCells(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = mdCell(s)
	}
	return out
}
