// Package selfservice serves what a customer does without calling anyone:
// creating a login profile for accounts they already hold, recovering a
// forgotten username or password, and adding an account to a profile.
package selfservice

import (
	"context"
	"errors"
)

// Directory is where customer records come from: the bank's own systems,
// through plugins/directory (a file for the demo and tests, an HTTP lookup
// in production). Every method compares the identity's secrets (the last
// 4 of the SSN or TIN, the date of birth, the account number) in constant
// time, and no implementation logs them. Implementations are safe for
// concurrent use. An error other than ErrNoMatch means the directory could
// not answer (unreachable, malformed answer): callers deny, never treat it
// as a match or reveal it to the person.
type Directory interface {
	// Verify returns the customer whose identity matches id and who holds
	// the account whose number, VIN or card number is number, with that
	// account first in Accounts. It returns ErrNoMatch when nothing matches,
	// whichever part did not.
	Verify(ctx context.Context, id Identity, number string) (Customer, error)
	// Identify returns the customer whose identity matches id, without an
	// account (forgot username, forgot password). ErrNoMatch when none does.
	Identify(ctx context.Context, id Identity) (Customer, error)
	// Customer returns the record with the customer ID, ErrNoMatch when
	// there is none (a profile's products are refreshed from it).
	Customer(ctx context.Context, customerID string) (Customer, error)
}

// ErrNoMatch is returned when no record matches. Callers answer it exactly
// as they answer a match, so that nobody learns which identities exist.
var ErrNoMatch = errors.New("selfservice: no matching customer record")

// Identity is what a person gives to prove who they are.
type Identity struct {
	// LastName is compared without regard to case, surrounding spaces or
	// Unicode normalisation form.
	LastName string
	// TaxIDLast4 is the last 4 digits of the SSN or TIN.
	TaxIDLast4 string
	// DateOfBirth is yyyy-mm-dd (the pages read mm/dd/yyyy and convert).
	DateOfBirth string
}

// Customer is a customer record. It holds no identity secret: those stay in
// the directory.
type Customer struct {
	// ID is the bank's customer ID; a profile records it, and one customer
	// ID has at most one profile (joint owners are two customers).
	ID string
	// LastName is the customer's last name as the records hold it, ""
	// when the directory does not give it. A password recovery without
	// the identity questions compares it (and fails on "").
	LastName string
	// Email is the address on file, "" when none.
	Email string
	// Accounts are the products the customer holds.
	Accounts []Account
}

// Account is one product a customer holds.
type Account struct {
	// Kind is "account" (an account number), "vehicle" (a VIN) or "card"
	// (a card number): what the number is.
	Kind string
	// Number is the account number, VIN or card number; pages show only
	// its last 4 characters.
	Number string
	// Product names the upstream app it belongs to (savings, brokerage,
	// auto_loan, cards: a route name).
	Product string
	// Status is open, paid_in_full, lease_returned, closed or cancelled.
	// Whether a status may be used to create a profile or to add the
	// product is the policy's decision.
	Status string
}
