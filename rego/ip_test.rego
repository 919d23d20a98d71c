package portcullis.ip_test

import data.portcullis.ip

clean := {"ip": "198.51.100.7", "facts": {"checked": true}, "allow_listed": false, "recent_failures": 0}

with_facts(facts) := object.union(clean, {"facts": object.union({"checked": true}, facts)})

test_clean_address_has_no_denials if {
	count(ip.denials) == 0 with input as {"client": clean}
	not ip.denial with input as {"client": clean}
}

test_each_anonymizer_flag_is_refused_with_its_own_reason if {
	every flag in ["anonymous_vpn", "public_proxy", "tor_exit_node", "hosting_provider", "residential_proxy"] {
		ip.denial == concat("", ["ip_", flag]) with input as {"client": with_facts({flag: true})}
	}
}

test_tor_is_reported_before_vpn if {
	ip.denial == "ip_tor_exit_node" with input as {"client": with_facts({"anonymous_vpn": true, "tor_exit_node": true})}
}

test_unblocked_flag_is_not_refused if {
	count(ip.denials) == 0 with input as {"client": with_facts({"hosting_provider": true})}
		with data.portcullis.config.anonymizer.block.hosting_provider as false
}

test_unchecked_address_is_refused if {
	ip.denial == "ip_unchecked" with input as {"client": object.union(clean, {"facts": {"checked": false}})}
}

test_missing_facts_count_as_unchecked if {
	ip.denial == "ip_unchecked" with input as {"client": {"ip": "198.51.100.7"}}
}

test_unchecked_address_is_allowed_when_configured if {
	count(ip.denials) == 0 with input as {"client": {"facts": {"checked": false}}}
		with data.portcullis.config.anonymizer.allow_unchecked_ip as true
}

test_allow_listed_network_is_exempt_from_anonymizer_flags if {
	count(ip.denials) == 0 with input as {"client": object.union(with_facts({"anonymous_vpn": true}), {"allow_listed": true})}
}

test_allow_listed_network_is_exempt_from_the_unchecked_rule if {
	count(ip.denials) == 0 with input as {"client": {"facts": {"checked": false}, "allow_listed": true}}
}

test_address_is_throttled_at_the_limit if {
	ip.throttled with input as {"client": object.union(clean, {"recent_failures": 20})}
}

test_address_is_not_throttled_below_the_limit if {
	not ip.throttled with input as {"client": object.union(clean, {"recent_failures": 19})}
}

test_failure_count_names_the_window if {
	ip.failure_count == {"count_ip_failure": true, "ip_failure_window_seconds": 900}
}

unknown := {"ip": "", "ip_unknown": true, "facts": {"checked": false}, "allow_listed": false, "recent_failures": 0}

test_unreadable_forwarded_address_is_refused if {
	ip.denial == "ip_unknown" with input as {"client": unknown}
}

test_unreadable_forwarded_address_is_refused_even_when_unchecked_addresses_are_allowed if {
	ip.denial == "ip_unknown" with input as {"client": unknown}
		with data.portcullis.config.anonymizer.allow_unchecked_ip as true
}

test_unknown_address_is_reported_before_any_flag if {
	ip.denial == "ip_unknown" with input as {"client": object.union(unknown, {"facts": {"checked": true, "tor_exit_node": true}})}
}
