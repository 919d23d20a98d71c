package policies

import (
	"strconv"
	"unicode/utf8"
)

// The decision log writes one line per decision, so for every proxied
// request. encoding/json's reflection costs several percent of the server's
// CPU there; these appenders write the same bytes as json.Marshal of a
// decisionLine (field order, omitempty, null for a nil slice or pointer,
// HTML-safe string escaping) without reflection or allocation.
// decisionjson_test.go compares the two on every field. A field added to
// any of these types must be added here too; the randomized test fails
// until it is.

func (l *decisionLine) appendJSON(b []byte) []byte {
	b = append(b, `{"decision_id":`...)
	b = appendString(b, l.DecisionID)
	b = append(b, `,"labels":{"id":`...)
	b = appendString(b, l.Labels.ID)
	b = append(b, `,"version":`...)
	b = appendString(b, l.Labels.Version)
	b = append(b, `},"bundles":{"portcullis":{"revision":`...)
	b = appendString(b, l.Bundles.Portcullis.Revision)
	b = append(b, `}},"path":`...)
	b = appendString(b, l.Path)
	b = append(b, `,"input":`...)
	b = l.Input.appendJSON(b)
	b = append(b, `,"result":`...)
	b = l.Result.appendJSON(b)
	b = append(b, `,"timestamp":`...)
	b = appendString(b, l.Timestamp)
	b = append(b, `,"metrics":{"timer_rego_query_eval_ns":`...)
	b = strconv.AppendInt(b, l.Metrics.EvalNS, 10)
	b = append(b, `},"portcullis":{"format":`...)
	b = strconv.AppendInt(b, int64(l.Portcullis.Format), 10)
	b = append(b, `,"point":`...)
	b = appendString(b, string(l.Portcullis.Point))
	if l.Portcullis.UserID != "" {
		b = append(b, `,"user_id":`...)
		b = appendString(b, l.Portcullis.UserID)
	}
	if sh := l.Portcullis.Shadow; sh != nil {
		b = append(b, `,"shadow":{"live_decision_id":`...)
		b = appendString(b, sh.LiveDecisionID)
		b = append(b, `,"live_result":`...)
		b = sh.LiveResult.appendJSON(b)
		b = append(b, '}')
	}
	return append(b, `}}`...)
}

func (r *loggedResult) appendJSON(b []byte) []byte {
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, r.Allow)
	b = append(b, `,"reason":`...)
	b = appendString(b, r.Reason)
	if len(r.StepUp) > 0 {
		b = append(b, `,"step_up":`...)
		b = appendStrings(b, r.StepUp)
	}
	if r.Lock {
		b = append(b, `,"lock":true`...)
	}
	if len(r.Notify) > 0 {
		b = append(b, `,"notify":`...)
		b = appendStrings(b, r.Notify)
	}
	return append(b, '}')
}

func (in *Input) appendJSON(b []byte) []byte {
	b = append(b, `{"point":`...)
	b = appendString(b, string(in.Point))
	b = append(b, `,"now":`...)
	b = strconv.AppendInt(b, in.Now, 10)
	b = append(b, `,"client":`...)
	b = in.Client.appendJSON(b)
	b = append(b, `,"device":`...)
	b = in.Device.appendJSON(b)
	b = append(b, `,"account":`...)
	b = in.Account.appendJSON(b)
	b = append(b, `,"request":`...)
	b = in.Request.appendJSON(b)
	if in.Session != nil {
		b = append(b, `,"session":`...)
		b = in.Session.appendJSON(b)
	}
	if in.Attempt != nil {
		b = append(b, `,"attempt":`...)
		b = in.Attempt.appendJSON(b)
	}
	if in.Code != nil {
		b = append(b, `,"code":`...)
		b = in.Code.appendJSON(b)
	}
	if in.Change != nil {
		b = append(b, `,"change":`...)
		b = in.Change.appendJSON(b)
	}
	if in.Enrolment != nil {
		b = append(b, `,"enrolment":`...)
		b = in.Enrolment.appendJSON(b)
	}
	if in.Recovery != nil {
		b = append(b, `,"recovery":`...)
		b = in.Recovery.appendJSON(b)
	}
	return append(b, '}')
}

func (c *Client) appendJSON(b []byte) []byte {
	b = append(b, `{"ip":`...)
	b = appendString(b, c.IP)
	if c.IPUnknown {
		b = append(b, `,"ip_unknown":true`...)
	}
	b = append(b, `,"facts":`...)
	b = c.Facts.appendJSON(b)
	b = append(b, `,"allow_listed":`...)
	b = strconv.AppendBool(b, c.AllowListed)
	b = append(b, `,"recent_failures":`...)
	b = strconv.AppendInt(b, int64(c.RecentFailures), 10)
	return append(b, '}')
}

