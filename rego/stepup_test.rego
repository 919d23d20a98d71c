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

with_email := ["sms", "voice", "totp", "passkey", "questions", "email"]

test_email_is_not_offered_in_shipped_data if {
	stepup.methods(with_email) == ["totp"] with input as {"account": {"second_factors": ["totp"], "email_on_file": true}}
}

test_email_is_offered_when_enabled_and_on_file if {
	stepup.methods(with_email) == ["totp", "email"] with input as {"account": {"second_factors": ["totp"], "email_on_file": true}}
		with data.portcullis.config.codes.email.enabled as true
}

test_email_is_not_offered_without_an_address_on_file if {
	stepup.methods(with_email) == ["totp"] with input as {"account": {"second_factors": ["totp"], "email_on_file": false}}
		with data.portcullis.config.codes.email.enabled as true
}

test_email_as_a_second_factor_counts_for_nothing_alone if {
	stepup.methods(with_email) == [] with input as {"account": {"second_factors": ["email"], "email_on_file": false}}
		with data.portcullis.config.codes.email.enabled as true
	stepup.methods(with_email) == [] with input as {"account": {"second_factors": ["email"], "email_on_file": true}}
}

test_email_is_offered_only_where_the_order_lists_it if {
	stepup.methods(order) == ["totp"] with input as {"account": {"second_factors": ["totp"], "email_on_file": true}}
		with data.portcullis.config.codes.email.enabled as true
}

registered(days_ago) := {"now": 1767225600, "device": {"recognised": true, "registered_at": 1767225600 - (days_ago * 86400)}}

test_device_within_its_lifetime_is_recognised if {
	stepup.device_recognised with input as registered(180)
}

test_device_past_its_lifetime_is_not_recognised if {
	not stepup.device_recognised with input as object.union(registered(180), {"device": {"registered_at": 1751673599}})
}

test_device_without_a_cookie_is_not_recognised if {
	not stepup.device_recognised with input as object.union(registered(1), {"device": {"recognised": false}})
}

test_device_without_a_registration_time_is_not_recognised if {
	not stepup.device_recognised with input as {"now": 1767225600, "device": {"recognised": true}}
	not stepup.device_recognised with input as {"now": 1767225600, "device": {"recognised": true, "registered_at": 0}}
}
