# Decision point "enrol": asked at each stage of creating a profile
# (input.enrolment.stage):
#   identify     the person proved who they are (identity_verified) and the
#                identity may already have a profile (identity_has_profile);
#   credentials  the chosen username is free, the new password's facts, and
#                consent to electronic delivery;
#   phone        the security phone's facts.
# Anonymizer networks and throttled addresses are refused at every stage; a
# failed identity proof counts against the address.
package portcullis.enrol

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
} else := "identity_not_verified" if {
	stage == "identify"
	not input.enrolment.identity_verified
} else := "profile_exists" if {
	stage == "identify"
	input.enrolment.identity_has_profile
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

decision := object.union(outcome.deny(refusal), ip.failure_count) if {
	refusal == "identity_not_verified"
} else := outcome.deny(refusal)

decision := outcome.allowed if {
	not refusal
	stage in stages
}
