package directory

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// maxProblems bounds how many problems a LoadError lists, so that a file
// in the wrong format does not produce one message per line.
const maxProblems = 50

// LoadError lists every problem found in a customer file, each prefixed
// with the file name and line ("customers.csv:7: ...") and, for JSON, the
// record ("customers.json:12: customers[2].accounts[0]: ..."). No message
// quotes a last 4, a date of birth or an account number.
type LoadError struct {
	// Name is the file's name as given.
	Name string
	// Problems are the messages, in file order, at most maxProblems of
	// them followed by a count of the rest.
	Problems []string
}

// Error lists the problems one per line.
func (e *LoadError) Error() string {
	n := len(e.Problems)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	return fmt.Sprintf("directory: %s: %d problem%s:\n\t%s", e.Name, n, plural, strings.Join(e.Problems, "\n\t"))
}

// located is a record read from a file, with where it and each of its
// accounts were found.
type located struct {
	r         record
	at        string   // "name:line: customers[i]" or "name:line"
	accountAt []string // one per account
}

// problems collects load problems up to maxProblems.
type problems struct {
	list []string
	more int
}

func (p *problems) add(at, msg string) {
	if len(p.list) < maxProblems {
		p.list = append(p.list, at+": "+msg)
		return
	}
	p.more++
}

func (p *problems) err(name string) error {
	if len(p.list) == 0 {
		return nil
	}
	list := p.list
	if p.more > 0 {
		list = append(list, fmt.Sprintf("... and %d more", p.more))
	}
	return &LoadError{Name: name, Problems: list}
}

// parseJSON reads the JSON format: {"customers": [record, ...]}, unknown
// fields refused.
func parseJSON(name string, data []byte) ([]located, error) {
	var p problems
	fatal := func(off int64, msg string) error {
		p.add(fmt.Sprintf("%s:%d", name, lineAt(data, off)), msg)
		return p.err(name)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	syntax := func(err error) error {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return fatal(se.Offset, "invalid JSON: "+se.Error())
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fatal(int64(len(data)), "invalid JSON: unexpected end of file")
		}
		return fatal(dec.InputOffset(), "invalid JSON: "+err.Error())
	}
	expect := func(want json.Delim, what string) error {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return syntax(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != want {
			return fatal(off, what)
		}
		return nil
	}

	if err := expect('{', `the file must be a JSON object like {"customers": [...]}`); err != nil {
		return nil, err
	}
	var out []located
	seen := false
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		if key, _ := tok.(string); key != "customers" || seen {
			return nil, fatal(skipSpace(data, off), fmt.Sprintf(`unexpected key %q: the file holds one key, "customers"`, tok))
		}
		seen = true
		if err := expect('[', `"customers" must be an array of customer records`); err != nil {
			return nil, err
		}
		for i := 0; dec.More(); i++ {
			line := lineAt(data, skipSpace(data, dec.InputOffset()))
			l := located{at: fmt.Sprintf("%s:%d: customers[%d]", name, line, i)}
			if err := dec.Decode(&l.r); err != nil {
				if _, ok := errors.AsType[*json.SyntaxError](err); ok || errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, syntax(err)
				}
				// A field of the wrong type or an unknown field: the
				// decoder has read the whole record, so the rest can
				// still be checked.
				p.add(l.at, strings.TrimPrefix(jsonProblem(err).Error(), "json: "))
				continue
			}
			for j := range l.r.Accounts {
				l.accountAt = append(l.accountAt, fmt.Sprintf("%s.accounts[%d]", l.at, j))
			}
			out = append(out, l)
		}
		if err := expect(']', "expected the end of the customers array"); err != nil {
			return nil, err
		}
	}
	if err := expect('}', "expected the end of the file's object"); err != nil {
		return nil, err
	}
	if off := skipSpace(data, dec.InputOffset()); off < int64(len(data)) {
		return nil, fatal(off, "unexpected data after the file's object")
	}
	if !seen {
		return nil, fatal(0, `the file has no "customers" key`)
	}
	if err := p.err(name); err != nil {
		return nil, err
	}
	return out, nil
}

// csvColumns are the CSV format's columns; every one is required in the
// header except email.
var csvColumns = []string{"customer_id", "last_name", "tax_id_last4", "date_of_birth", "email", "kind", "number", "product", "status"}