func (f *IPFacts) appendJSON(b []byte) []byte {
	b = append(b, `{"checked":`...)
	b = strconv.AppendBool(b, f.Checked)
	b = append(b, `,"anonymous_vpn":`...)
	b = strconv.AppendBool(b, f.AnonymousVPN)
	b = append(b, `,"public_proxy":`...)
	b = strconv.AppendBool(b, f.PublicProxy)
	b = append(b, `,"tor_exit_node":`...)
	b = strconv.AppendBool(b, f.TorExitNode)
	b = append(b, `,"hosting_provider":`...)
	b = strconv.AppendBool(b, f.HostingProvider)
	b = append(b, `,"residential_proxy":`...)
	b = strconv.AppendBool(b, f.ResidentialProxy)
	b = append(b, `,"anonymous":`...)
	b = strconv.AppendBool(b, f.Anonymous)
	if f.Country != "" {
		b = append(b, `,"country":`...)
		b = appendString(b, f.Country)
	}
	return append(b, '}')
}

func (d *Device) appendJSON(b []byte) []byte {
	b = append(b, `{"recognised":`...)
	b = strconv.AppendBool(b, d.Recognised)
	b = append(b, `,"registered_at":`...)
	b = strconv.AppendInt(b, d.RegisteredAt, 10)
	return append(b, '}')
}

func (a *Account) appendJSON(b []byte) []byte {
	b = append(b, `{"exists":`...)
	b = strconv.AppendBool(b, a.Exists)
	b = append(b, `,"locked":`...)
	b = strconv.AppendBool(b, a.Locked)
	b = append(b, `,"consecutive_failures":`...)
	b = strconv.AppendInt(b, int64(a.ConsecutiveFailures), 10)
	b = append(b, `,"recent_step_up_failures":`...)
	b = strconv.AppendInt(b, int64(a.RecentStepUpFailures), 10)
	b = append(b, `,"consecutive_step_up_failures":`...)
	b = strconv.AppendInt(b, int64(a.ConsecutiveStepUpFailures), 10)
	b = append(b, `,"second_factors":`...)
	b = appendStrings(b, a.SecondFactors)
	if a.SecurityPhone != nil {
		b = append(b, `,"security_phone":`...)
		b = a.SecurityPhone.appendJSON(b)
	}
	b = append(b, `,"email_on_file":`...)
	b = strconv.AppendBool(b, a.EmailOnFile)
	b = append(b, `,"products":`...)
	b = appendStrings(b, a.Products)
	return append(b, '}')
}

func (r *Request) appendJSON(b []byte) []byte {
	b = append(b, `{"route":`...)
	b = appendString(b, r.Route)
	b = append(b, `,"host":`...)
	b = appendString(b, r.Host)
	b = append(b, `,"path":`...)
	b = appendString(b, r.Path)
	b = append(b, `,"path_class":`...)
	b = appendString(b, r.PathClass)
	b = append(b, `,"method":`...)
	b = appendString(b, r.Method)
	return append(b, '}')
}

func (s *Session) appendJSON(b []byte) []byte {
	b = append(b, `{"methods":`...)
	b = appendStrings(b, s.Methods)
	b = append(b, `,"auth_time":`...)
	b = strconv.AppendInt(b, s.AuthTime, 10)
	b = append(b, `,"step_up_at":`...)
	b = strconv.AppendInt(b, s.StepUpAt, 10)
	b = append(b, `,"last_seen":`...)
	b = strconv.AppendInt(b, s.LastSeen, 10)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, s.Created, 10)
	return append(b, '}')
}

// appendJSON for Attempt is the one struct whose every field may be
// omitted, so the comma depends on what came before.
func (a *Attempt) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if a.PasswordOK != nil {
		b = append(b, `"password_ok":`...)
		b = strconv.AppendBool(b, *a.PasswordOK)
	}
	if a.CodeOK != nil {
		if a.PasswordOK != nil {
			b = append(b, ',')
		}
		b = append(b, `"code_ok":`...)
		b = strconv.AppendBool(b, *a.CodeOK)
	}
	return append(b, '}')
}

func (c *Code) appendJSON(b []byte) []byte {
	b = append(b, `{"purpose":`...)
	b = appendString(b, c.Purpose)
	b = append(b, `,"channel":`...)
	b = appendString(b, c.Channel)
	b = append(b, `,"phone":`...)
	b = c.Phone.appendJSON(b)
	b = append(b, `,"sent_at":`...)
	b = strconv.AppendInt(b, c.SentAt, 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(c.Attempts), 10)
	b = append(b, `,"resends":`...)
	b = strconv.AppendInt(b, int64(c.Resends), 10)
	b = append(b, `,"sends":`...)
	b = c.Sends.appendJSON(b)
	return append(b, '}')
}

func (s *SendCounts) appendJSON(b []byte) []byte {
	b = append(b, `{"user":`...)
	b = strconv.AppendInt(b, int64(s.User), 10)
	b = append(b, `,"number":`...)
	b = strconv.AppendInt(b, int64(s.Number), 10)
	b = append(b, `,"address":`...)
	b = strconv.AppendInt(b, int64(s.Address), 10)
	b = append(b, `,"calling_code":`...)
	b = strconv.AppendInt(b, int64(s.CallingCode), 10)
	return append(b, '}')
}

