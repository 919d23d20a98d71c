package directory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/gateway/selfservice"
)

// writeFile writes content to name in a fresh directory, mode 0600, and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const csvHeader = "customer_id,last_name,tax_id_last4,date_of_birth,email,kind,number,product,status\n"

// sampleCSV is the sample's first six customers in the CSV format, with
// the columns in another order and the joint account on two rows.
const sampleCSV = `status,product,number,kind,customer_id,last_name,tax_id_last4,date_of_birth,email
open,savings,1000000001,account,c1001,Liddell,0001,1961-05-04,alice@example.com
open,carloans,1FAKE000000000001,vehicle,c1001,Liddell,0001,1961-05-04,alice@example.com
open,savings,1000000002,account,c1002,Cratchit,0002,1943-12-19,bob@example.com
open,carloans,1FAKE000000000003,vehicle,c1003,Danvers,0003,1968-03-15,carol@example.com
open,savings,1000000004,account,c1004,Gale,0004,1939-08-25,dorothy@example.com
open,brokerage,2000000056,account,c1005,Bingley,0005,1975-01-28,jane@example.com
open,brokerage,2000000056,account,c1006,Bingley,0006,1972-09-29,
`

func TestSampleMatchesTestdata(t *testing.T) {
	want, err := os.ReadFile("../../testdata/customers.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sample, want) {
		t.Fatal("plugins/directory/sample.json differs from testdata/customers.json; copy testdata/customers.json over it")
	}
	if _, err := Sample(nil); err != nil {
		t.Fatalf("the sample does not load: %v", err)
	}
}

func TestCSVAndJSONLoadAlike(t *testing.T) {
	csvDir, err := OpenFile(Config{File: writeFile(t, "customers.csv", sampleCSV)})
	if err != nil {
		t.Fatal(err)
	}
	jsonDir, err := Sample(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1001", "c1002", "c1003", "c1004", "c1005", "c1006"} {
		a, errA := csvDir.Customer(t.Context(), id)
		b, errB := jsonDir.Customer(t.Context(), id)
		if errA != nil || errB != nil {
			t.Fatalf("Customer(%s): csv %v, json %v", id, errA, errB)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("Customer(%s):\ncsv  %+v\njson %+v", id, a, b)
		}
		if a.LastName == "" {
			t.Errorf("Customer(%s) has no last name", id)
		}
	}
	if _, err := csvDir.Customer(t.Context(), "c1007"); !errors.Is(err, selfservice.ErrNoMatch) {
		t.Errorf("Customer(c1007) from the shorter CSV: %v, want ErrNoMatch", err)
	}
}

func TestLoadFormats(t *testing.T) {
	tests := []struct {
		name, file, content string
		customers           int
	}{
		{"json without email or accounts", "c.json", `{"customers":[{"customer_id":"a","last_name":"Doe","tax_id_last4":"0000","date_of_birth":"1950-01-01"}]}`, 1},
		{"json with null accounts", "c.json", `{"customers":[{"customer_id":"a","last_name":"Doe","tax_id_last4":"0000","date_of_birth":"1950-01-01","accounts":null}]}`, 1},
		{"upper-case extension", "C.JSON", `{"customers":[{"customer_id":"a","last_name":"Doe","tax_id_last4":"0000","date_of_birth":"1950-01-01"}]}`, 1},
		{"csv without the email column", "c.csv", "customer_id,last_name,tax_id_last4,date_of_birth,kind,number,product,status\na,Doe,0000,1950-01-01,account,12345678,savings,open\n", 1},
		{"csv with a byte order mark and CRLF", "c.csv", "\ufeff" + strings.ReplaceAll(csvHeader+"a,Doe,0000,1950-01-01,,account,12345678,savings,open\n", "\n", "\r\n"), 1},
		{"csv customer without accounts", "c.csv", csvHeader + "a,Doe,0000,1950-01-01,,,,,\nb,Roe,0001,1950-01-01,,card,4000000000000002,cards,open\n", 2},
		{"csv rows of one customer apart", "c.csv", csvHeader + "a,Doe,0000,1950-01-01,,account,1111,savings,open\nb,Roe,0001,1950-01-01,,account,2222,savings,open\na,DOE,0000,1950-01-01,,account,3333,brokerage,open\n", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := OpenFile(Config{File: writeFile(t, tc.file, tc.content)})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(f.cur.Load().entries); n != tc.customers {
				t.Errorf("loaded %d customers, want %d", n, tc.customers)
			}
		})
	}
}

