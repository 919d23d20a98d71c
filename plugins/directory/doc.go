// Package directory is where customer records come from: implementations
// of selfservice.Directory, which the enrolment and recovery flows use to
// check who a person is and which accounts they hold.
//
//   - File serves a JSON or CSV file held in memory: the embedded default,
//     the demo (Sample) and tests.
//   - HTTP asks the bank's customer service over HTTPS: production.
//
// Open(Config) builds either one. Neither logs identity data (a last 4, a
// date of birth, an account number), nor puts it in an error.
//
// # Matching
//
// A last name matches without regard to case, surrounding spaces or
// Unicode normalisation form (it is trimmed, NFC-normalised and case
// folded). The last 4 of the SSN or TIN and the date of birth (yyyy-mm-dd)
// match exactly, after trimming spaces. Account numbers, VINs and card
// numbers match after NormalizeNumber: spaces and dashes removed, letters
// upper-cased.
//
// File compares a lookup with every record and every account, through
// fixed-length SHA-256 digests and crypto/subtle, so the time a lookup
// takes depends on the size of the file and not on whether, or where, it
// failed: timing does not tell which identities exist. Joint owners are
// two customers listing the same account; each matches with their own
// identity and the shared number. Two customers with the same identity
// are refused at load, since no lookup could tell them apart.
//
// # The JSON format
//
// One object with a "customers" array; unknown fields are refused, email
// may be left out:
//
//	{"customers": [
//	  {"customer_id": "c1001", "last_name": "Liddell", "tax_id_last4": "0001",
//	   "date_of_birth": "1961-05-04", "email": "alice@example.com",
//	   "accounts": [
//	     {"kind": "account", "number": "1000000001", "product": "savings", "status": "open"},
//	     {"kind": "vehicle", "number": "1FAKE000000000001", "product": "carloans", "status": "open"}]}]}
//
// # The CSV format
//
// A header row naming the columns, in any order (email may be left out),
// then one row per account with the customer's columns repeated; rows of
// one customer must repeat them alike. A row whose account columns are all
// empty is a customer without accounts:
//
//	customer_id,last_name,tax_id_last4,date_of_birth,email,kind,number,product,status
//	c1001,Liddell,0001,1961-05-04,alice@example.com,account,1000000001,savings,open
//	c1001,Liddell,0001,1961-05-04,alice@example.com,vehicle,1FAKE000000000001,carloans,open
//
// # Fields
//
//   - customer_id: the bank's customer ID, unique in the file.
//   - last_name: required.
//   - tax_id_last4: exactly 4 digits.
//   - date_of_birth: a real date written yyyy-mm-dd.
//   - email: optional, a bare address.
//   - kind: account, vehicle or card. A vehicle's number is a VIN (17
//     letters and digits, no I, O or Q); a card's is 12 to 19 digits; an
//     account number is 4 to 34 letters and digits. Spaces and dashes in
//     numbers are ignored.
//   - product: the route name of the app the account belongs to (savings,
//     brokerage, carloans, cards).
//   - status: open, paid_in_full, lease_returned, closed or cancelled.
//     Which statuses may enrol is the policy's decision, not the file's.
//
// An account number may appear under two or more customers only as a joint
// account: every owner lists it with the same kind, product and status.
// Loading reports every problem at once, each with the file and line and,
// for JSON, the record (customers[2].accounts[0]), in a *LoadError. Reload
// re-reads the file and keeps the previous records when the new ones do
// not load.
//
// # The HTTP contract
//
// Every request is a POST of a JSON object to the base URL plus
// "/verify", "/identify" or "/customer", with
//
//	Authorization: Bearer <the token file's content>
//	Content-Type: application/json
//
// Bodies: /verify {"last_name", "tax_id_last4", "date_of_birth", "number"};
// /identify the same without number; /customer {"customer_id"}. The last
// name is trimmed and NFC-normalised and the number normalised as above;
// the service compares names without regard to case. The answer is 200
// with
//
//	{"match": true, "customer": {"customer_id": "c1001", "email": "alice@example.com",
//	  "accounts": [{"kind": "account", "number": "1000000001", "product": "savings", "status": "open"}]}}
//
// or {"match": false}; a 404 also means no match. Anything else (another
// status, a redirect, unknown fields, an invalid account, an answer over
// MaxResponse bytes, a timeout, a /verify customer who does not list the
// number asked about, a /customer answer for another ID) is an error,
// which callers treat as a denial. docs/directory.md says the same for
// the service's authors.
package directory
