# Decision point "enrol": asked at each stage of creating a profile
# (input.enrolment.stage):
#   identify     the person proved who they are (identity_verified), the
#                identity may already have a profile (identity_has_profile),
#                and the account they named has a status (account_status)
#                that config.enrolment.eligible_statuses may or may not list;
#                identity proofs are counted per identity and per client
#                address (identity_attempts, address_attempts: this one
#                included, in fixed windows of config.enrolment.window_seconds)
#                and refused past config.enrolment.max_attempts_per_*;
#   credentials  the chosen username is free, the new password's facts, and
#                consent to electronic delivery;
#   phone        the security phone's facts.
# Anonymizer networks and throttled addresses are refused at every stage. A
# failed identity proof counts against the address, and so does one for an
# identity that has a profile: the gateway answers the two alike, so that
# nobody learns which identities have profiles, and they must throttle alike
# too.
package portcullis.enrol

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome
import data.portcullis.password
import data.portcullis.phone

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

stages := {"identify", "credentials", "phone"}

stage := input.enrolment.stage

# refusal is why this stage may not complete.
refusal := reason if {
	reason := ip.denial
} else := "ip_throttled" if {
	ip.throttled
} else := "enrolment_throttled" if {
	stage == "identify"
	attempts_exceeded
} else := "identity_not_verified" if {
	stage == "identify"
	not input.enrolment.identity_verified
} else := "profile_exists" if {
	stage == "identify"
	input.enrolment.identity_has_profile
} else := "account_not_eligible" if {
	stage == "identify"
	not object.get(input.enrolment, "account_status", "") in {status | some status in config.enrolment.eligible_statuses}
} else := "username_taken" if {
	stage == "credentials"
	not input.enrolment.username_available
} else := reason if {
	stage == "credentials"
	reason := password.refusal(object.get(input.enrolment, "new_password", {}))
} else := "consent_required" if {
	stage == "credentials"
	not input.enrolment.consent
} else := reason if {
	stage == "phone"
	reason := phone.refusal_any(object.get(input.enrolment, "phone", {}))
}

# attempts_exceeded is true when the identity or the client address has had
# more identity proofs in the window than config.enrolment allows. A count
# the gateway did not pass is taken as exceeded, so an uncounted proof is
# refused.
attempts_exceeded if not is_number(object.get(input.enrolment, "identity_attempts", null))

attempts_exceeded if not is_number(object.get(input.enrolment, "address_attempts", null))

attempts_exceeded if input.enrolment.identity_attempts > config.enrolment.max_attempts_per_identity

attempts_exceeded if input.enrolment.address_attempts > config.enrolment.max_attempts_per_address

decision := object.union(outcome.deny(refusal), ip.failure_count) if {
	refusal == "identity_not_verified"
} else := object.union(outcome.deny(refusal), ip.failure_count) if {
	refusal == "profile_exists"
} else := outcome.deny(refusal)

decision := outcome.allowed if {
	not refusal
	stage in stages
}
