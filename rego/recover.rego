# Decision point "recover": forgot username (input.recovery.kind "username")
# or forgot password ("password"), in two stages (input.recovery.stage):
#   identify  the person answered the identity questions (identity_verified);
#             an approval lists in step_up how a code or message can reach
#             them (config.recovery.methods, filtered by what the account can
#             receive);
#   complete  the person passed one of those (verified_by); for a password,
#             the new password's facts. Completing a password recovery
#             resets the failure count and unlocks the account.
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
} else := "identity_not_verified" if {
	not input.recovery.identity_verified
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
