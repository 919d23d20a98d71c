package portcullis.stepup_test

import data.portcullis.stepup

mobile := {"valid": true, "line_type": "mobile"}

order := ["sms", "voice", "totp", "passkey", "questions"]

test_methods_follow_the_policy_order if {
	stepup.methods(order) == ["sms", "voice", "totp", "passkey"] with input as {"account": {
		"second_factors": ["passkey", "totp", "voice", "sms"],
		"security_phone": mobile,
	}}
}

test_methods_the_account_lacks_are_not_offered if {
	stepup.methods(order) == ["questions"] with input as {"account": {"second_factors": ["questions"]}}
}

test_code_channels_need_a_security_phone if {
	stepup.methods(order) == ["totp"] with input as {"account": {"second_factors": ["sms", "totp"]}}
}

test_sms_is_not_offered_to_a_fixed_line if {
	stepup.methods(order) == ["voice"] with input as {"account": {
		"second_factors": ["sms", "voice"],
		"security_phone": {"valid": true, "line_type": "fixed_line"},
	}}
}

test_codes_are_not_offered_to_a_voip_phone if {
	stepup.methods(order) == [] with input as {"account": {
		"second_factors": ["sms", "voice"],
		"security_phone": {"valid": true, "line_type": "voip"},
	}}
}

test_no_step_up_means_required if {
	stepup.problem({}, 600, ["sms"]) == "step_up_required" with input as {"now": 1000}
}

test_old_step_up_is_stale if {
	stepup.problem({"step_up_at": 1000}, 600, ["sms"]) == "step_up_stale" with input as {"now": 1601}
}

test_fresh_step_up_has_no_problem if {
	not stepup.problem({"step_up_at": 1000}, 600, ["sms"]) with input as {"now": 1600}
}

test_nothing_to_offer_is_unavailable if {
	stepup.problem({}, 600, []) == "step_up_unavailable" with input as {"now": 1000}
}
