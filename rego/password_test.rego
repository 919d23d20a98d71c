package portcullis.password_test

import data.portcullis.config
import data.portcullis.password

# The tests read the lengths from the policy data, so they hold whatever the
# data says; policies.TestShippedPasswordRules pins the shipped numbers.
rules := config.passwords

good := {"length": rules.min_length, "contains_username": false, "common": false}

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
