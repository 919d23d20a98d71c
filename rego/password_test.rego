package portcullis.password_test

import data.portcullis.config
import data.portcullis.password

# The tests read the lengths from the policy data, so they hold whatever the
# data says; policies.TestShippedPasswordRules pins the shipped numbers.
rules := config.passwords

good := {
	"length": rules.min_length, "contains_username": false, "contains_name": false,
	"common": false, "guesses_log10": rules.min_guesses_log10,
}

with_length(n) := object.union(good, {"length": n})

test_password_of_the_minimum_length_is_accepted if {
	not password.refusal(good)
}

test_password_of_the_maximum_length_is_accepted if {
	not password.refusal(with_length(rules.max_length))
}

test_missing_facts_are_refused if {
	password.refusal({}) == "password_missing"
}

test_non_numeric_length_is_refused if {
	password.refusal(with_length("12")) == "password_missing"
}

test_password_one_short_of_the_minimum_is_refused if {
	password.refusal(with_length(rules.min_length - 1)) == "password_too_short"
}

test_password_one_over_the_maximum_is_refused if {
	password.refusal(with_length(rules.max_length + 1)) == "password_too_long"
}

test_the_lengths_come_from_the_data if {
	n := rules.min_length + 4
	password.refusal(with_length(n)) == "password_too_short" with config.passwords.min_length as n + 1
	password.refusal(with_length(n)) == "password_too_long" with config.passwords.max_length as n - 1
}

test_a_single_class_password_is_accepted if {
	not password.refusal(object.union(good, {"classes": 1}))
}

test_password_containing_the_username_is_refused if {
	password.refusal(object.union(good, {"contains_username": true})) == "password_contains_username"
}

test_common_password_is_refused if {
	password.refusal(object.union(good, {"common": true})) == "password_common"
}

test_password_containing_a_name_is_refused if {
	password.refusal(object.union(good, {"contains_name": true})) == "password_contains_name"
}

test_password_just_below_the_guesses_minimum_is_refused if {
	password.refusal(object.union(good, {"guesses_log10": rules.min_guesses_log10 - 1})) == "password_guessable"
}

test_password_well_above_the_guesses_minimum_is_accepted if {
	not password.refusal(object.union(good, {"guesses_log10": rules.min_guesses_log10 + 10}))
}

test_password_without_a_guesses_estimate_is_refused if {
	password.refusal(object.remove(good, ["guesses_log10"])) == "password_guessable"
}

test_non_numeric_guesses_estimate_is_refused if {
	password.refusal(object.union(good, {"guesses_log10": "20"})) == "password_guessable"
}

test_the_guesses_minimum_comes_from_the_data if {
	n := rules.min_guesses_log10
	password.refusal(object.union(good, {"guesses_log10": n})) == "password_guessable" with config.passwords.min_guesses_log10 as n + 1
	not password.refusal(object.union(good, {"guesses_log10": n - 1})) with config.passwords.min_guesses_log10 as n - 1
}

# The shipped minimum sits between what zxcvbn gives guessable passwords
# ("Summer2024!!" 8, "password1234" 4) and what it gives a passphrase of
# four random words (20) or 16 random characters (16);
# credential.TestPasswordGuesses measures those figures.
test_the_shipped_guesses_minimum_refuses_seasons_and_accepts_passphrases if {
	password.refusal(object.union(good, {"guesses_log10": 8})) == "password_guessable"
	password.refusal(object.union(good, {"guesses_log10": 4})) == "password_guessable"
	not password.refusal(object.union(good, {"guesses_log10": 16}))
	not password.refusal(object.union(good, {"guesses_log10": 20}))
}

# One thing to change at a time, the most basic first.
test_refusals_come_in_order if {
	worst := {
		"length": rules.min_length - 1, "contains_username": true, "contains_name": true,
		"common": true, "guesses_log10": 0,
	}
	password.refusal(worst) == "password_too_short"
	password.refusal(object.union(worst, {"length": rules.min_length})) == "password_contains_username"
	password.refusal(object.union(worst, {"length": rules.min_length, "contains_username": false})) == "password_contains_name"
	password.refusal(object.union(good, {"common": true, "guesses_log10": 0})) == "password_common"
	password.refusal(object.union(good, {"guesses_log10": 0})) == "password_guessable"
}
