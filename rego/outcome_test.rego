package portcullis.outcome_test

import data.portcullis.outcome

test_deny_carries_the_message_for_its_reason if {
	outcome.deny("ip_anonymous_vpn") == {"allow": false, "reason": "ip_anonymous_vpn", "message": "use_private_network"}
}

test_unknown_reason_gets_the_generic_message if {
	outcome.deny("something_new").message == "generic_denied"
}

test_allowed_is_an_approval if {
	outcome.allowed.allow
	outcome.allowed.reason == "ok"
}

test_every_message_key_is_a_string if {
	every reason, key in outcome.messages {
		is_string(reason)
		is_string(key)
	}
}
