package portcullis.password_test

import data.portcullis.password

good := {"length": 14, "classes": 3, "contains_username": false, "common": false}

test_good_password_is_accepted if {
	not password.refusal(good)
}

test_missing_facts_are_refused if {
	password.refusal({}) == "password_missing"
}

test_short_password_is_refused if {
	password.refusal(object.union(good, {"length": 7})) == "password_too_short"
}

test_long_password_is_refused if {
	password.refusal(object.union(good, {"length": 65})) == "password_too_long"
}

test_single_class_password_is_refused if {
	password.refusal(object.union(good, {"classes": 1})) == "password_too_simple"
}

test_password_containing_the_username_is_refused if {
	password.refusal(object.union(good, {"contains_username": true})) == "password_contains_username"
}

test_common_password_is_refused if {
	password.refusal(object.union(good, {"common": true})) == "password_common"
}
