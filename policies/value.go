package policies

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// The input is converted to an ast.Value by hand rather than through JSON or
// ast.InterfaceToValue: it is on every request, and building the object
// directly costs a fraction of a round trip (see BenchmarkInputValue).
// TestInputValueMatchesJSON keeps it in step with the JSON tags.

func (in *Input) value() ast.Value {
	items := make([][2]*ast.Term, 0, 12)
	items = append(items,
		item("point", str(string(in.Point))),
		item("now", num(in.Now)),
		item("client", ast.NewTerm(in.Client.value())),
		item("device", in.Device.value()),
		item("account", ast.NewTerm(in.Account.value())),
		item("request", ast.NewTerm(ast.NewObject(
			item("route", str(in.Request.Route)),
			item("host", str(in.Request.Host)),
			item("path", str(in.Request.Path)),
			item("path_class", str(in.Request.PathClass)),
			item("method", str(in.Request.Method)),
		))),
	)
	if s := in.Session; s != nil {
		items = append(items, item("session", ast.NewTerm(s.value())))
	}
	if a := in.Attempt; a != nil {
		obj := ast.NewObject()
		if a.PasswordOK != nil {
			obj.Insert(key("password_ok"), boolean(*a.PasswordOK))
		}
		if a.CodeOK != nil {
			obj.Insert(key("code_ok"), boolean(*a.CodeOK))
		}
		items = append(items, item("attempt", ast.NewTerm(obj)))
	}
	if c := in.Code; c != nil {
		items = append(items, item("code", ast.NewTerm(ast.NewObject(
			item("purpose", str(c.Purpose)),
			item("channel", str(c.Channel)),
			item("phone", ast.NewTerm(c.Phone.value())),
			item("sent_at", num(c.SentAt)),
			item("attempts", num(int64(c.Attempts))),
			item("resends", num(int64(c.Resends))),
			item("sends", ast.NewTerm(ast.NewObject(
				item("user", num(int64(c.Sends.User))),
				item("number", num(int64(c.Sends.Number))),
				item("address", num(int64(c.Sends.Address))),
				item("calling_code", num(int64(c.Sends.CallingCode))),
			))),
		))))
	}
	if c := in.Change; c != nil {
		obj := ast.NewObject(
			item("kind", str(c.Kind)),
			item("username_available", boolean(c.UsernameAvailable)),
		)
		if c.NewPassword != nil {
			obj.Insert(key("new_password"), ast.NewTerm(c.NewPassword.value()))
		}
		if c.Phone != nil {
			obj.Insert(key("phone"), ast.NewTerm(c.Phone.value()))
		}
		items = append(items, item("change", ast.NewTerm(obj)))
	}
	if e := in.Enrolment; e != nil {
		obj := ast.NewObject(
			item("stage", str(e.Stage)),
			item("identity_verified", boolean(e.IdentityVerified)),
			item("identity_has_profile", boolean(e.IdentityHasProfile)),
			item("account_status", str(e.AccountStatus)),
			item("identity_attempts", num(int64(e.IdentityAttempts))),
			item("address_attempts", num(int64(e.AddressAttempts))),
			item("username_available", boolean(e.UsernameAvailable)),
			item("consent", boolean(e.Consent)),
		)
		if e.NewPassword != nil {
			obj.Insert(key("new_password"), ast.NewTerm(e.NewPassword.value()))
		}
		if e.Phone != nil {
			obj.Insert(key("phone"), ast.NewTerm(e.Phone.value()))
		}
		items = append(items, item("enrolment", ast.NewTerm(obj)))
	}
	if r := in.Recovery; r != nil {
		obj := ast.NewObject(
			item("kind", str(r.Kind)),
			item("stage", str(r.Stage)),
			item("identity_verified", boolean(r.IdentityVerified)),
			item("questions_answered", boolean(r.QuestionsAnswered)),
			item("account_attempts", num(int64(r.AccountAttempts))),
			item("address_attempts", num(int64(r.AddressAttempts))),
		)
		if r.VerifiedBy != "" {
			obj.Insert(key("verified_by"), str(r.VerifiedBy))
		}
		if r.NewPassword != nil {
			obj.Insert(key("new_password"), ast.NewTerm(r.NewPassword.value()))
		}
		items = append(items, item("recovery", ast.NewTerm(obj)))
	}
	return ast.NewObject(items...)
}

