package policies

import (
	"slices"
	"time"
)

// EnrolmentRules are the enrolment settings of the serving policy data
// (data.portcullis.config.enrolment) that the gateway applies in Go: the
// window it counts identity proofs in, whose counts rego/enrol.rego
// judges, and the account statuses that may make a profile, which it uses
// to choose the products a new profile reaches (the policy refuses an
// identity proof for an account of any other status).
type EnrolmentRules struct {
	// Window is the fixed window identity proofs are counted in, per
	// identity and per client address (enrolment.window_seconds).
	Window time.Duration
	// EligibleStatuses are the account statuses that may be used to
	// create a profile or be added to one (enrolment.eligible_statuses).
	EligibleStatuses []string
}

// Eligible reports whether an account of the given status may be used to
// create a profile or be added to one.
func (r EnrolmentRules) Eligible(status string) bool {
	return status != "" && slices.Contains(r.EligibleStatuses, status)
}

// EnrolmentRules are the enrolment settings of the serving policy.
func (e *Engine) EnrolmentRules() EnrolmentRules { return e.current.Load().enrolment }
