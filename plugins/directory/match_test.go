package directory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/portcullis/portcullis/gateway/selfservice"
)

func sampleDir(t *testing.T) *File {
	t.Helper()
	f, err := Sample(nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	alice    = selfservice.Identity{LastName: "Liddell", TaxIDLast4: "0001", DateOfBirth: "1961-05-04"}
	jane     = selfservice.Identity{LastName: "Bingley", TaxIDLast4: "0005", DateOfBirth: "1975-01-28"}
	charles  = selfservice.Identity{LastName: "Bingley", TaxIDLast4: "0006", DateOfBirth: "1972-09-29"}
	zoe      = selfservice.Identity{LastName: "Ångström", TaxIDLast4: "0011", DateOfBirth: "1990-02-28"}
	gatsby   = selfservice.Identity{LastName: "Gatsby", TaxIDLast4: "0007", DateOfBirth: "1922-04-10"}
	golightl = selfservice.Identity{LastName: "Golightly", TaxIDLast4: "0008", DateOfBirth: "1958-10-05"}
)

func with(id selfservice.Identity, f func(*selfservice.Identity)) selfservice.Identity {
	f(&id)
	return id
}

func TestVerify(t *testing.T) {
	d := sampleDir(t)
	tests := []struct {
		name     string
		id       selfservice.Identity
		number   string
		customer string // "" for ErrNoMatch
		first    selfservice.Account
	}{
		{"right identity and account", alice, "1000000001", "c1001", selfservice.Account{Kind: "account", Number: "1000000001", Product: "savings", Status: "open"}},
		{"right identity and second account, which comes first", alice, "1FAKE000000000001", "c1001",
			selfservice.Account{Kind: "vehicle", Number: "1FAKE000000000001", Product: "carloans", Status: "open"}},
		{"VIN in lower case with dashes and spaces", alice, " 1fake-0000 0000-0001 ", "c1001",
			selfservice.Account{Kind: "vehicle", Number: "1FAKE000000000001", Product: "carloans", Status: "open"}},
		{"card number without the file's spaces", zoe, "4000000000000011", "c1011", selfservice.Account{Kind: "card", Number: "4000000000000011", Product: "cards", Status: "open"}},
		{"card number with spaces", zoe, "4000 0000 0000 0011", "c1011", selfservice.Account{Kind: "card", Number: "4000000000000011", Product: "cards", Status: "open"}},
		{"last name in upper case", with(alice, func(i *selfservice.Identity) { i.LastName = "LIDDELL" }), "1000000001", "c1001",
			selfservice.Account{Kind: "account", Number: "1000000001", Product: "savings", Status: "open"}},
		{"last name in mixed case with spaces around", with(alice, func(i *selfservice.Identity) { i.LastName = "  lIdDeLl\t" }), "1000000001", "c1001",
			selfservice.Account{Kind: "account", Number: "1000000001", Product: "savings", Status: "open"}},
		{"last name decomposed (NFD)", with(zoe, func(i *selfservice.Identity) { i.LastName = norm.NFD.String("Ångström") }), "1000000011", "c1011",
			selfservice.Account{Kind: "account", Number: "1000000011", Product: "savings", Status: "open"}},
		{"last name decomposed and upper case", with(zoe, func(i *selfservice.Identity) { i.LastName = norm.NFD.String("ÅNGSTRÖM") }), "1000000011", "c1011",
			selfservice.Account{Kind: "account", Number: "1000000011", Product: "savings", Status: "open"}},
		{"last 4 and date with spaces around", with(alice, func(i *selfservice.Identity) { i.TaxIDLast4, i.DateOfBirth = " 0001 ", " 1961-05-04 " }), "1000000001", "c1001",
			selfservice.Account{Kind: "account", Number: "1000000001", Product: "savings", Status: "open"}},
		{"joint owner one", jane, "2000000056", "c1005", selfservice.Account{Kind: "account", Number: "2000000056", Product: "brokerage", Status: "open"}},
		{"joint owner two", charles, "2000-0000-56", "c1006", selfservice.Account{Kind: "account", Number: "2000000056", Product: "brokerage", Status: "open"}},
		{"paid-in-full loan is found, with its status", gatsby, "1FAKE000000000007", "c1007",
			selfservice.Account{Kind: "vehicle", Number: "1FAKE000000000007", Product: "carloans", Status: "paid_in_full"}},
		{"returned lease", golightl, "1fake000000000008", "c1008",
			selfservice.Account{Kind: "vehicle", Number: "1FAKE000000000008", Product: "carloans", Status: "lease_returned"}},

		{"wrong last name", with(alice, func(i *selfservice.Identity) { i.LastName = "Lidell" }), "1000000001", "", selfservice.Account{}},
		{"wrong last 4", with(alice, func(i *selfservice.Identity) { i.TaxIDLast4 = "0002" }), "1000000001", "", selfservice.Account{}},
		{"wrong date of birth", with(alice, func(i *selfservice.Identity) { i.DateOfBirth = "1961-04-05" }), "1000000001", "", selfservice.Account{}},
		{"date of birth as the pages show it", with(alice, func(i *selfservice.Identity) { i.DateOfBirth = "05/04/1961" }), "1000000001", "", selfservice.Account{}},
		{"wrong account number", alice, "1000000002", "", selfservice.Account{}},
		{"another customer's account", alice, "2000000056", "", selfservice.Account{}},
		{"joint owner's name with the other's last 4", with(jane, func(i *selfservice.Identity) { i.TaxIDLast4 = "0006" }), "2000000056", "", selfservice.Account{}},
		{"empty number", alice, "", "", selfservice.Account{}},
		{"empty identity", selfservice.Identity{}, "1000000001", "", selfservice.Account{}},
		{"prefix of the account number", alice, "100000000", "", selfservice.Account{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := d.Verify(t.Context(), tc.id, tc.number)
			if tc.customer == "" {
				if !errors.Is(err, selfservice.ErrNoMatch) {
					t.Fatalf("Verify: %+v, %v; want ErrNoMatch", c, err)
				}
				if c.ID != "" || c.Accounts != nil {
					t.Errorf("no match returned a customer: %+v", c)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.ID != tc.customer || len(c.Accounts) == 0 || c.Accounts[0] != tc.first {
				t.Errorf("Verify = %+v, want customer %s with %+v first", c, tc.customer, tc.first)
			}
		})
	}
}

func TestVerifyKeepsTheOtherAccounts(t *testing.T) {
	d := sampleDir(t)
	c, err := d.Verify(t.Context(), alice, "1FAKE000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Accounts) != 2 || c.Accounts[1].Number != "1000000001" || c.Email != "alice@example.com" {
		t.Errorf("Verify = %+v, want both of alice's accounts, the vehicle first", c)
	}
}

func TestIdentify(t *testing.T) {
	d := sampleDir(t)
	tests := []struct {
		name     string
		id       selfservice.Identity
		customer string
	}{
		{"alice", alice, "c1001"},
		{"alice in upper case", with(alice, func(i *selfservice.Identity) { i.LastName = " LIDDELL " }), "c1001"},
		{"joint owner one", jane, "c1005"},
		{"joint owner two", charles, "c1006"},
		{"decomposed name", with(zoe, func(i *selfservice.Identity) { i.LastName = norm.NFD.String(i.LastName) }), "c1011"},
		{"wrong last name", with(alice, func(i *selfservice.Identity) { i.LastName = "Cratchit" }), ""},
		{"wrong last 4", with(alice, func(i *selfservice.Identity) { i.TaxIDLast4 = "1000" }), ""},
		{"wrong date of birth", with(alice, func(i *selfservice.Identity) { i.DateOfBirth = "1961-05-05" }), ""},
		{"another customer's last 4", with(jane, func(i *selfservice.Identity) { i.TaxIDLast4 = charles.TaxIDLast4 }), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := d.Identify(t.Context(), tc.id)
			if tc.customer == "" {
				if !errors.Is(err, selfservice.ErrNoMatch) || c.ID != "" {
					t.Fatalf("Identify: %+v, %v; want ErrNoMatch", c, err)
				}
				return
			}
			if err != nil || c.ID != tc.customer {
				t.Fatalf("Identify: %+v, %v; want %s", c, err, tc.customer)
			}
		})
	}
}

func TestCustomer(t *testing.T) {
	d := sampleDir(t)
	c, err := d.Customer(t.Context(), "c1009")
	if err != nil {
		t.Fatal(err)
	}
	want := selfservice.Account{Kind: "card", Number: "4000000000000009", Product: "cards", Status: "closed"}
	if c.ID != "c1009" || len(c.Accounts) != 1 || c.Accounts[0] != want {
		t.Errorf("Customer(c1009) = %+v", c)
	}
	for _, id := range []string{"", "c9999", "C1009", " c1009"} {
		if _, err := d.Customer(t.Context(), id); !errors.Is(err, selfservice.ErrNoMatch) {
			t.Errorf("Customer(%q): %v, want ErrNoMatch", id, err)
		}
	}
}

func TestResultsAreCopies(t *testing.T) {
	d := sampleDir(t)
	c, err := d.Customer(t.Context(), "c1001")
	if err != nil {
		t.Fatal(err)
	}
	c.Accounts[0].Status = "closed"
	c.Accounts = append(c.Accounts[:0], selfservice.Account{})
	again, err := d.Verify(t.Context(), alice, "1000000001")
	if err != nil {
		t.Fatal(err)
	}
	if again.Accounts[0].Status != "open" || len(again.Accounts) != 2 {
		t.Errorf("changing a result changed the directory: %+v", again)
	}
}

func TestCancelledContext(t *testing.T) {
	d := sampleDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.Verify(ctx, alice, "1000000001"); err == nil || errors.Is(err, selfservice.ErrNoMatch) {
		t.Errorf("Verify with a cancelled context: %v, want the context's error", err)
	}
	if _, err := d.Identify(ctx, alice); err == nil || errors.Is(err, selfservice.ErrNoMatch) {
		t.Errorf("Identify with a cancelled context: %v", err)
	}
	if _, err := d.Customer(ctx, "c1001"); err == nil || errors.Is(err, selfservice.ErrNoMatch) {
		t.Errorf("Customer with a cancelled context: %v", err)
	}
}

// TestVerifyDuringReload runs lookups from many goroutines while the file
// is rewritten and reloaded between two versions, with a broken version
// in between: every lookup sees one whole version (the account and its
// status agree), never an error. Run it with -race.
func TestVerifyDuringReload(t *testing.T) {
	version := func(number, status string) string {
		var b []byte
		b = append(b, `{"customers": [`...)
		for i := range 200 {
			if i > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `{"customer_id":"c%d","last_name":"Doe%d","tax_id_last4":"%04d","date_of_birth":"1950-01-01","accounts":[{"kind":"account","number":"%s%04d","product":"savings","status":"%s"}]}`,
				i, i, i, number, i, status)
		}
		return string(append(b, "]}"...))
	}
	versions := []string{version("1111", "open"), `{"customers": [`, version("2222", "closed")}
	path := writeFile(t, "c.json", versions[0])
	d, err := OpenFile(Config{File: path})
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 4 {
		wg.Go(func() {
			id := selfservice.Identity{LastName: fmt.Sprintf("doe%d", g*7), TaxIDLast4: fmt.Sprintf("%04d", g*7), DateOfBirth: "1950-01-01"}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				number, status := "1111", "open"
				if n%2 == 1 {
					number, status = "2222", "closed"
				}
				c, err := d.Verify(t.Context(), id, fmt.Sprintf("%s%04d", number, g*7))
				switch {
				case errors.Is(err, selfservice.ErrNoMatch):
				case err != nil:
					errs <- err
					return
				case c.Accounts[0].Status != status:
					errs <- fmt.Errorf("account %s has status %s, want %s: a mixed snapshot", c.Accounts[0].Number, c.Accounts[0].Status, status)
					return
				}
				if _, err := d.Customer(t.Context(), fmt.Sprintf("c%d", g*7)); err != nil {
					errs <- fmt.Errorf("Customer during reload: %w", err)
					return
				}
			}
		})
	}
	for i := range 30 {
		v := versions[i%len(versions)]
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		err := d.Reload()
		if broken := i%len(versions) == 1; broken != (err != nil) {
			t.Fatalf("reload %d (broken %v): %v", i, broken, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
