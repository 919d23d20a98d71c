// Package geoip tells the gateway whether a client address belongs to an
// anonymizer (anonymous VPN, Tor exit node, public or residential proxy,
// hosting provider) using a MaxMind GeoIP2 Anonymous-IP database, and
// optionally which country it is in using a GeoIP2 or GeoLite2 Country (or
// City) database.
//
// Databases are read into memory, verified, and swapped atomically when the
// files change, so lookups never wait for a reload and a broken update never
// replaces a working database. Answers are cached per address; the cache is
// emptied whenever a new database is loaded.
package geoip

//go:generate go run ../../testdata/geoip/gen -out ../../testdata/geoip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/portcullis/portcullis/policies"
)

const (
	// DefaultCacheSize is the number of addresses cached when
	// Config.CacheSize is zero.
	DefaultCacheSize = 16384
	// DefaultWatchInterval is how often Watch looks at the files when
	// given a non-positive interval.
	DefaultWatchInterval = time.Minute
)

var (
	// ErrNotConfigured is returned by Lookup when no Anonymous-IP database
	// is configured (or the Reader is nil). The facts it returns then have
	// Checked=false, which policies treat as "unknown".
	ErrNotConfigured = errors.New("geoip: no anonymous-ip database configured")
	// ErrClosed is returned by Lookup and Reload after Close.
	ErrClosed = errors.New("geoip: reader closed")
)

// Config says which databases to load.
type Config struct {
	// AnonymousIPPath is a GeoIP2 Anonymous-IP database (.mmdb). Empty
	// means none: Lookup then returns Checked=false with ErrNotConfigured,
	// and it is up to the gateway whether that is acceptable.
	AnonymousIPPath string
	// CountryPath is an optional GeoIP2/GeoLite2 Country or City database
	// used to fill IPFacts.Country.
	CountryPath string
	// CacheSize is how many addresses' facts are cached: zero means
	// DefaultCacheSize, negative disables the cache.
	CacheSize int
	// Logger receives reload events and errors; nil discards them.
	Logger *slog.Logger
}

// Reader answers Lookup from the loaded databases. It is safe for
// concurrent use; Reload and Watch may run while lookups are served.
type Reader struct {
	cfg   Config
	log   *slog.Logger
	dbs   atomic.Pointer[databases] // nil after Close
	cache *lru.Cache[netip.Addr, cached]
	done  chan struct{}
	close sync.Once

	mu   sync.Mutex // serializes loads; guards seen
	seen [2]stamp   // files as last read (or attempted), for Watch
}

// databases is one consistent generation of loaded files.
type databases struct {
	anon    *maxminddb.Reader // nil when not configured
	country *maxminddb.Reader // nil when not configured
}

// cached remembers which generation produced the facts, so an answer
// computed from a database that has since been replaced is never served.
type cached struct {
	dbs   *databases
	facts policies.IPFacts
}

// stamp identifies a version of a file cheaply.
type stamp struct {
	modTime int64 // Unix nanoseconds
	size    int64
	missing bool
}

// Open loads the configured databases. A missing, corrupt or wrong-type
// file is an error. With neither path set it returns a Reader whose
// Lookup always reports ErrNotConfigured.
func Open(cfg Config) (*Reader, error) {
	r := &Reader{
		cfg:  cfg,
		log:  cfg.Logger,
		done: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		c, err := lru.New[netip.Addr, cached](size)
		if err != nil {
			return nil, fmt.Errorf("geoip: open: %w", err)
		}
		r.cache = c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	dbs, err := r.load()
	if err != nil {
		return nil, err
	}
	r.dbs.Store(dbs)
	return r, nil
}

// Lookup returns what the databases say about addr. An address the
// Anonymous-IP database does not list is Checked=true and clean.
// IPv4-mapped IPv6 addresses are looked up as IPv4.
//
// When no Anonymous-IP database is configured, or r is nil, Lookup
// returns Checked=false (with Country filled when a country database is
// configured) and ErrNotConfigured. Any other error also comes with
// Checked=false. Lookup does no I/O and never blocks on a reload.
func (r *Reader) Lookup(ctx context.Context, addr netip.Addr) (policies.IPFacts, error) {
	if r == nil {
		return policies.IPFacts{}, ErrNotConfigured
	}
	dbs := r.dbs.Load()
	if dbs == nil {
		return policies.IPFacts{}, ErrClosed
	}
	if !addr.IsValid() {
		return policies.IPFacts{}, errors.New("geoip: lookup: invalid address")
	}
	addr = addr.Unmap().WithZone("")

	if r.cache != nil {
		if c, ok := r.cache.Get(addr); ok && c.dbs == dbs {
			return c.facts, nil
		}
	}

	var facts policies.IPFacts
	if dbs.country != nil {
		var iso string
		if err := dbs.country.Lookup(addr).DecodePath(&iso, "country", "iso_code"); err != nil {
			return policies.IPFacts{}, fmt.Errorf("geoip: country lookup: %w", err)
		}
		facts.Country = iso
	}
	if dbs.anon == nil {
		return facts, ErrNotConfigured
	}
	var rec geoip2.AnonymousIP
	if err := dbs.anon.Lookup(addr).Decode(&rec); err != nil {
		return policies.IPFacts{}, fmt.Errorf("geoip: anonymous-ip lookup: %w", err)
	}
	facts.Checked = true
	facts.Anonymous = rec.IsAnonymous
	facts.AnonymousVPN = rec.IsAnonymousVPN
	facts.PublicProxy = rec.IsPublicProxy
	facts.TorExitNode = rec.IsTorExitNode
	facts.HostingProvider = rec.IsHostingProvider
	facts.ResidentialProxy = rec.IsResidentialProxy

	if r.cache != nil {
		r.cache.Add(addr, cached{dbs: dbs, facts: facts})
	}
	return facts, nil
}

// Reload reads the configured files again and, if all of them load and
// verify, swaps them in and empties the cache. On failure the databases
// already loaded keep serving, the error is logged and returned.
func (r *Reader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dbs.Load() == nil {
		return ErrClosed
	}
	dbs, err := r.load()
	if err != nil {
		r.log.Error("geoip reload failed, keeping the loaded database", "error", err)
		return err
	}
	r.dbs.Store(dbs)
	if r.cache != nil {
		r.cache.Purge()
	}
	return nil
}

// Watch checks the files' modification time and size every interval and
// calls Reload when either changed (a file replaced by rename counts). It
// blocks until ctx is done or the Reader is closed, so run it in its own
// goroutine. A change that fails to load is logged once and retried only
// when the file changes again.
func (r *Reader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-t.C:
			if r.changed() {
				_ = r.Reload() // logged by Reload
			}
		}
	}
}