func (p *PasswordFacts) appendJSON(b []byte) []byte {
	b = append(b, `{"length":`...)
	b = strconv.AppendInt(b, int64(p.Length), 10)
	b = append(b, `,"classes":`...)
	b = strconv.AppendInt(b, int64(p.Classes), 10)
	b = append(b, `,"contains_username":`...)
	b = strconv.AppendBool(b, p.ContainsUsername)
	b = append(b, `,"contains_name":`...)
	b = strconv.AppendBool(b, p.ContainsName)
	b = append(b, `,"common":`...)
	b = strconv.AppendBool(b, p.Common)
	b = append(b, `,"guesses_log10":`...)
	b = strconv.AppendInt(b, int64(p.GuessesLog10), 10)
	return append(b, '}')
}

func (c *Change) appendJSON(b []byte) []byte {
	b = append(b, `{"kind":`...)
	b = appendString(b, c.Kind)
	if c.NewPassword != nil {
		b = append(b, `,"new_password":`...)
		b = c.NewPassword.appendJSON(b)
	}
	b = append(b, `,"username_available":`...)
	b = strconv.AppendBool(b, c.UsernameAvailable)
	if c.Phone != nil {
		b = append(b, `,"phone":`...)
		b = c.Phone.appendJSON(b)
	}
	return append(b, '}')
}

func (e *Enrolment) appendJSON(b []byte) []byte {
	b = append(b, `{"stage":`...)
	b = appendString(b, e.Stage)
	b = append(b, `,"identity_verified":`...)
	b = strconv.AppendBool(b, e.IdentityVerified)
	b = append(b, `,"identity_has_profile":`...)
	b = strconv.AppendBool(b, e.IdentityHasProfile)
	b = append(b, `,"account_status":`...)
	b = appendString(b, e.AccountStatus)
	b = append(b, `,"identity_attempts":`...)
	b = strconv.AppendInt(b, int64(e.IdentityAttempts), 10)
	b = append(b, `,"address_attempts":`...)
	b = strconv.AppendInt(b, int64(e.AddressAttempts), 10)
	b = append(b, `,"username_available":`...)
	b = strconv.AppendBool(b, e.UsernameAvailable)
	if e.NewPassword != nil {
		b = append(b, `,"new_password":`...)
		b = e.NewPassword.appendJSON(b)
	}
	b = append(b, `,"consent":`...)
	b = strconv.AppendBool(b, e.Consent)
	if e.Phone != nil {
		b = append(b, `,"phone":`...)
		b = e.Phone.appendJSON(b)
	}
	return append(b, '}')
}

func (r *Recovery) appendJSON(b []byte) []byte {
	b = append(b, `{"kind":`...)
	b = appendString(b, r.Kind)
	b = append(b, `,"stage":`...)
	b = appendString(b, r.Stage)
	b = append(b, `,"identity_verified":`...)
	b = strconv.AppendBool(b, r.IdentityVerified)
	b = strconv.AppendBool(append(b, `,"questions_answered":`...), r.QuestionsAnswered)
	b = strconv.AppendInt(append(b, `,"account_attempts":`...), int64(r.AccountAttempts), 10)
	b = strconv.AppendInt(append(b, `,"address_attempts":`...), int64(r.AddressAttempts), 10)
	if r.VerifiedBy != "" {
		b = append(b, `,"verified_by":`...)
		b = appendString(b, r.VerifiedBy)
	}
	if r.NewPassword != nil {
		b = append(b, `,"new_password":`...)
		b = r.NewPassword.appendJSON(b)
	}
	return append(b, '}')
}

func (p *PhoneFacts) appendJSON(b []byte) []byte {
	b = append(b, `{"valid":`...)
	b = strconv.AppendBool(b, p.Valid)
	if p.Region != "" {
		b = append(b, `,"region":`...)
		b = appendString(b, p.Region)
	}
	if p.CallingCode != 0 {
		b = append(b, `,"calling_code":`...)
		b = strconv.AppendInt(b, int64(p.CallingCode), 10)
	}
	b = append(b, `,"line_type":`...)
	b = appendString(b, p.LineType)
	if p.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, p.Source)
	}
	if p.Masked != "" {
		b = append(b, `,"masked":`...)
		b = appendString(b, p.Masked)
	}
	return append(b, '}')
}

// appendStrings appends ss as a JSON array, null when ss is nil, as
// encoding/json does.
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string exactly as encoding/json's
// appendString does with HTML escaping on: control characters, '"', '\\',
// '<', '>' and '&' are escaped, each invalid UTF-8 byte becomes \ufffd, and
// U+2028 and U+2029 are escaped for JSONP.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