// rec is a valid JSON customer record with fields replaced.
func rec(fields ...string) string {
	m := map[string]string{
		"customer_id": `"a"`, "last_name": `"Doe"`, "tax_id_last4": `"0000"`, "date_of_birth": `"1950-01-01"`,
		"accounts": `[{"kind":"account","number":"12345678","product":"savings","status":"open"}]`,
	}
	for i := 0; i+1 < len(fields); i += 2 {
		m[fields[i]] = fields[i+1]
	}
	var parts []string
	for _, k := range []string{"customer_id", "last_name", "tax_id_last4", "date_of_birth", "email", "accounts"} {
		if v, ok := m[k]; ok && v != "" {
			parts = append(parts, `"`+k+`":`+v)
		}
		delete(m, k)
	}
	for k, v := range m { // fields the format does not have
		parts = append(parts, `"`+k+`":`+v)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func acct(kind, number, product, status string) string {
	return `[{"kind":"` + kind + `","number":"` + number + `","product":"` + product + `","status":"` + status + `"}]`
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                []string // each problem, in order
	}{
		{"json syntax", "c.json", "{\"customers\": [\n  {\"customer_id\": \"a\",,}\n]}", []string{"c.json:2: invalid JSON: invalid character ',' looking for beginning of object key string"}},
		{"json truncated", "c.json", `{"customers": [` + rec(), []string{"c.json:1: invalid JSON: unexpected end of file"}},
		{"json not an object", "c.json", `[` + rec() + `]`, []string{`c.json:1: the file must be a JSON object like {"customers": [...]}`}},
		{"json customers not an array", "c.json", `{"customers": {}}`, []string{`c.json:1: "customers" must be an array of customer records`}},
		{"json unknown top-level key", "c.json", "{\n\"customers\": [],\n\"users\": []}", []string{`c.json:3: unexpected key "users": the file holds one key, "customers"`}},
		{"json no customers key", "c.json", `{}`, []string{`c.json:1: the file has no "customers" key`}},
		{"json data after the object", "c.json", `{"customers":[` + rec() + `]} {}`, []string{"c.json:1: unexpected data after the file's object"}},
		{"json unknown field", "c.json", "{\"customers\": [\n" + rec() + ",\n" + rec("customer_id", `"b"`, "tax_id_last4", `"0001"`, "ssn", `"x"`) + "]}",
			[]string{`c.json:3: customers[1]: unknown field "ssn"`}},
		{"json wrong type", "c.json", `{"customers": [` + rec("tax_id_last4", `1234`) + `]}`,
			[]string{`c.json:1: customers[0]: field "tax_id_last4" has the wrong type (number)`}},
		{"no customers", "c.json", `{"customers": []}`, []string{"c.json: no customers"}},
		{"missing customer id", "c.json", `{"customers": [` + rec("customer_id", `""`) + `]}`, []string{"c.json:1: customers[0]: customer_id is required"}},
		{"spaces around the customer id", "c.json", `{"customers": [` + rec("customer_id", `" a"`) + `]}`,
			[]string{`c.json:1: customers[0]: customer_id " a" has surrounding spaces or control characters`}},
		{"missing last name", "c.json", `{"customers": [` + rec("last_name", `"  "`) + `]}`, []string{"c.json:1: customers[0]: last_name is required"}},
		{"last 4 of three digits", "c.json", `{"customers": [` + rec("tax_id_last4", `"123"`) + `]}`, []string{"c.json:1: customers[0]: tax_id_last4 must be exactly 4 digits"}},
		{"last 4 with a letter", "c.json", `{"customers": [` + rec("tax_id_last4", `"12a4"`) + `]}`, []string{"c.json:1: customers[0]: tax_id_last4 must be exactly 4 digits"}},
		{"date written mm/dd/yyyy", "c.json", `{"customers": [` + rec("date_of_birth", `"01/02/1950"`) + `]}`, []string{"c.json:1: customers[0]: date_of_birth must be a date written yyyy-mm-dd"}},
		{"date that does not exist", "c.json", `{"customers": [` + rec("date_of_birth", `"1950-02-30"`) + `]}`, []string{"c.json:1: customers[0]: date_of_birth must be a date written yyyy-mm-dd"}},
		{"bad email", "c.json", `{"customers": [` + rec("email", `"Jo <jo@example.com>"`) + `]}`, []string{"c.json:1: customers[0]: email is not a plain email address (like name@example.com)"}},
		{"unknown kind", "c.json", `{"customers": [` + rec("accounts", acct("truck", "12345678", "savings", "open")) + `]}`,
			[]string{`c.json:1: customers[0].accounts[0]: kind "truck" is not one of account, vehicle, card`}},
		{"unknown status", "c.json", `{"customers": [` + rec("accounts", acct("account", "12345678", "savings", "frozen")) + `]}`,
			[]string{`c.json:1: customers[0].accounts[0]: status "frozen" is not one of open, paid_in_full, lease_returned, closed, cancelled`}},
		{"missing number", "c.json", `{"customers": [` + rec("accounts", acct("account", " - ", "savings", "open")) + `]}`,
			[]string{"c.json:1: customers[0].accounts[0]: number is required"}},
		{"number with punctuation", "c.json", `{"customers": [` + rec("accounts", acct("account", "1234.5678", "savings", "open")) + `]}`,
			[]string{"c.json:1: customers[0].accounts[0]: number must be letters and digits (spaces and dashes are ignored)"}},
		{"short account number", "c.json", `{"customers": [` + rec("accounts", acct("account", "123", "savings", "open")) + `]}`,
			[]string{"c.json:1: customers[0].accounts[0]: an account number must be 4 to 34 letters and digits"}},
		{"VIN with an O", "c.json", `{"customers": [` + rec("accounts", acct("vehicle", "1FAKEO00000000001", "carloans", "open")) + `]}`,
			[]string{"c.json:1: customers[0].accounts[0]: a vehicle's number must be a VIN: 17 letters and digits, without I, O or Q"}},
		{"VIN of 16 characters", "c.json", `{"customers": [` + rec("accounts", acct("vehicle", "1FAKE00000000001", "carloans", "open")) + `]}`,
			[]string{"c.json:1: customers[0].accounts[0]: a vehicle's number must be a VIN: 17 letters and digits, without I, O or Q"}},
		{"card number with a letter", "c.json", `{"customers": [` + rec("accounts", acct("card", "400000000000000A", "cards", "open")) + `]}`,
			[]string{"c.json:1: customers[0].accounts[0]: a card number must be 12 to 19 digits"}},
		{"missing product", "c.json", `{"customers": [` + rec("accounts", acct("account", "12345678", "", "open")) + `]}`,
			[]string{"c.json:1: customers[0].accounts[0]: product is required"}},
		{"product not a route name", "c.json", `{"customers": [` + rec("accounts", acct("account", "12345678", "Auto Loan", "open")) + `]}`,
			[]string{`c.json:1: customers[0].accounts[0]: product "Auto Loan" must be a route name: lower-case letters, digits, _ and -`}},
		{"duplicate customer id", "c.json", "{\"customers\": [\n" + rec() + ",\n" + rec("tax_id_last4", `"0001"`, "accounts", acct("account", "87654321", "savings", "open")) + "]}",
			[]string{`c.json:3: customers[1]: customer_id "a" is already used at c.json:2: customers[0]`}},
		{"same identity twice", "c.json", "{\"customers\": [\n" + rec() + ",\n" + rec("customer_id", `"b"`, "last_name", `" DOE "`, "accounts", acct("account", "87654321", "savings", "open")) + "]}",
			[]string{`c.json:3: customers[1]: customer "b" has the same last_name, tax_id_last4 and date_of_birth as customer "a" (c.json:2: customers[0]): a lookup could not tell them apart`}},
		{"one customer lists an account twice", "c.json", `{"customers": [` + rec("accounts",
			`[{"kind":"account","number":"1234-5678","product":"savings","status":"open"},{"kind":"account","number":"12345678","product":"savings","status":"open"}]`) + `]}`,
			[]string{"c.json:1: customers[0].accounts[1]: the same number is listed twice for this customer (first at c.json:1: customers[0].accounts[0])"}},
		{"two customers hold one number differently", "c.json", "{\"customers\": [\n" + rec() + ",\n" +
			rec("customer_id", `"b"`, "tax_id_last4", `"0001"`, "accounts", acct("account", "12345678", "brokerage", "open")) + "]}",
			[]string{`c.json:3: customers[1].accounts[0]: the number is also held by customer "a" (c.json:2: customers[0].accounts[0]) with a different kind, product or status; joint owners must list the account alike`}},
		{"every problem at once", "c.json", "{\"customers\": [\n" + rec("tax_id_last4", `"1"`, "date_of_birth", `"1950-13-01"`) + ",\n" +
			rec("customer_id", `"b"`, "last_name", `""`, "accounts", acct("card", "12", "cards", "lost")) + "]}",
			[]string{
				"c.json:2: customers[0]: tax_id_last4 must be exactly 4 digits",
				"c.json:2: customers[0]: date_of_birth must be a date written yyyy-mm-dd",
				"c.json:3: customers[1]: last_name is required",
				"c.json:3: customers[1].accounts[0]: a card number must be 12 to 19 digits",
				`c.json:3: customers[1].accounts[0]: status "lost" is not one of open, paid_in_full, lease_returned, closed, cancelled`,
			}},

		{"csv empty", "c.csv", "", []string{"c.csv:1: the file is empty; it needs a header row: customer_id,last_name,tax_id_last4,date_of_birth,email,kind,number,product,status"}},
		{"csv no header", "c.csv", "a,Doe\n", []string{
			`c.csv:1: header: unknown column "a" (the columns are customer_id,last_name,tax_id_last4,date_of_birth,email,kind,number,product,status)`,
			`c.csv:1: header: unknown column "Doe" (the columns are customer_id,last_name,tax_id_last4,date_of_birth,email,kind,number,product,status)`,
			`c.csv:1: header: missing column "customer_id"`,
			`c.csv:1: header: missing column "last_name"`,
			`c.csv:1: header: missing column "tax_id_last4"`,
			`c.csv:1: header: missing column "date_of_birth"`,
			`c.csv:1: header: missing column "kind"`,
			`c.csv:1: header: missing column "number"`,
			`c.csv:1: header: missing column "product"`,
			`c.csv:1: header: missing column "status"`,
		}},
		{"csv missing column", "c.csv", "customer_id,last_name,tax_id_last4,kind,number,product,status\na,Doe,0000,account,12345678,savings,open\n",
			[]string{`c.csv:1: header: missing column "date_of_birth"`}},
		{"csv duplicate column", "c.csv", "customer_id,last_name,last_name,tax_id_last4,date_of_birth,kind,number,product,status\n",
			[]string{`c.csv:1: header: column "last_name" appears twice`}},
		{"csv wrong field count", "c.csv", csvHeader + "a,Doe,0000,1950-01-01,,account,12345678,savings\nb,Roe,0001,1950-01-01,,account,87654321,savings,open\n",
			[]string{"c.csv:2: invalid CSV: wrong number of fields"}},
		{"csv bad quoting", "c.csv", csvHeader + "a,\"Doe,0000,1950-01-01,,account,12345678,savings,open\n",
			[]string{`c.csv:2: invalid CSV: extraneous or missing " in quoted-field`}},
		{"csv repeated customer columns differ", "c.csv", csvHeader + "a,Doe,0000,1950-01-01,,account,1111,savings,open\na,Doe,0000,1950-01-02,,account,2222,savings,open\n",
			[]string{`c.csv:3: customer "a": date_of_birth differs from c.csv:2 (repeated customer columns must match)`}},
		{"csv field problems name their line", "c.csv", csvHeader + "a,Doe,0000,1950-01-01,,account,1111,savings,open\nb,Roe,12345,1950-01-01,,vehicle,1111,carloans,open\n",
			[]string{
				"c.csv:3: tax_id_last4 must be exactly 4 digits",
				"c.csv:3: a vehicle's number must be a VIN: 17 letters and digits, without I, O or Q",
				`c.csv:3: the number is also held by customer "a" (c.csv:2) with a different kind, product or status; joint owners must list the account alike`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenFile(Config{File: writeFile(t, tc.file, tc.content)})
			le, ok := errors.AsType[*LoadError](err)
			if !ok {
				t.Fatalf("OpenFile: %v, want a *LoadError", err)
			}
			got := le.Problems
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, p := range got {
				if !strings.HasPrefix(p, tc.file) {
					t.Errorf("problem %q does not name the file", p)
				}
			}
		})
	}
}

func TestLoadProblemsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(csvHeader)
	for i := range 80 {
		fmt.Fprintf(&b, "c%d,Doe,bad,1950-01-01,,account,%08d,savings,open\n", i, i)
	}
	_, err := OpenFile(Config{File: writeFile(t, "c.csv", b.String())})
	le, ok := errors.AsType[*LoadError](err)
	if !ok {
		t.Fatalf("OpenFile: %v", err)
	}
	if len(le.Problems) != maxProblems+1 || le.Problems[maxProblems] != "... and 30 more" {
		t.Errorf("%d problems, last %q", len(le.Problems), le.Problems[len(le.Problems)-1])
	}
}