func (c *Client) value() ast.Value {
	items := [][2]*ast.Term{
		item("ip", str(c.IP)),
		item("facts", ast.NewTerm(c.Facts.value())),
		item("allow_listed", boolean(c.AllowListed)),
		item("recent_failures", num(int64(c.RecentFailures))),
	}
	if c.IPUnknown { // omitempty, as in the JSON
		items = append(items, item("ip_unknown", boolean(true)))
	}
	return ast.NewObject(items...)
}

// value is one of the shared objects in factsTerms unless the facts name a
// country.
func (f *IPFacts) value() ast.Value {
	if f.Country == "" {
		return factsTerms[f.bits()].Value
	}
	return f.object()
}

func (f *IPFacts) object() ast.Value {
	items := make([][2]*ast.Term, 0, 8)
	items = append(items,
		item("checked", boolean(f.Checked)),
		item("anonymous_vpn", boolean(f.AnonymousVPN)),
		item("public_proxy", boolean(f.PublicProxy)),
		item("tor_exit_node", boolean(f.TorExitNode)),
		item("hosting_provider", boolean(f.HostingProvider)),
		item("residential_proxy", boolean(f.ResidentialProxy)),
		item("anonymous", boolean(f.Anonymous)),
	)
	if f.Country != "" {
		items = append(items, item("country", str(f.Country)))
	}
	return ast.NewObject(items...)
}

// bits numbers the combinations of f's flags, an index into factsTerms.
func (f *IPFacts) bits() int {
	n := 0
	for i, v := range [...]bool{f.Checked, f.AnonymousVPN, f.PublicProxy, f.TorExitNode, f.HostingProvider, f.ResidentialProxy, f.Anonymous} {
		if v {
			n |= 1 << i
		}
	}
	return n
}

// factsTerms are the input objects of every combination of address flags
// without a country, built once like knownTerms: the facts of most
// requests are one of a handful of these.
var factsTerms = func() []*ast.Term {
	terms := make([]*ast.Term, 1<<7)
	for n := range terms {
		bit := func(i int) bool { return n&(1<<i) != 0 }
		f := IPFacts{Checked: bit(0), AnonymousVPN: bit(1), PublicProxy: bit(2), TorExitNode: bit(3),
			HostingProvider: bit(4), ResidentialProxy: bit(5), Anonymous: bit(6)}
		terms[f.bits()] = ast.NewTerm(f.object())
	}
	return terms
}()

// noDevice is the device object of a browser without a registered device.
var noDevice = ast.NewTerm(ast.NewObject(
	item("recognised", boolean(false)),
	item("registered_at", num(0)),
))

func (d *Device) value() *ast.Term {
	if *d == (Device{}) {
		return noDevice
	}
	return ast.NewTerm(ast.NewObject(
		item("recognised", boolean(d.Recognised)),
		item("registered_at", num(d.RegisteredAt)),
	))
}

func (a *Account) value() ast.Value {
	items := make([][2]*ast.Term, 0, 9)
	items = append(items,
		item("exists", boolean(a.Exists)),
		item("locked", boolean(a.Locked)),
		item("consecutive_failures", num(int64(a.ConsecutiveFailures))),
		item("recent_step_up_failures", num(int64(a.RecentStepUpFailures))),
		item("consecutive_step_up_failures", num(int64(a.ConsecutiveStepUpFailures))),
		item("second_factors", list(a.SecondFactors)),
		item("email_on_file", boolean(a.EmailOnFile)),
		item("products", list(a.Products)),
	)
	if a.SecurityPhone != nil {
		items = append(items, item("security_phone", ast.NewTerm(a.SecurityPhone.value())))
	}
	return ast.NewObject(items...)
}

