package portcullis.send_code_test

import data.portcullis.send_code

phone(line_type) := {"valid": true, "region": "GB", "line_type": line_type, "source": "prefix", "masked": "*********78"}

request(channel, line_type) := {
	"point": "send_code",
	"now": 1767225600,
	"client": {"ip": "198.51.100.7", "facts": {"checked": true}},
	"account": {"exists": true, "locked": false},
	"code": {"purpose": "login", "channel": channel, "phone": phone(line_type), "sent_at": 0, "attempts": 0, "resends": 0},
}

resend_request(sent_at, resends) := object.union(request("sms", "mobile"), {"code": {"sent_at": sent_at, "resends": resends}})

test_sms_to_a_mobile_is_sent_with_a_twenty_minute_lifetime if {
	d := send_code.decision with input as request("sms", "mobile")
	d.allow
	d.code_ttl_seconds == 1200
	d.max_code_attempts == 5
	d.max_code_resends == 3
	d.resend_after_seconds == 30
}

test_voice_call_to_a_fixed_line_is_sent if {
	send_code.decision.allow with input as request("voice", "fixed_line")
}

test_sms_to_a_fixed_line_is_refused if {
	d := send_code.decision with input as request("sms", "fixed_line")
	d.reason == "phone_channel_unsupported"
	d.message == "use_other_channel"
}

test_voip_send_code_is_denied if {
	d := send_code.decision with input as request("sms", "voip")
	not d.allow
	d.reason == "phone_voip"
}

test_premium_rate_number_is_refused if {
	send_code.decision.reason == "phone_premium_rate" with input as request("voice", "premium_rate")
}

test_toll_free_number_is_refused if {
	send_code.decision.reason == "phone_toll_free" with input as request("voice", "toll_free")
}

test_unknown_line_type_is_refused if {
	send_code.decision.reason == "phone_unknown" with input as request("sms", "unknown")
}

test_invalid_number_is_refused if {
	send_code.decision.reason == "phone_invalid" with input as object.union(request("sms", "mobile"), {"code": {"phone": {"valid": false}}})
}

test_code_lifetime_is_data if {
	send_code.decision.code_ttl_seconds == 600 with input as request("sms", "mobile")
		with data.portcullis.config.codes.ttl_seconds as 600
}

test_resend_is_allowed_after_the_interval if {
	send_code.decision.allow with input as resend_request(1767225570, 0)
}

test_resend_too_soon_is_refused if {
	send_code.decision.reason == "code_resend_too_soon" with input as resend_request(1767225571, 0)
}

test_fourth_resend_is_refused if {
	send_code.decision.reason == "code_resend_limit" with input as resend_request(1767225000, 3)
}

test_code_is_not_sent_from_a_vpn if {
	send_code.decision.reason == "ip_anonymous_vpn" with input as object.union(request("sms", "mobile"), {"client": {"facts": {"anonymous_vpn": true}}})
}

test_login_code_is_not_sent_for_a_locked_account if {
	send_code.decision.reason == "account_locked" with input as object.union(request("sms", "mobile"), {"account": {"locked": true}})
}

test_recovery_code_is_sent_for_a_locked_account if {
	send_code.decision.allow with input as object.union(request("sms", "mobile"), {"account": {"locked": true}, "code": {"purpose": "recover"}})
}

test_missing_code_is_denied_by_default if {
	send_code.decision.reason == "policy_default_deny" with input as {"point": "send_code", "client": {"facts": {"checked": true}}}
}
