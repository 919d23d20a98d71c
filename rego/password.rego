# Password rules for new passwords (enrolment, recovery, settings). The
# gateway measures the password and passes facts; the password itself never
# reaches a policy.
#
# config.passwords is the one source of the rules: the engine hands the
# same min_length and max_length (characters: code points after NFC
# normalisation) and min_guesses_log10 to the gateway as
# policies.PasswordRules. There are no composition rules (character
# classes); as NIST SP 800-63B §3.1.1.2 asks, length, the username and the
# person's names, the common and breached list and zxcvbn's estimate of
# the guesses needed decide. Each refusal names one thing to change, so
# the most basic comes first.
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
} else := "password_contains_name" if {
	facts.contains_name == true
} else := "password_common" if {
	facts.common == true
} else := "password_guessable" if {
	not is_number(object.get(facts, "guesses_log10", null))
} else := "password_guessable" if {
	facts.guesses_log10 < config.passwords.min_guesses_log10
}
