package portcullis.phone_test

import data.portcullis.phone

facts(line_type) := {"valid": true, "region": "GB", "line_type": line_type, "source": "prefix", "masked": "*********78"}

test_mobile_takes_sms_and_voice if {
	phone.usable(facts("mobile"), "sms")
	phone.usable(facts("mobile"), "voice")
}

test_fixed_line_or_mobile_takes_sms_and_voice if {
	phone.usable(facts("fixed_line_or_mobile"), "sms")
	phone.usable(facts("fixed_line_or_mobile"), "voice")
}

test_fixed_line_takes_voice_only if {
	phone.usable(facts("fixed_line"), "voice")
	phone.refusal(facts("fixed_line"), "sms") == "phone_channel_unsupported"
}

test_voip_is_refused if {
	phone.refusal(facts("voip"), "sms") == "phone_voip"
	phone.refusal(facts("voip"), "voice") == "phone_voip"
}

test_premium_rate_is_refused if {
	phone.refusal(facts("premium_rate"), "sms") == "phone_premium_rate"
}

test_toll_free_is_refused if {
	phone.refusal(facts("toll_free"), "voice") == "phone_toll_free"
}

test_unknown_line_type_is_refused if {
	phone.refusal(facts("unknown"), "sms") == "phone_unknown"
}

test_missing_line_type_is_refused_as_unknown if {
	phone.refusal({"valid": true}, "sms") == "phone_unknown"
}

test_other_line_types_are_refused_as_unsupported if {
	every line_type in ["shared_cost", "personal_number", "pager", "uan", "voicemail"] {
		phone.refusal(facts(line_type), "sms") == "phone_unsupported"
	}
}

test_invalid_number_is_refused if {
	phone.refusal(object.union(facts("mobile"), {"valid": false}), "sms") == "phone_invalid"
}

test_missing_phone_facts_are_refused_as_invalid if {
	phone.refusal({}, "voice") == "phone_invalid"
}

test_unknown_channel_is_refused if {
	phone.refusal(facts("mobile"), "fax") == "code_channel_unsupported"
}

test_registering_a_fixed_line_is_accepted_for_voice_codes if {
	not phone.refusal_any(facts("fixed_line"))
}

test_registering_a_voip_number_is_refused if {
	phone.refusal_any(facts("voip")) == "phone_voip"
}

test_registering_an_invalid_number_is_refused if {
	phone.refusal_any({"valid": false}) == "phone_invalid"
}

test_line_types_are_data if {
	phone.usable(facts("voip"), "sms") with data.portcullis.config.codes.line_types.sms.voip as true
}

test_usable_agrees_with_refusal if {
	every line_type in ["mobile", "fixed_line", "fixed_line_or_mobile", "voip", "toll_free", "unknown", "pager", ""] {
		every channel in ["sms", "voice", "fax"] {
			every valid in [true, false] {
				agrees({"valid": valid, "line_type": line_type}, channel)
			}
		}
	}
}

agrees(p, channel) if {
	phone.usable(p, channel)
	not phone.refusal(p, channel)
}

agrees(p, channel) if {
	not phone.usable(p, channel)
	phone.refusal(p, channel)
}
