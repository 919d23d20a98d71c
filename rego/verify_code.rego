# Decision point "verify_code": asked when a person types a security code.
# The gateway compares the code with the stored hash and passes only the
# result (input.attempt.code_ok) with the code's facts. A code is good for
# config.codes.ttl_seconds after it was sent and config.codes.max_attempts
# tries, and is single use: every approval invalidates it. An approval that
# offers to register the device says how long the registration lasts
# (config.devices.lifetime_seconds).
#
# Step-up answers (purposes login and settings) are also capped in a row per
# profile (NIST SP 800-63B-4 §3.2.2): input.account.consecutive_step_up_failures
# counts the answers before this one that did not pass, over every code,
# login and window; only a passed step-up, a password recovery or an
# administrator's unlock resets it. The answer that does not pass and reaches
# config.step_up.max_consecutive_failures locks the profile, and once the cap
# is reached nothing is judged, right or wrong. A locked profile cannot step
# up at all.
package portcullis.verify_code

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome
import data.portcullis.stepup

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

# step_up is true for an answer to a step-up, rather than to a code of
# another flow (enrolment, recovery).
step_up if input.code.purpose in {"login", "settings"}

# in_a_row is how many step-up answers before this one did not pass.
in_a_row := object.get(input.account, "consecutive_step_up_failures", 0)

# capped is true when the answers in a row already reached the cap: this one
# is not judged.
capped if {
	step_up
	in_a_row >= config.step_up.max_consecutive_failures
}

# reaches_cap is true when this answer, unless it passes, reaches the cap.
reaches_cap if {
	step_up
	in_a_row + 1 >= config.step_up.max_consecutive_failures
}

# locked_out is the refusal of the answer that reaches the cap or comes
# after it: it locks the profile and says how to unlock it.
locked_out := object.union(outcome.deny("step_up_locked"), {
	"lock": true,
	"notify": ["account_locked"],
	"invalidate_code": true,
})

expired if input.now - input.code.sent_at >= config.codes.ttl_seconds

exhausted if input.code.attempts >= config.codes.max_attempts

# Wrong answers are also counted per account over all its step-ups, so
# that logging in again for fresh tries cannot make guessing pay.
exhausted if object.get(input.account, "recent_step_up_failures", 0) >= config.step_up.failures.max

# last_try is true when this wrong code uses up the code's tries.
default last_try := false

last_try if input.code.attempts + 1 >= config.codes.max_attempts

# offer_registration is true when the person may now register this device:
# a login step-up on a device that login_password did not recognise (never
# registered, or registered too long ago).
default offer_registration := false

offer_registration if {
	config.devices.offer_registration
	input.code.purpose == "login"
	not stepup.device_recognised
}

# registration is what an approval adds about registering the device.
registration := {
	"offer_device_registration": true,
	"device_lifetime_seconds": config.devices.lifetime_seconds,
} if {
	offer_registration
} else := {"offer_device_registration": false}

invalidate := {"invalidate_code": true}

default judged := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

decision := outcome.deny("account_locked") if {
	step_up
	input.account.locked
} else := locked_out if {
	capped
} else := object.union(locked_out, ip.failure_count) if {
	reaches_cap
	input.attempt.code_ok == false
} else := locked_out if {
	reaches_cap
	not judged.allow
} else := judged

# judged is the answer's outcome by its code alone.
judged := object.union(outcome.deny("code_expired"), invalidate) if {
	expired
} else := object.union(outcome.deny("code_attempts_exceeded"), invalidate) if {
	exhausted
} else := object.union(outcome.deny("bad_code"), object.union(ip.failure_count, {"invalidate_code": last_try})) if {
	input.attempt.code_ok == false
} else := object.union(outcome.allowed, object.union(invalidate, registration)) if {
	input.attempt.code_ok == true
}