func TestLoadProblemsQuoteNoSecret(t *testing.T) {
	content := `{"customers": [` + rec("tax_id_last4", `"98765"`, "date_of_birth", `"31/12/1957"`,
		"accounts", acct("vehicle", "5550001112223334", "carloans", "open")) + `]}`
	_, err := OpenFile(Config{File: writeFile(t, "c.json", content)})
	if err == nil {
		t.Fatal("OpenFile accepted a bad file")
	}
	for _, secret := range []string{"98765", "31/12/1957", "5550001112223334"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error quotes %q: %v", secret, err)
		}
	}
}

func TestOpenFileRefuses(t *testing.T) {
	good := writeFile(t, "c.json", `{"customers": [`+rec()+`]}`)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no file", Config{}, "file is required"},
		{"unknown extension", Config{File: writeFile(t, "c.txt", "")}, "must end in .json or .csv"},
		{"missing file", Config{File: filepath.Join(t.TempDir(), "none.json")}, "no such file"},
		{"http settings with a file", Config{File: good, TokenFile: "t"}, "are for the HTTP directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenFile(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenFile: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	good := writeFile(t, "c.json", `{"customers": [`+rec()+`]}`)
	if d, err := Open(Config{File: good}); err != nil {
		t.Errorf("Open(file): %v", err)
	} else if _, ok := d.(Reloader); !ok {
		t.Errorf("Open(file) returned %T, which is no Reloader", d)
	}
	for _, cfg := range []Config{{}, {File: good, URL: "https://customers.example"}} {
		if _, err := Open(cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestReloadKeepsPreviousOnError(t *testing.T) {
	path := writeFile(t, "c.json", `{"customers": [`+rec()+`]}`)
	f, err := OpenFile(Config{File: path})
	if err != nil {
		t.Fatal(err)
	}
	doe := selfservice.Identity{LastName: "Doe", TaxIDLast4: "0000", DateOfBirth: "1950-01-01"}
	roe := selfservice.Identity{LastName: "Roe", TaxIDLast4: "0001", DateOfBirth: "1951-01-01"}

	for _, bad := range []string{`{"customers": [`, `{"customers": [` + rec("tax_id_last4", `"x"`) + `]}`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := f.Reload(); err == nil {
			t.Fatalf("Reload accepted %s", bad)
		}
		if _, err := f.Verify(t.Context(), doe, "12345678"); err != nil {
			t.Fatalf("after a failed reload: %v, want the previous records", err)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}

	if err := os.WriteFile(path, []byte(`{"customers": [`+rec("last_name", `"Roe"`, "tax_id_last4", `"0001"`, "date_of_birth", `"1951-01-01"`)+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Verify(t.Context(), doe, "12345678"); !errors.Is(err, selfservice.ErrNoMatch) {
		t.Errorf("old identity after reload: %v, want ErrNoMatch", err)
	}
	if _, err := f.Verify(t.Context(), roe, "12345678"); err != nil {
		t.Errorf("new identity after reload: %v", err)
	}
}
