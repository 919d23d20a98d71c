# Decision point "send_code": asked before a security code is sent by text
# message or voice call (input.code.channel) to a phone (input.code.phone,
# facts only). Codes never go to VoIP, premium-rate, toll-free, invalid or
# unknown numbers, nor over a channel the line type cannot take. A resend
# (input.code.sent_at > 0) replaces the previous code and is limited in
# number and spacing. An approval says how long the code lives and how many
# tries it allows.
package portcullis.send_code

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome
import data.portcullis.phone

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

# resend is true when a code was already sent for this challenge.
resend if input.code.sent_at > 0

# refusal is why no code may be sent.
refusal := reason if {
	reason := ip.denial
} else := "account_locked" if {
	input.code.purpose == "login"
	input.account.locked
} else := reason if {
	reason := phone.refusal(object.get(input.code, "phone", {}), object.get(input.code, "channel", ""))
} else := "code_resend_limit" if {
	resend
	input.code.resends >= config.codes.max_resends
} else := "code_resend_too_soon" if {
	resend
	input.now - input.code.sent_at < config.codes.resend_interval_seconds
}

code_limits := {
	"code_ttl_seconds": config.codes.ttl_seconds,
	"max_code_attempts": config.codes.max_attempts,
	"max_code_resends": config.codes.max_resends,
	"resend_after_seconds": config.codes.resend_interval_seconds,
}

decision := outcome.deny(refusal)

decision := object.union(outcome.allowed, code_limits) if {
	not refusal
	input.code
}
