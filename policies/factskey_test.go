package policies

import (
	"reflect"
	"testing"
)

// TestFactsKeyCoversAccount guards the access cache: two inputs whose
// account or session methods differ in any field must not share a key, or
// one could be answered with the other's decision.
func TestFactsKeyCoversAccount(t *testing.T) {
	if n := reflect.TypeFor[Account]().NumField(); n != 10 {
		t.Fatalf("Account has %d fields; factsKey encodes 9 and leaves out UserID, which the policy never sees: "+
			"add the new one to it and to this test", n)
	}
	if n := reflect.TypeFor[PhoneFacts]().NumField(); n != 6 {
		t.Fatalf("PhoneFacts has %d fields; factsKey encodes 6: add the new one to it and to this test", n)
	}
	base := Account{Exists: true, ConsecutiveFailures: 1, SecondFactors: []string{"sms"}, Products: []string{"savings"},
		SecurityPhone: &PhoneFacts{Valid: true, Region: "US", CallingCode: 1, LineType: "mobile", Source: "prefix", Masked: "+1 ••• 42"}}
	phone := func(f func(*PhoneFacts)) func(*Account) {
		return func(a *Account) { p := *a.SecurityPhone; f(&p); a.SecurityPhone = &p }
	}
	variants := map[string]func(*Account){
		"exists":            func(a *Account) { a.Exists = false },
		"locked":            func(a *Account) { a.Locked = true },
		"email":             func(a *Account) { a.EmailOnFile = true },
		"failures":          func(a *Account) { a.ConsecutiveFailures = 2 },
		"step-up failures":  func(a *Account) { a.RecentStepUpFailures = 3 },
		"step-ups in a row": func(a *Account) { a.ConsecutiveStepUpFailures = 3 },
		"factors":           func(a *Account) { a.SecondFactors = []string{"totp"} },
		"more factors":      func(a *Account) { a.SecondFactors = []string{"sms", "totp"} },
		"products":          func(a *Account) { a.Products = []string{"carloans"} },
		"product split":     func(a *Account) { a.Products = []string{"sav", "ings"} },
		"no phone":          func(a *Account) { a.SecurityPhone = nil },
		"phone valid":       phone(func(p *PhoneFacts) { p.Valid = false }),
		"phone region":      phone(func(p *PhoneFacts) { p.Region = "GB" }),
		"calling code":      phone(func(p *PhoneFacts) { p.CallingCode = 44 }),
		"no calling code":   phone(func(p *PhoneFacts) { p.CallingCode = 0 }),
		"phone type":        phone(func(p *PhoneFacts) { p.LineType = "voip" }),
		"phone source":      phone(func(p *PhoneFacts) { p.Source = "carrier" }),
		"phone masked":      phone(func(p *PhoneFacts) { p.Masked = "+1 ••• 43" }),
		"factors→prods":     func(a *Account) { a.SecondFactors, a.Products = nil, []string{"sms", "savings"} },
		"empty products":    func(a *Account) { a.Products = nil },
	}
	seen := map[string]string{factsKey(&base, []string{"pwd"}): "base"}
	for name, change := range variants {
		a := base
		change(&a)
		k := factsKey(&a, []string{"pwd"})
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share the key %q", name, other, k)
		}
		seen[k] = name
	}
	// Two people with the same facts share the cached decision.
	other := base
	other.UserID = "id-other"
	if factsKey(&other, []string{"pwd"}) != factsKey(&base, []string{"pwd"}) {
		t.Error("the user ID changes the key, though the policy cannot read it")
	}
	for _, methods := range [][]string{nil, {"pwd", "sms"}, {"pwdsms"}} {
		k := factsKey(&base, methods)
		if other, dup := seen[k]; dup {
			t.Errorf("methods %v and %s share the key %q", methods, other, k)
		}
		seen[k] = "methods"
	}
}

// TestClientKeyCoversFacts guards the access cache the same way for the
// client address: inputs whose address facts differ in any field must not
// share a key, and inputs that differ only in the address (or its failure
// count, which route_decision may not read) must.
func TestClientKeyCoversFacts(t *testing.T) {
	if n := reflect.TypeFor[IPFacts]().NumField(); n != 8 {
		t.Fatalf("IPFacts has %d fields; clientKey encodes 8: add the new one to it and to this test", n)
	}
	if n := reflect.TypeFor[Client]().NumField(); n != 5 {
		t.Fatalf("Client has %d fields; clientKey encodes 3 of them and leaves out IP and RecentFailures: "+
			"decide whether the new one belongs in the key and update this test", n)
	}
	base := Client{IP: "198.51.100.7", Facts: IPFacts{Checked: true, Country: "US"}}
	variants := map[string]func(*Client){
		"unknown":           func(c *Client) { c.IPUnknown = true },
		"allow listed":      func(c *Client) { c.AllowListed = true },
		"unchecked":         func(c *Client) { c.Facts.Checked = false },
		"vpn":               func(c *Client) { c.Facts.AnonymousVPN = true },
		"public proxy":      func(c *Client) { c.Facts.PublicProxy = true },
		"tor":               func(c *Client) { c.Facts.TorExitNode = true },
		"hosting":           func(c *Client) { c.Facts.HostingProvider = true },
		"residential proxy": func(c *Client) { c.Facts.ResidentialProxy = true },
		"anonymous":         func(c *Client) { c.Facts.Anonymous = true },
		"country":           func(c *Client) { c.Facts.Country = "GB" },
		"no country":        func(c *Client) { c.Facts.Country = "" },
	}
	seen := map[string]string{clientKey(&base): "base"}
	for name, change := range variants {
		c := base
		change(&c)
		k := clientKey(&c)
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share the key %q", name, other, k)
		}
		seen[k] = name
	}
	same := base
	same.IP, same.RecentFailures = "203.0.113.9", 7
	if clientKey(&same) != clientKey(&base) {
		t.Errorf("two clean addresses have different keys; the cache would be keyed by address")
	}
}