// parseCSV reads the CSV format: a header row naming the columns (in any
// order), then one row per account with the customer's columns repeated.
// A row whose kind, number, product and status are all empty is a
// customer without accounts.
func parseCSV(name string, data []byte) ([]located, error) {
	var p problems
	cr := csv.NewReader(bytes.NewReader(data))
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			p.add(name+":1", "the file is empty; it needs a header row: "+strings.Join(csvColumns, ","))
		} else {
			p.add(name+":1", csvProblem(err))
		}
		return nil, p.err(name)
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		switch {
		case !slices.Contains(csvColumns, h):
			p.add(name+":1", fmt.Sprintf("header: unknown column %q (the columns are %s)", h, strings.Join(csvColumns, ",")))
		case hasKey(col, h):
			p.add(name+":1", fmt.Sprintf("header: column %q appears twice", h))
		default:
			col[h] = i
		}
	}
	for _, c := range csvColumns {
		if !hasKey(col, c) && c != "email" {
			p.add(name+":1", fmt.Sprintf("header: missing column %q", c))
		}
	}
	if err := p.err(name); err != nil {
		return nil, err
	}
	get := func(row []string, c string) string {
		if i, ok := col[c]; ok {
			return strings.TrimSpace(row[i])
		}
		return ""
	}

	var out []located
	byID := make(map[string]int)
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			pe, ok := errors.AsType[*csv.ParseError](err)
			if !ok {
				p.add(name, csvProblem(err))
				return nil, p.err(name)
			}
			p.add(fmt.Sprintf("%s:%d", name, pe.Line), csvProblem(err))
			if !errors.Is(err, csv.ErrFieldCount) {
				// After a quoting error the reader's position means
				// little: stop here.
				return nil, p.err(name)
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		at := fmt.Sprintf("%s:%d", name, line)
		r := record{
			ID: get(row, "customer_id"), LastName: get(row, "last_name"), TaxIDLast4: get(row, "tax_id_last4"),
			DateOfBirth: get(row, "date_of_birth"), Email: get(row, "email"),
		}
		a := accountRecord{Kind: get(row, "kind"), Number: get(row, "number"), Product: get(row, "product"), Status: get(row, "status")}
		noAccount := a == accountRecord{}
		i, ok := byID[r.ID]
		if !ok || r.ID == "" {
			i = len(out)
			byID[r.ID] = i
			out = append(out, located{r: r, at: at})
		} else if differs := sameCustomer(&out[i].r, &r); differs != "" {
			p.add(at, fmt.Sprintf("customer %q: %s differs from %s (repeated customer columns must match)", r.ID, differs, out[i].at))
		}
		if !noAccount {
			out[i].r.Accounts = append(out[i].r.Accounts, a)
			out[i].accountAt = append(out[i].accountAt, at)
		}
	}
	if err := p.err(name); err != nil {
		return nil, err
	}
	return out, nil
}

// sameCustomer names the first customer column in which a and b differ;
// "" when none does.
func sameCustomer(a, b *record) string {
	switch {
	case normalizeName(a.LastName) != normalizeName(b.LastName):
		return "last_name"
	case a.TaxIDLast4 != b.TaxIDLast4:
		return "tax_id_last4"
	case a.DateOfBirth != b.DateOfBirth:
		return "date_of_birth"
	case a.Email != b.Email:
		return "email"
	}
	return ""
}

// csvProblem is a CSV reader's error without its own position prefix (the
// caller gives file:line).
func csvProblem(err error) string {
	if pe, ok := errors.AsType[*csv.ParseError](err); ok {
		return "invalid CSV: " + pe.Err.Error()
	}
	return "invalid CSV: " + err.Error()
}

func hasKey(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

// skipSpace moves off past JSON white space and a separating comma or
// colon, to the start of the next token.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
		off++
	}
	return off
}

// check validates the records together and reports every problem: each
// record's fields, duplicate customer IDs, an account listed twice for one
// customer, an account number two customers hold differently (joint owners
// hold the same account, so they list it alike), and two customers with
// the same identity.
func check(name string, recs []located) error {
	var p problems
	if len(recs) == 0 {
		p.add(name, "no customers")
		return p.err(name)
	}
	type holder struct{ rec, acct int }
	ids := make(map[string]int, len(recs))
	numbers := make(map[string]holder)
	identities := make(map[[32]byte]int, len(recs))
	for i := range recs {
		l := &recs[i]
		for _, msg := range checkCustomer(&l.r) {
			p.add(l.at, msg)
		}
		if first, ok := ids[l.r.ID]; ok && l.r.ID != "" {
			p.add(l.at, fmt.Sprintf("customer_id %q is already used at %s", l.r.ID, recs[first].at))
		} else {
			ids[l.r.ID] = i
		}
		if d := identityDigest(l.r.LastName, l.r.TaxIDLast4, l.r.DateOfBirth); validIdentity(&l.r) {
			if first, ok := identities[d]; ok {
				p.add(l.at, fmt.Sprintf("customer %q has the same last_name, tax_id_last4 and date_of_birth as customer %q (%s): a lookup could not tell them apart",
					l.r.ID, recs[first].r.ID, recs[first].at))
			} else {
				identities[d] = i
			}
		}
		own := make(map[string]int, len(l.r.Accounts))
		for j := range l.r.Accounts {
			a := &l.r.Accounts[j]
			for _, msg := range checkAccount(a, true) {
				p.add(l.accountAt[j], msg)
			}
			n := NormalizeNumber(a.Number)
			if n == "" {
				continue
			}
			if first, ok := own[n]; ok {
				p.add(l.accountAt[j], "the same number is listed twice for this customer (first at "+l.accountAt[first]+")")
				continue
			}
			own[n] = j
			h, ok := numbers[n]
			if !ok {
				numbers[n] = holder{i, j}
				continue
			}
			if b := &recs[h.rec].r.Accounts[h.acct]; b.Kind != a.Kind || b.Product != a.Product || b.Status != a.Status {
				p.add(l.accountAt[j], fmt.Sprintf("the number is also held by customer %q (%s) with a different kind, product or status; joint owners must list the account alike",
					recs[h.rec].r.ID, recs[h.rec].accountAt[h.acct]))
			}
		}
	}
	return p.err(name)
}

// validIdentity reports whether r's identity fields passed their checks,
// so that only real identities are compared for duplicates.
func validIdentity(r *record) bool {
	return strings.TrimSpace(r.LastName) != "" && fourDigits(r.TaxIDLast4) && validDate(r.DateOfBirth)
}
