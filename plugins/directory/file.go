package directory

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/portcullis/portcullis/gateway/selfservice"
)

// File is a selfservice.Directory that holds the customer records of a
// JSON or CSV file in memory. The file is read once when opened and again
// on Reload; a reload that fails keeps the records already loaded. It is
// safe for concurrent use.
type File struct {
	name   string // the path, or the sample's name
	read   func() ([]byte, error)
	csv    bool
	logger *slog.Logger

	mu  sync.Mutex // serialises reloads
	cur atomic.Pointer[snapshot]
}

var _ selfservice.Directory = (*File)(nil)

// snapshot is one load of the file; it is never modified once published.
type snapshot struct {
	entries []entry
	byID    map[string]int
}

// entry is one customer: the record handed out (a copy of it) and the
// digests its identity and account numbers are compared by.
type entry struct {
	customer selfservice.Customer
	identity [sha256.Size]byte
	numbers  [][sha256.Size]byte // one per account, in customer.Accounts order
}

// OpenFile reads and checks the customer file cfg.File (".json" or
// ".csv", by its extension) and returns a directory serving it. Every
// problem in the file is reported at once, in a *LoadError.
func OpenFile(cfg Config) (*File, error) {
	if cfg.File == "" {
		return nil, errors.New("directory: file is required")
	}
	if cfg.URL != "" || cfg.TokenFile != "" || cfg.CAFile != "" || cfg.Timeout != 0 {
		return nil, errors.New("directory: url, token_file, ca_file and timeout are for the HTTP directory, not a file")
	}
	var isCSV bool
	switch strings.ToLower(filepath.Ext(cfg.File)) {
	case ".json":
	case ".csv":
		isCSV = true
	default:
		return nil, fmt.Errorf("directory: %s: the file name must end in .json or .csv, which says its format", cfg.File)
	}
	path := cfg.File
	f := newFile(path, isCSV, cfg.Logger, func() ([]byte, error) {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			cfg.logger().Warn("customer file is open to other users; it holds identity data",
				"path", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()), "fix", "chmod 600 "+path)
		}
		return os.ReadFile(path)
	})
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

func newFile(name string, isCSV bool, logger *slog.Logger, read func() ([]byte, error)) *File {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &File{name: name, read: read, csv: isCSV, logger: logger}
}

// Reload reads the file again and, when every record in it is valid,
// serves the new records; otherwise it returns the problems and keeps
// serving the previous records. Lookups running meanwhile see the old
// records or the new, never a mix.
func (f *File) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := f.read()
	if err != nil {
		return fmt.Errorf("directory: read customer file: %w", err)
	}
	s, err := f.parse(data)
	if err != nil {
		return err
	}
	f.cur.Store(s)
	accounts := 0
	for i := range s.entries {
		accounts += len(s.entries[i].numbers)
	}
	f.logger.Info("customer directory loaded", "path", f.name, "customers", len(s.entries), "accounts", accounts)
	return nil
}

// parse reads and checks data and builds the snapshot it describes.
func (f *File) parse(data []byte) (*snapshot, error) {
	name := filepath.Base(f.name)
	var recs []located
	var err error
	if f.csv {
		recs, err = parseCSV(name, data)
	} else {
		recs, err = parseJSON(name, data)
	}
	if err != nil {
		return nil, err
	}
	if err := check(name, recs); err != nil {
		return nil, err
	}
	return f.build(recs), nil
}

// build makes the snapshot of records that check accepted.
func (f *File) build(recs []located) *snapshot {
	s := &snapshot{entries: make([]entry, len(recs)), byID: make(map[string]int, len(recs))}
	for i := range recs {
		r := &recs[i].r
		e := entry{
			customer: customerOf(r),
			identity: identityDigest(r.LastName, r.TaxIDLast4, r.DateOfBirth),
			numbers:  make([][sha256.Size]byte, len(r.Accounts)),
		}
		for j := range r.Accounts {
			e.numbers[j] = numberDigest(r.Accounts[j].Number)
		}
		s.entries[i] = e
		s.byID[r.ID] = i
	}
	return s
}

// Verify returns the customer whose identity is id and who holds the
// account numbered number, that account first; selfservice.ErrNoMatch
// when there is none.
//
// It compares id and number with every record and every account, in
// constant time, whatever matches: the time it takes depends on the size
// of the file, not on whether, or in which part, the lookup failed.
func (f *File) Verify(ctx context.Context, id selfservice.Identity, number string) (selfservice.Customer, error) {
	if err := ctx.Err(); err != nil {
		return selfservice.Customer{}, fmt.Errorf("directory: verify: %w", err)
	}
	s := f.cur.Load()
	want := identityDigest(id.LastName, id.TaxIDLast4, id.DateOfBirth)
	num := numberDigest(number)
	found, at, acct := 0, 0, 0
	for i := range s.entries {
		e := &s.entries[i]
		same := subtle.ConstantTimeCompare(e.identity[:], want[:])
		holds, which := 0, 0
		for j := range e.numbers {
			eq := subtle.ConstantTimeCompare(e.numbers[j][:], num[:])
			which = subtle.ConstantTimeSelect(eq, j, which)
			holds |= eq
		}
		m := same & holds
		at = subtle.ConstantTimeSelect(m, i, at)
		acct = subtle.ConstantTimeSelect(m, which, acct)
		found |= m
	}
	// The copy is made whether or not anything matched, so a match costs
	// what a miss does.
	c := copyCustomer(&s.entries[at].customer, acct)
	if found == 0 {
		return selfservice.Customer{}, selfservice.ErrNoMatch
	}
	return c, nil
}

// Identify returns the customer whose identity is id; ErrNoMatch when
// there is none. Like Verify, it compares id with every record.
func (f *File) Identify(ctx context.Context, id selfservice.Identity) (selfservice.Customer, error) {
	if err := ctx.Err(); err != nil {
		return selfservice.Customer{}, fmt.Errorf("directory: identify: %w", err)
	}
	s := f.cur.Load()
	want := identityDigest(id.LastName, id.TaxIDLast4, id.DateOfBirth)
	found, at := 0, 0
	for i := range s.entries {
		m := subtle.ConstantTimeCompare(s.entries[i].identity[:], want[:])
		at = subtle.ConstantTimeSelect(m, i, at)
		found |= m
	}
	c := copyCustomer(&s.entries[at].customer, 0)
	if found == 0 {
		return selfservice.Customer{}, selfservice.ErrNoMatch
	}
	return c, nil
}

// Customer returns the record with customerID; ErrNoMatch when there is
// none. A customer ID is not an identity secret (it is what a profile
// records), so this is an ordinary lookup.
func (f *File) Customer(ctx context.Context, customerID string) (selfservice.Customer, error) {
	if err := ctx.Err(); err != nil {
		return selfservice.Customer{}, fmt.Errorf("directory: customer: %w", err)
	}
	s := f.cur.Load()
	i, ok := s.byID[customerID]
	if !ok {
		return selfservice.Customer{}, selfservice.ErrNoMatch
	}
	return copyCustomer(&s.entries[i].customer, 0), nil
}

// copyCustomer copies c, which is shared, with account first moved to the
// front and the others in file order.
func copyCustomer(c *selfservice.Customer, first int) selfservice.Customer {
	out := *c
	out.Accounts = make([]selfservice.Account, 0, len(c.Accounts))
	if first < len(c.Accounts) {
		out.Accounts = append(out.Accounts, c.Accounts[first])
	}
	for j := range c.Accounts {
		if j != first {
			out.Accounts = append(out.Accounts, c.Accounts[j])
		}
	}
	return out
}
