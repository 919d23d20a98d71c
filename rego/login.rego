# Decision point "login": asked when a username and password arrive, before
# the password is checked. It refuses anonymizer networks and throttled
# addresses so that a throttled source costs no password check and counts
# toward no account's lockout.
#
# A locked account is not refused here: that would tell anyone who knows a
# username that the account is locked. login_password answers instead, and
# reveals the lock only to someone who typed the right password. Set
# config.lockout.reveal_before_password to refuse locked accounts here.
package portcullis.login

import data.portcullis.config
import data.portcullis.ip
import data.portcullis.outcome

default decision := {"allow": false, "reason": "policy_default_deny", "message": "generic_denied"}

# refusal is why this login may not go on to the password check.
refusal := reason if {
	reason := ip.denial
} else := "ip_throttled" if {
	ip.throttled
} else := "account_locked" if {
	config.lockout.reveal_before_password
	input.account.locked
}

decision := outcome.deny(refusal)

decision := outcome.allowed if {
	not refusal
	input.client
}
