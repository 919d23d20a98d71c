package policies

// IPFacts is what the risk signals say about a client address. The gateway
// fills it from the GeoIP plugin before asking a policy; the policy never
// looks anything up itself.
type IPFacts struct {
	// Checked is false when no signal source could be consulted (no
	// database loaded, lookup error); policies deny unless told otherwise.
	Checked bool `json:"checked"`
	// The GeoIP2 Anonymous-IP flags.
	AnonymousVPN     bool `json:"anonymous_vpn"`
	PublicProxy      bool `json:"public_proxy"`
	TorExitNode      bool `json:"tor_exit_node"`
	HostingProvider  bool `json:"hosting_provider"`
	ResidentialProxy bool `json:"residential_proxy"`
	// Anonymous is the database's summary flag: any of the above.
	Anonymous bool `json:"anonymous"`
	// Country is the ISO 3166-1 alpha-2 code when a country database is
	// configured, otherwise empty.
	Country string `json:"country,omitempty"`
}

// PhoneFacts is what is known about a phone number, never the number itself.
type PhoneFacts struct {
	// Valid is false for a number that does not parse or is not a valid
	// number for its region.
	Valid bool `json:"valid"`
	// Region is the ISO 3166-1 alpha-2 region the number belongs to.
	Region string `json:"region,omitempty"`
	// CallingCode is the country calling code (1 for North America, 44
	// for the UK, 800 for international freephone); 0 when the number is
	// not valid. The gateway counts sends per calling code with it.
	CallingCode int `json:"calling_code,omitempty"`
	// LineType is one of: mobile, fixed_line, fixed_line_or_mobile, voip,
	// toll_free, premium_rate, shared_cost, personal_number, pager, uan,
	// voicemail, unknown.
	LineType string `json:"line_type"`
	// Source says where LineType came from: "prefix" (libphonenumber's
	// number plan) or "carrier" (a carrier lookup, which sees ported and
	// virtual numbers).
	Source string `json:"source,omitempty"`
	// Masked is the number with all but the last two digits hidden, for
	// messages and logs.
	Masked string `json:"masked,omitempty"`
}
