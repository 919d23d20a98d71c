# Decision point "send_code": asked before a security code is sent by text
# message, voice call or email (input.code.channel). Codes never go to VoIP,
# premium-rate, toll-free, invalid or unknown numbers, nor over a channel the
# line type cannot take. Email codes go only where config.codes.email.enabled
# and the profile has an address (input.account.email_on_file); the phone
# checks do not apply to them. A resend (input.code.sent_at > 0) replaces the
# previous code and is limited in number and spacing.
#
# Sends are also limited per fixed window (config.codes.send_limits), against
# SMS pumping: the gateway counts every send atomically before asking and
# passes, in input.code.sends, how many sends each counter had in its current
# window before this one. The limits are checked in the order: client
# address, account, destination (the number, or the email address), the
# number's country calling code (phone channels only). A count that is
# missing is taken as reached. An approval says how long the code lives and
# how many tries it allows.
package portcullis.send_code

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome
import data.portcullis.phone
import data.portcullis.stepup

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

channel := object.get(input.code, "channel", "")

# by_email is true for an email code; by_phone for any other channel, which
# phone.refusal judges (it refuses channels config.codes.line_types lacks).
by_email if channel == "email"

by_phone if channel != "email"

# resend is true when a code was already sent for this challenge.
resend if input.code.sent_at > 0

# reached(limit, counter) is true when input.code.sends[counter], the sends
# counted in the current window of config.codes.send_limits[limit] before
# this one, leaves no room for another. A count the gateway did not pass is
# taken as reached, so an uncounted send is refused.
reached(_, counter) if not is_number(object.get(input.code, ["sends", counter], null))

reached(limit, counter) if input.code.sends[counter] >= config.codes.send_limits[limit].max

# refusal is why no code may be sent.
refusal := reason if {
	reason := ip.denial
} else := "account_locked" if {
	# A locked profile cannot step up at all; a recovery, which unlocks
	# it, still gets its code.
	input.code.purpose in {"login", "settings"}
	input.account.locked
} else := "code_channel_unsupported" if {
	by_email
	not stepup.email_reachable
} else := reason if {
	by_phone
	reason := phone.refusal(object.get(input.code, "phone", {}), channel)
} else := "code_resend_limit" if {
	resend
	input.code.resends >= config.codes.max_resends
} else := "code_resend_too_soon" if {
	resend
	input.now - input.code.sent_at < config.codes.resend_interval_seconds
} else := "code_send_limit_address" if {
	reached("per_address", "address")
} else := "code_send_limit_user" if {
	reached("per_user", "user")
} else := "code_send_limit_number" if {
	reached("per_number", "number")
} else := "code_send_limit_calling_code" if {
	by_phone
	reached("per_calling_code", "calling_code")
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
