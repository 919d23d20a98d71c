# Which extra verification an account can be asked for, in the order the
# policy prefers. A method is offered only when the account has it, and a
# code channel (sms, voice) only when the security phone can take codes over
# that channel. Email codes ("email") are offered only when
# config.codes.email.enabled and the profile has an email address; they need
# no entry in input.account.second_factors.
#
# A registered device skips the step-up at login while it is younger than
# config.devices.lifetime_seconds.
package portcullis.stepup

import data.portcullis.config
import data.portcullis.phone

# code_channels are the methods that send a code to the security phone.
code_channels := {"sms", "voice"}

# factors are the methods the account has set up.
factors := {method | some method in input.account.second_factors}

# reachable are the code channels the security phone can take.
reachable := {channel | some channel in code_channels; phone.usable(input.account.security_phone, channel)}

# email_reachable is true when a code may be sent to the profile's email
# address: the channel is enabled and an address is on file.
email_reachable if {
	config.codes.email.enabled == true
	input.account.email_on_file == true
}

# email is {"email"} when email codes can be offered, otherwise empty. A
# second_factors entry "email" counts for nothing on its own.
email := {"email"} if email_reachable

else := set()

# usable are the methods this account can step up with now.
usable := (((factors - code_channels) - {"email"}) | (factors & reachable)) | email

# methods(order) is the list of methods from order this account can use.
methods(order) := [method | some method in order; usable[method]]

# device_recognised is true when the request carries the cookie of a device
# registered to this account no longer than config.devices.lifetime_seconds
# ago. An older registration counts as no registration (the gateway expires
# devices too; this is a second line of defence), as does one without a
# registration time.
device_recognised if {
	input.device.recognised == true
	input.now - input.device.registered_at <= config.devices.lifetime_seconds
}

# problem(session, window, offered) is why the session's last step-up does not
# count: never done, older than window seconds, or impossible because nothing
# can be offered. Undefined when the step-up is fresh.
problem(session, window, offered) := "step_up_unavailable" if {
	count(offered) == 0
} else := "step_up_required" if {
	object.get(session, "step_up_at", 0) == 0
} else := "step_up_stale" if {
	input.now - session.step_up_at > window
}
