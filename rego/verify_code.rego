# Decision point "verify_code": asked when a person types a security code.
# The gateway compares the code with the stored hash and passes only the
# result (input.attempt.code_ok) with the code's facts. A code is good for
# config.codes.ttl_seconds after it was sent and config.codes.max_attempts
# tries, and is single use: every approval invalidates it. An approval that
# offers to register the device says how long the registration lasts
# (config.devices.lifetime_seconds).
package portcullis.verify_code

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome
import data.portcullis.stepup

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

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

decision := object.union(outcome.deny("code_expired"), invalidate) if {
	expired
} else := object.union(outcome.deny("code_attempts_exceeded"), invalidate) if {
	exhausted
} else := object.union(outcome.deny("bad_code"), object.union(ip.failure_count, {"invalidate_code": last_try})) if {
	input.attempt.code_ok == false
} else := object.union(outcome.allowed, object.union(invalidate, registration)) if {
	input.attempt.code_ok == true
}
