# Which phones may receive security codes, and over which channel. The
# gateway supplies line-type facts (never the number); config.codes.line_types
# lists the accepted line types per channel. By default SMS goes to mobile and
# fixed_line_or_mobile numbers (the only type the number plan gives for US
# numbers), and voice calls also reach fixed lines. VoIP, premium-rate,
# toll-free, unknown and every other line type are refused.
package portcullis.phone

import data.portcullis.config

# named_line_types have a reason code of their own ("phone_" + line type);
# any other refused line type answers phone_unsupported.
named_line_types := {"voip", "premium_rate", "toll_free", "unknown"}

# line_type_refusal(line_type) is the reason a line type is refused outright.
line_type_refusal(line_type) := concat("", ["phone_", line_type]) if {
	line_type in named_line_types
} else := "phone_unknown" if {
	line_type == ""
} else := "phone_unsupported"

# accepted_anywhere(phone) is true when some channel takes the phone's line type.
accepted_anywhere(phone) if {
	some accepted in config.codes.line_types
	accepted[phone.line_type] == true
}

# refusal(phone, channel) is the reason no code may be sent to phone over
# channel; undefined when the code may be sent.
refusal(phone, channel) := "code_channel_unsupported" if {
	not config.codes.line_types[channel]
} else := "phone_invalid" if {
	not phone.valid
} else := line_type_refusal(object.get(phone, "line_type", "")) if {
	not accepted_anywhere(phone)
} else := "phone_channel_unsupported" if {
	not config.codes.line_types[channel][phone.line_type]
}

# refusal_any(phone) is the reason phone cannot receive codes over any
# channel, used when a phone is registered rather than sent a code.
refusal_any(phone) := "phone_invalid" if {
	not phone.valid
} else := line_type_refusal(object.get(phone, "line_type", "")) if {
	not accepted_anywhere(phone)
}

# usable(phone, channel) is true when a code may be sent to phone over
# channel: exactly when refusal(phone, channel) is undefined, checked
# directly because step-up lists ask it on every login.
usable(phone, channel) if {
	phone.valid == true
	config.codes.line_types[channel][phone.line_type] == true
}
