package policies

import (
	"reflect"
	"testing"
)

// TestFactsKeyCoversAccount guards the access cache: two inputs whose
// account or session methods differ in any field must not share a key, or
// one could be answered with the other's decision.
func TestFactsKeyCoversAccount(t *testing.T) {
	if n := reflect.TypeFor[Account]().NumField(); n != 7 {
		t.Fatalf("Account has %d fields; factsKey encodes 7: add the new one to it and to this test", n)
	}
	if n := reflect.TypeFor[PhoneFacts]().NumField(); n != 5 {
		t.Fatalf("PhoneFacts has %d fields; factsKey encodes 5: add the new one to it and to this test", n)
	}
	base := Account{Exists: true, ConsecutiveFailures: 1, SecondFactors: []string{"sms"}, Products: []string{"savings"},
		SecurityPhone: &PhoneFacts{Valid: true, Region: "US", LineType: "mobile", Source: "prefix", Masked: "+1 ••• 42"}}
	phone := func(f func(*PhoneFacts)) func(*Account) {
		return func(a *Account) { p := *a.SecurityPhone; f(&p); a.SecurityPhone = &p }
	}
	variants := map[string]func(*Account){
		"exists":         func(a *Account) { a.Exists = false },
		"locked":         func(a *Account) { a.Locked = true },
		"email":          func(a *Account) { a.EmailOnFile = true },
		"failures":       func(a *Account) { a.ConsecutiveFailures = 2 },
		"factors":        func(a *Account) { a.SecondFactors = []string{"totp"} },
		"more factors":   func(a *Account) { a.SecondFactors = []string{"sms", "totp"} },
		"products":       func(a *Account) { a.Products = []string{"carloans"} },
		"product split":  func(a *Account) { a.Products = []string{"sav", "ings"} },
		"no phone":       func(a *Account) { a.SecurityPhone = nil },
		"phone valid":    phone(func(p *PhoneFacts) { p.Valid = false }),
		"phone region":   phone(func(p *PhoneFacts) { p.Region = "GB" }),
		"phone type":     phone(func(p *PhoneFacts) { p.LineType = "voip" }),
		"phone source":   phone(func(p *PhoneFacts) { p.Source = "carrier" }),
		"phone masked":   phone(func(p *PhoneFacts) { p.Masked = "+1 ••• 43" }),
		"factors→prods":  func(a *Account) { a.SecondFactors, a.Products = nil, []string{"sms", "savings"} },
		"empty products": func(a *Account) { a.Products = nil },
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
	for _, methods := range [][]string{nil, {"pwd", "sms"}, {"pwdsms"}} {
		k := factsKey(&base, methods)
		if other, dup := seen[k]; dup {
			t.Errorf("methods %v and %s share the key %q", methods, other, k)
		}
		seen[k] = "methods"
	}
}
