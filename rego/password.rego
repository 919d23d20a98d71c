# Password rules for new passwords (enrolment, recovery, settings). The
# gateway measures the password and passes facts; the password itself never
# reaches a policy.
#
# config.passwords is the one source of the length rules: the engine hands
# the same min_length and max_length (characters: code points after NFC
# normalisation) to the gateway as policies.PasswordRules. There are no
# composition rules (character classes); length, the username and the
# common-password list decide.
package portcullis.password

import data.portcullis.config

# refusal(facts) is the reason a new password is refused; undefined when it
# meets the rules. Missing facts are refused.
refusal(facts) := "password_missing" if {
	not is_number(object.get(facts, "length", null))
} else := "password_too_short" if {
	facts.length < config.passwords.min_length
} else := "password_too_long" if {
	facts.length > config.passwords.max_length
} else := "password_contains_username" if {
	facts.contains_username == true
} else := "password_common" if {
	facts.common == true
}
