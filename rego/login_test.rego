package portcullis.login_test

import data.portcullis.login

clean_client := {"ip": "198.51.100.7", "facts": {"checked": true}, "allow_listed": false, "recent_failures": 0}

account := {"exists": true, "locked": false, "consecutive_failures": 0, "second_factors": ["sms"]}

login_from(client) := {"point": "login", "now": 1767225600, "client": client, "account": account}

flagged(flag) := object.union(clean_client, {"facts": {"checked": true, "anonymous": true, flag: true}})

test_clean_login_goes_on_to_the_password_check if {
	login.decision.allow with input as login_from(clean_client)
}

test_vpn_login_is_denied if {
	d := login.decision with input as login_from(flagged("anonymous_vpn"))
	not d.allow
	d.reason == "ip_anonymous_vpn"
	d.message == "use_private_network"
}

test_tor_login_is_denied if {
	login.decision.reason == "ip_tor_exit_node" with input as login_from(flagged("tor_exit_node"))
}

test_public_proxy_login_is_denied if {
	login.decision.reason == "ip_public_proxy" with input as login_from(flagged("public_proxy"))
}

test_hosting_provider_login_is_denied if {
	login.decision.reason == "ip_hosting_provider" with input as login_from(flagged("hosting_provider"))
}

test_residential_proxy_login_is_denied if {
	login.decision.reason == "ip_residential_proxy" with input as login_from(flagged("residential_proxy"))
}

test_vpn_login_from_an_allow_listed_network_is_allowed if {
	login.decision.allow with input as login_from(object.union(flagged("anonymous_vpn"), {"allow_listed": true}))
}

test_unchecked_address_is_denied if {
	login.decision.reason == "ip_unchecked" with input as login_from(object.union(clean_client, {"facts": {"checked": false}}))
}

test_unchecked_address_is_allowed_when_configured if {
	login.decision.allow with input as login_from(object.union(clean_client, {"facts": {"checked": false}}))
		with data.portcullis.config.anonymizer.allow_unchecked_ip as true
}

test_throttled_address_is_denied_before_the_password_check if {
	d := login.decision with input as login_from(object.union(clean_client, {"recent_failures": 20}))
	d.reason == "ip_throttled"
	not object.get(d, "lock", false)
	not object.get(d, "count_failure", false)
}

test_locked_account_is_not_revealed_before_the_password_check if {
	login.decision.allow with input as object.union(login_from(clean_client), {"account": {"exists": true, "locked": true}})
}

test_locked_account_is_denied_when_configured_to_reveal if {
	login.decision.reason == "account_locked" with input as object.union(login_from(clean_client), {"account": {"exists": true, "locked": true}})
		with data.portcullis.config.lockout.reveal_before_password as true
}

test_unknown_account_goes_on_to_the_password_check if {
	login.decision.allow with input as object.union(login_from(clean_client), {"account": {"exists": false}})
}

test_login_without_client_facts_is_denied if {
	login.decision.reason == "ip_unchecked" with input as {"point": "login", "now": 1767225600}
}

test_login_without_client_is_denied_by_default_when_unchecked_is_allowed if {
	login.decision.reason == "policy_default_deny" with input as {"point": "login", "now": 1767225600}
		with data.portcullis.config.anonymizer.allow_unchecked_ip as true
}

test_login_from_an_unreadable_forwarded_address_is_refused if {
	d := login.decision with input as login_from({"ip": "", "ip_unknown": true, "facts": {"checked": false}})
		with data.portcullis.config.anonymizer.allow_unchecked_ip as true
	not d.allow
	d.reason == "ip_unknown"
	d.message == "use_private_network"
}
