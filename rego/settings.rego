# Decision point "settings": asked before a logged-in person changes a
# security setting (input.change.kind: password, username, security_phone,
# two_factor, device, passkey, questions; the kinds and the notification
# each sends are config.settings.changes). Every change needs a step-up
# passed within config.settings.step_up_window_seconds; an approval names
# the notification to send.
package portcullis.settings

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome
import data.portcullis.password
import data.portcullis.phone
import data.portcullis.session
import data.portcullis.stepup

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

kind := input.change.kind

methods := stepup.methods(config.settings.step_up_methods)

# refusal is why this change may not be made now.
refusal := reason if {
	reason := ip.denial
} else := "no_session" if {
	not input.session
} else := "account_locked" if {
	input.account.locked
} else := reason if {
	reason := session.expiry(input.session, session.limits({}))
} else := "change_unsupported" if {
	not config.settings.changes[kind]
} else := reason if {
	reason := stepup.problem(input.session, config.settings.step_up_window_seconds, methods)
} else := reason if {
	kind == "password"
	reason := password.refusal(object.get(input.change, "new_password", {}))
} else := "username_taken" if {
	kind == "username"
	not input.change.username_available
} else := reason if {
	kind == "security_phone"
	reason := phone.refusal_any(object.get(input.change, "phone", {}))
}

decision := object.union(outcome.deny(refusal), {"step_up": methods}) if {
	refusal in {"step_up_required", "step_up_stale"}
} else := outcome.deny(refusal)

decision := object.union(outcome.allowed, {"notify": [config.settings.changes[kind].notify]}) if {
	not refusal
}
