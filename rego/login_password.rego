# Decision point "login_password": asked after the password was checked
# (input.attempt.password_ok). A wrong password counts toward the account's
# lockout and the address's throttle, and locks the account on the
# config.lockout.max_consecutive_failures-th failure in a row. The right
# password resets the count, and either signs the person in (a recognised
# device, registered no longer than config.devices.lifetime_seconds ago) or
# asks for a step-up (any other device, an expired registration included).
#
# The lock never leaks: every wrong password answers bad_credentials, locked
# account or not, existing account or not. Only the right password on a
# locked account answers account_locked.
package portcullis.login_password

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome
import data.portcullis.stepup

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

# right is true for the right password on an existing account.
right if {
	input.attempt.password_ok == true
	input.account.exists == true
}

# wrong is true for any other answer, including a password typed for an
# account that does not exist.
wrong if input.attempt.password_ok == false

wrong if {
	input.attempt.password_ok == true
	not input.account.exists
}

# counts is true when this failure counts toward the account's lockout.
default counts := false

counts if {
	wrong
	input.account.exists == true
	not input.account.locked
}

# lock is true when this failure is the one that locks the account.
default lock := false

lock if {
	counts
	input.account.consecutive_failures + 1 >= config.lockout.max_consecutive_failures
}

notify := ["account_locked"] if lock

else := []

# methods are the step-ups this account can be asked for on a new device.
methods := stepup.methods(config.step_up.methods)

session_limits := {
	"session_idle_seconds": config.session.idle_seconds,
	"session_max_seconds": config.session.max_seconds,
}

signed_in := object.union(outcome.allowed, object.union(session_limits, {"reset_failures": true}))

decision := object.union(outcome.deny("bad_credentials"), object.union(ip.failure_count, {
	"count_failure": counts,
	"lock": lock,
	"notify": notify,
})) if {
	wrong
} else := outcome.deny("account_locked") if {
	right
	input.account.locked
} else := signed_in if {
	right
	stepup.device_recognised
} else := object.union(outcome.deny("step_up_required"), {"step_up": methods, "reset_failures": true}) if {
	right
	count(methods) > 0
} else := signed_in if {
	right
	config.step_up.allow_without_second_factor
} else := object.union(outcome.deny("step_up_unavailable"), {"reset_failures": true}) if {
	right
}
