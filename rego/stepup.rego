# Which extra verification an account can be asked for, in the order the
# policy prefers. A method is offered only when the account has it, and a
# code channel (sms, voice) only when the security phone can take codes over
# that channel.
package portcullis.stepup

import data.portcullis.phone

# code_channels are the methods that send a code to the security phone.
code_channels := {"sms", "voice"}

# factors are the methods the account has set up.
factors := {method | some method in input.account.second_factors}

# reachable are the code channels the security phone can take.
reachable := {channel | some channel in code_channels; phone.usable(input.account.security_phone, channel)}

# usable are the methods this account can step up with now.
usable := (factors - code_channels) | (factors & reachable)

# methods(order) is the list of methods from order this account can use.
methods(order) := [method | some method in order; usable[method]]

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