func (s *Session) value() ast.Value {
	return ast.NewObject(
		item("methods", list(s.Methods)),
		item("auth_time", num(s.AuthTime)),
		item("step_up_at", num(s.StepUpAt)),
		item("last_seen", num(s.LastSeen)),
		item("created", num(s.Created)),
	)
}

func (p *PhoneFacts) value() ast.Value {
	items := make([][2]*ast.Term, 0, 6)
	items = append(items,
		item("valid", boolean(p.Valid)),
		item("line_type", str(p.LineType)),
	)
	if p.Region != "" {
		items = append(items, item("region", str(p.Region)))
	}
	if p.CallingCode != 0 {
		items = append(items, item("calling_code", num(int64(p.CallingCode))))
	}
	if p.Source != "" {
		items = append(items, item("source", str(p.Source)))
	}
	if p.Masked != "" {
		items = append(items, item("masked", str(p.Masked)))
	}
	return ast.NewObject(items...)
}

func (p *PasswordFacts) value() ast.Value {
	return ast.NewObject(
		item("length", num(int64(p.Length))),
		item("classes", num(int64(p.Classes))),
		item("contains_username", boolean(p.ContainsUsername)),
		item("contains_name", boolean(p.ContainsName)),
		item("common", boolean(p.Common)),
		item("guesses_log10", num(int64(p.GuessesLog10))),
	)
}

// knownTerms are the input's object keys and its common values (points,
// methods, line types, ...), built once: every request shares them, as
// OPA's interned terms are shared, so building an input allocates mostly
// for its free-form values. Terms are never modified after construction.
var knownTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range []string{
		"point", "now", "client", "device", "account", "request", "session", "attempt", "code",
		"change", "enrolment", "recovery", "ip", "ip_unknown", "facts", "allow_listed", "recent_failures",
		"checked", "anonymous_vpn", "public_proxy", "tor_exit_node", "hosting_provider",
		"residential_proxy", "anonymous", "country", "recognised", "registered_at", "exists",
		"locked", "consecutive_failures", "recent_step_up_failures", "consecutive_step_up_failures", "second_factors", "security_phone", "email_on_file",
		"products", "route", "host", "path", "path_class", "method", "methods", "auth_time",
		"step_up_at", "last_seen", "created", "password_ok", "code_ok", "purpose", "channel",
		"phone", "sent_at", "attempts", "resends", "sends", "user", "number", "address",
		"calling_code", "kind", "new_password", "username_available",
		"stage", "identity_verified", "identity_has_profile", "consent", "verified_by",
		"account_status", "identity_attempts", "address_attempts", "open",
		"questions_answered", "account_attempts",
		"valid", "region", "line_type", "source", "masked", "length", "classes",
		"contains_username", "contains_name", "common", "guesses_log10",
		// values
		"", "login", "login_password", "send_code", "verify_code", "enrol", "recover", "settings",
		"access", "sms", "voice", "totp", "passkey", "questions", "password", "email",
		"mobile", "fixed_line", "fixed_line_or_mobile", "voip", "toll_free", "premium_rate",
		"shared_cost", "personal_number", "pager", "uan", "voicemail", "unknown", "prefix",
		"carrier", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "identify",
		"credentials", "complete", "username", "security_phone", "two_factor", "device",
		"US", "GB",
	} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

func key(k string) *ast.Term { return str(k) }

func item(k string, value *ast.Term) [2]*ast.Term { return [2]*ast.Term{key(k), value} }

func str(s string) *ast.Term {
	if t, ok := knownTerms[s]; ok {
		return t
	}
	return ast.StringTerm(s)
}

func num(n int64) *ast.Term { return ast.InternedTerm(n) }

func boolean(b bool) *ast.Term { return ast.InternedTerm(b) }

// list encodes a nil slice as an empty array, as policies expect a list.
func list(values []string) *ast.Term {
	terms := make([]*ast.Term, len(values))
	for i, s := range values {
		terms[i] = str(s)
	}
	return ast.ArrayTerm(terms...)
}