// Close stops Watch and makes later lookups fail with ErrClosed. Lookups
// already running finish on the databases they started with.
func (r *Reader) Close() error {
	r.close.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		// The databases live in ordinary memory (not a mapping), so
		// dropping the pointer is enough; lookups in flight keep their
		// generation alive until they return.
		r.dbs.Store(nil)
		if r.cache != nil {
			r.cache.Purge()
		}
		close(r.done)
	})
	return nil
}

// changed reports whether a configured file differs from when it was last
// read.
func (r *Reader) changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, path := range r.paths() {
		if path != "" && statFile(path) != r.seen[i] {
			return true
		}
	}
	return false
}

func (r *Reader) paths() [2]string {
	return [2]string{r.cfg.AnonymousIPPath, r.cfg.CountryPath}
}

// load reads every configured file. r.mu must be held.
func (r *Reader) load() (*databases, error) {
	var (
		dbs  databases
		errs []error
	)
	for i, path := range r.paths() {
		if path == "" {
			continue
		}
		var (
			db    *maxminddb.Reader
			st    stamp
			err   error
			check func(string) bool
			kind  string
		)
		if i == 0 {
			kind, check = "anonymous-ip", isAnonymousIPType
		} else {
			kind, check = "country", isCountryType
		}
		db, st, err = openFile(path, kind, check)
		r.seen[i] = st
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.log.Info("geoip database loaded",
			"kind", kind,
			"path", path,
			"database_type", db.Metadata.DatabaseType,
			"build_time", db.Metadata.BuildTime().UTC())
		if i == 0 {
			dbs.anon = db
		} else {
			dbs.country = db
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &dbs, nil
}

// openFile reads and verifies one database. The stamp is taken before the
// read, so a file that changes while being read is seen as changed again.
func openFile(path, kind string, typeOK func(string) bool) (*maxminddb.Reader, stamp, error) {
	st := statFile(path)
	// Read into memory rather than mapping the file: an old generation can
	// then be dropped at any time without unmapping memory a concurrent
	// lookup still reads.
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, st, fmt.Errorf("geoip: open %s database: %w", kind, err)
	}
	db, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, st, fmt.Errorf("geoip: open %s database %s: %w", kind, path, err)
	}
	if err := db.Verify(); err != nil {
		return nil, st, fmt.Errorf("geoip: open %s database %s: corrupt: %w", kind, path, err)
	}
	if t := db.Metadata.DatabaseType; !typeOK(t) {
		return nil, st, fmt.Errorf("geoip: open %s database %s: unexpected database type %q", kind, path, t)
	}
	return db, st, nil
}

func statFile(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{missing: true}
	}
	return stamp{modTime: fi.ModTime().UnixNano(), size: fi.Size()}
}

// isAnonymousIPType accepts the Anonymous-IP database and Anonymous Plus,
// which carries the same fields.
func isAnonymousIPType(t string) bool {
	return t == "GeoIP2-Anonymous-IP" || t == "GeoIP-Anonymous-Plus"
}

// isCountryType accepts the databases whose records carry country.iso_code:
// Country, City and Enterprise editions from MaxMind and DB-IP.
func isCountryType(t string) bool {
	return strings.Contains(t, "Country") || strings.Contains(t, "City") || strings.Contains(t, "Enterprise")
}
