package directory

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/portcullis/portcullis/gateway/selfservice"
)

// Account kinds: what an account's number is.
const (
	KindAccount = "account" // an account number
	KindVehicle = "vehicle" // a vehicle identification number (VIN)
	KindCard    = "card"    // a card number
)

// Account statuses. Only the policy decides which of them may be used to
// create a profile or to add a product; the directory reports them as
// they are.
const (
	StatusOpen          = "open"
	StatusPaidInFull    = "paid_in_full"
	StatusLeaseReturned = "lease_returned"
	StatusClosed        = "closed"
	StatusCancelled     = "cancelled"
)

var (
	kinds    = []string{KindAccount, KindVehicle, KindCard}
	statuses = []string{StatusOpen, StatusPaidInFull, StatusLeaseReturned, StatusClosed, StatusCancelled}
)

// dateLayout is how a date of birth is written in a customer file and in
// selfservice.Identity.
const dateLayout = "2006-01-02"

// record is one customer as a file or an HTTP answer gives it.
type record struct {
	ID          string          `json:"customer_id"`
	LastName    string          `json:"last_name"`
	TaxIDLast4  string          `json:"tax_id_last4"`
	DateOfBirth string          `json:"date_of_birth"`
	Email       string          `json:"email,omitempty"`
	Accounts    []accountRecord `json:"accounts"`
}

// accountRecord is one account as a file or an HTTP answer gives it.
type accountRecord struct {
	Kind    string `json:"kind"`
	Number  string `json:"number"`
	Product string `json:"product"`
	Status  string `json:"status"`
}

// NormalizeNumber is the form account numbers, VINs and card numbers are
// compared in: spaces and dashes removed, letters upper-cased, so that
// "1fake-0000 0000 00001" and "1FAKE0000000000001" are the same number.
func NormalizeNumber(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == ' ' || r == '-' || r == '\t':
		case 'a' <= r && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// normalizeName is the form last names are compared in: surrounding space
// trimmed, NFC, case folded (and NFC again, as folding may leave a string
// that is not).
func normalizeName(s string) string {
	// A Caser keeps state, so each call has its own.
	return norm.NFC.String(cases.Fold().String(norm.NFC.String(strings.TrimSpace(s))))
}

// identityDigest is the fixed-length value an identity is compared by:
// SHA-256 over the normalised last name, the last 4 and the date of birth,
// each prefixed with its length so that no two identities share an input.
// Every record's digest has the same length as every query's, so
// subtle.ConstantTimeCompare takes the same time whatever the values.
func identityDigest(lastName, taxIDLast4, dateOfBirth string) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range []string{normalizeName(lastName), strings.TrimSpace(taxIDLast4), strings.TrimSpace(dateOfBirth)} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// numberDigest is the fixed-length value an account number is compared by.
func numberDigest(number string) [sha256.Size]byte {
	return sha256.Sum256([]byte(NormalizeNumber(number)))
}

// checkCustomer reports what is wrong with the customer fields of r, one
// message per problem. Messages never quote the last 4, the date of birth
// or an account number.
func checkCustomer(r *record) []string {
	var p []string
	switch {
	case r.ID == "":
		p = append(p, "customer_id is required")
	case strings.TrimSpace(r.ID) != r.ID || strings.ContainsFunc(r.ID, isControl):
		p = append(p, fmt.Sprintf("customer_id %q has surrounding spaces or control characters", r.ID))
	}
	if strings.TrimSpace(r.LastName) == "" {
		p = append(p, "last_name is required")
	}
	if !fourDigits(r.TaxIDLast4) {
		p = append(p, "tax_id_last4 must be exactly 4 digits")
	}
	if !validDate(r.DateOfBirth) {
		p = append(p, "date_of_birth must be a date written yyyy-mm-dd")
	}
	if r.Email != "" && !validEmail(r.Email) {
		p = append(p, "email is not a plain email address (like name@example.com)")
	}
	return p
}

// checkAccount reports what is wrong with an account, one message per
// problem. With quote, messages quote the kind, product or status found;
// without it (an HTTP answer, which a faulty service might fill with
// anything) they quote nothing.
func checkAccount(a *accountRecord, quote bool) []string {
	q := func(s string) string {
		if quote {
			return fmt.Sprintf(" %q", s)
		}
		return ""
	}
	var p []string
	if !slices.Contains(kinds, a.Kind) {
		p = append(p, fmt.Sprintf("kind%s is not one of %s", q(a.Kind), strings.Join(kinds, ", ")))
	}
	if msg := numberProblem(a.Kind, NormalizeNumber(a.Number)); msg != "" {
		p = append(p, msg)
	}
	switch {
	case a.Product == "":
		p = append(p, "product is required")
	case !routeName(a.Product):
		p = append(p, fmt.Sprintf("product%s must be a route name: lower-case letters, digits, _ and -", q(a.Product)))
	}
	if !slices.Contains(statuses, a.Status) {
		p = append(p, fmt.Sprintf("status%s is not one of %s", q(a.Status), strings.Join(statuses, ", ")))
	}
	return p
}

// numberProblem says what is wrong with the normalised number n of an
// account of kind; "" when nothing is (or the kind is unknown, which is
// reported on its own).
func numberProblem(kind, n string) string {
	if n == "" {
		return "number is required"
	}
	for _, c := range []byte(n) {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
			return "number must be letters and digits (spaces and dashes are ignored)"
		}
	}
	switch kind {
	case KindVehicle:
		if len(n) != 17 || strings.ContainsAny(n, "IOQ") {
			return "a vehicle's number must be a VIN: 17 letters and digits, without I, O or Q"
		}
	case KindCard:
		if len(n) < 12 || len(n) > 19 || strings.IndexFunc(n, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return "a card number must be 12 to 19 digits"
		}
	case KindAccount:
		if len(n) < 4 || len(n) > 34 {
			return "an account number must be 4 to 34 letters and digits"
		}
	}
	return ""
}

// validEmail reports whether s is a bare address, like name@example.com.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

func fourDigits(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validDate reports whether s is a calendar date written yyyy-mm-dd
// exactly (time.Parse alone accepts no other form, but is checked against
// its own output to be sure).
func validDate(s string) bool {
	t, err := time.Parse(dateLayout, s)
	return err == nil && t.Format(dateLayout) == s
}

func routeName(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// customerOf is the selfservice.Customer a record describes, with account
// numbers in normalised form.
func customerOf(r *record) selfservice.Customer {
	c := selfservice.Customer{ID: r.ID, LastName: r.LastName, Email: r.Email, Accounts: make([]selfservice.Account, len(r.Accounts))}
	for i, a := range r.Accounts {
		c.Accounts[i] = selfservice.Account{Kind: a.Kind, Number: NormalizeNumber(a.Number), Product: a.Product, Status: a.Status}
	}
	return c
}
