# Decision point "recover": forgot username (input.recovery.kind "username")
# or forgot password ("password"), in two stages (input.recovery.stage):
#   identify  the person answered the identity questions (identity_verified);
#             an approval lists in step_up how a code or message can reach
#             them (config.recovery.methods, filtered by what the account can
#             receive);
#   complete  the person passed one of those (verified_by); for a password,
#             the new password's facts. Completing a password recovery
#             resets the failure count and unlocks the account.
# Identity proofs are counted per account (the username, or a digest of the
# identity for a username) and per client address (account_attempts,
# address_attempts: this one included, in fixed windows of
# config.recovery.window_seconds) and refused past
# config.recovery.max_attempts_per_*. A password recovery asks the identity
# questions too (last 4 of the SSN or TIN, date of birth) when
# config.recovery.password_identity_questions is true: an identity proof
# without them (questions_answered) is then not verified.
package portcullis.recover

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome
import data.portcullis.password
import data.portcullis.phone

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

kind := input.recovery.kind

stage := input.recovery.stage

# reachable(method) is true when the account can receive a recovery message
# by method.
reachable("email") if input.account.email_on_file == true

reachable(method) if {
	method in {"sms", "voice"}
	phone.usable(input.account.security_phone, method)
}

methods := [method | some method in config.recovery.methods[kind]; reachable(method)]

# refusal is why this recovery stage may not complete.
refusal := reason if {
	reason := ip.denial
} else := "ip_throttled" if {
	ip.throttled
} else := "recovery_throttled" if {
	stage == "identify"
	attempts_exceeded
} else := "identity_not_verified" if {
	not identity_verified
} else := "recovery_unavailable" if {
	count(methods) == 0
} else := "step_up_required" if {
	stage == "complete"
	not object.get(input.recovery, "verified_by", "") in methods
} else := reason if {
	stage == "complete"
	kind == "password"
	reason := password.refusal(object.get(input.recovery, "new_password", {}))
}

# attempts_exceeded is true when the account or the client address has had
# more identity proofs in the window than config.recovery allows. A count the
# gateway did not pass is taken as exceeded, so an uncounted proof is refused.
attempts_exceeded if not is_number(object.get(input.recovery, "account_attempts", null))

attempts_exceeded if not is_number(object.get(input.recovery, "address_attempts", null))

attempts_exceeded if input.recovery.account_attempts > config.recovery.max_attempts_per_account

attempts_exceeded if input.recovery.address_attempts > config.recovery.max_attempts_per_address

# identity_verified is true when the identity answers matched and included
# every question the recovery asks.
identity_verified if {
	input.recovery.identity_verified == true
	questions_complete
}

questions_complete if kind == "username"

questions_complete if {
	kind == "password"
	not config.recovery.password_identity_questions
}

questions_complete if {
	kind == "password"
	input.recovery.questions_answered == true
}

notify := ["password_changed", "account_unlocked"] if {
	input.account.locked
} else := ["password_changed"]

decision := object.union(outcome.deny(refusal), ip.failure_count) if {
	refusal == "identity_not_verified"
} else := object.union(outcome.deny(refusal), {"step_up": methods}) if {
	refusal == "step_up_required"
} else := outcome.deny(refusal)

decision := object.union(outcome.allowed, {"step_up": methods}) if {
	not refusal
	stage == "identify"
}

decision := object.union(outcome.allowed, {
	"unlock": true,
	"reset_failures": true,
	"notify": notify,
}) if {
	not refusal
	stage == "complete"
	kind == "password"
}

decision := object.union(outcome.allowed, {"notify": ["username_recovered"]}) if {
	not refusal
	stage == "complete"
	kind == "username"
}
