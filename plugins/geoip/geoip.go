// Package geoip tells the gateway whether a client address belongs to an
// anonymizer (anonymous VPN, Tor exit node, public or residential proxy,
// hosting provider) using a MaxMind GeoIP2 Anonymous-IP database, and
// optionally which country it is in using a GeoIP2 or GeoLite2 Country (or
// City) database.
//
// Databases are read into memory, verified, and swapped atomically when the
// files change, so lookups never wait for a reload and a broken update never
// replaces a working database. A file that passes the reader's own
// verification can still be damaged (a few flipped bytes in the search tree
// can turn every anonymizer in a range into a clean address), so a reload is
// also refused when its checksum file disagrees, when it changes the
// database type, goes back in time or loses half its search tree, or when
// it no longer flags the canary addresses the serving database flags; see
// Reload. Answers are cached per address; the cache is emptied whenever a
// new database is loaded.
package geoip

//go:generate go run ../../testdata/geoip/gen -out ../../testdata/geoip

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
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
	// ChecksumSuffix names the optional checksum file of a database: for
	// "GeoIP2-Anonymous-IP.mmdb" it is "GeoIP2-Anonymous-IP.mmdb.sha256",
	// holding the SHA-256 in hex as sha256sum writes it ("<hex>  <name>").
	ChecksumSuffix = ".sha256"

	// derivedCanaries is how many flagged networks of the serving
	// Anonymous-IP database are sampled as canaries for the next reload.
	derivedCanaries = 32
	// lostCanaryDivisor bounds how many derived canaries a reload may
	// stop flagging: at most one in lostCanaryDivisor (rounded down), so
	// that the day-to-day delisting of a network or two does not block
	// every update, while a damaged tree, which loses whole ranges, does.
	lostCanaryDivisor = 8
	// minNodeFraction: a reload whose search tree has fewer than
	// 1/minNodeFraction of the serving database's nodes is refused.
	minNodeFraction = 2
)

var (
	// ErrNotConfigured is returned by Lookup when no Anonymous-IP database
	// is configured (or the Reader is nil). The facts it returns then have
	// Checked=false, which policies treat as "unknown".
	ErrNotConfigured = errors.New("geoip: no anonymous-ip database configured")
	// ErrClosed is returned by Lookup and Reload after Close.
	ErrClosed = errors.New("geoip: reader closed")
	// ErrSuspectDatabase is wrapped by the errors of Open and Reload for a
	// file that reads and verifies but fails a sanity check: a checksum
	// mismatch, a canary answered differently, or (on reload) a changed
	// database type, an older build or a much smaller search tree.
	ErrSuspectDatabase = errors.New("geoip: database failed a sanity check")
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
	// Canaries are addresses whose Anonymous-IP answers every database
	// loaded (the first one included) must give exactly; a database that
	// does not is refused. Use addresses whose listing is stable, for
	// example known Tor exit nodes or VPN ranges of your own. Optional:
	// in addition, each Reload checks a sample of the networks the
	// serving database flags (see Reload).
	Canaries []Canary
	// Logger receives reload events and errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock for ReloadStats; nil means time.Now.
	Now func() time.Time
}

// Canary is an address and the flags the Anonymous-IP database must
// report for it.
type Canary struct {
	Addr  netip.Addr
	Flags Flags
}

// Flags are the Anonymous-IP database's answers for one address.
type Flags struct {
	Anonymous        bool
	AnonymousVPN     bool
	PublicProxy      bool
	TorExitNode      bool
	HostingProvider  bool
	ResidentialProxy bool
}

func (f Flags) any() bool {
	return f.Anonymous || f.AnonymousVPN || f.PublicProxy || f.TorExitNode || f.HostingProvider || f.ResidentialProxy
}

// ReloadStats counts reloads since Open. A non-zero Failed with a recent
// LastFailure means the files on disk are not what is serving.
type ReloadStats struct {
	// Succeeded counts reloads that replaced the databases.
	Succeeded uint64
	// Failed counts reloads that were refused (unreadable, corrupt or
	// suspect files); the previous databases kept serving.
	Failed uint64
	// LastFailure is when the latest refused reload happened, zero if
	// none did, and LastError why.
	LastFailure time.Time
	LastError   error
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

	now func() time.Time

	mu        sync.Mutex    // serializes loads; guards seen and firstType
	seen      [2]fileStamps // files as last read (or attempted), for Watch
	firstType [2]string     // database types of the first load

	statsMu sync.Mutex // guards stats
	stats   ReloadStats
}

// databases is one consistent generation of loaded files.
type databases struct {
	anon    *maxminddb.Reader // nil when not configured
	country *maxminddb.Reader // nil when not configured
	// canaries are flagged addresses sampled from anon, which the next
	// generation must still flag.
	canaries []Canary
}

// fileStamps are a database's stamp and its checksum file's.
type fileStamps struct {
	db, sum stamp
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
		now:  cfg.Now,
		done: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	for _, c := range cfg.Canaries {
		if !c.Addr.IsValid() {
			return nil, errors.New("geoip: open: invalid canary address")
		}
	}
	if len(cfg.Canaries) > 0 && cfg.AnonymousIPPath == "" {
		return nil, errors.New("geoip: open: canaries given without an anonymous-ip database")
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
	dbs, err := r.load(nil)
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
	f, err := anonymousFlags(dbs.anon.Lookup(addr))
	if err != nil {
		return policies.IPFacts{}, fmt.Errorf("geoip: anonymous-ip lookup: %w", err)
	}
	facts.Checked = true
	facts.Anonymous = f.Anonymous
	facts.AnonymousVPN = f.AnonymousVPN
	facts.PublicProxy = f.PublicProxy
	facts.TorExitNode = f.TorExitNode
	facts.HostingProvider = f.HostingProvider
	facts.ResidentialProxy = f.ResidentialProxy

	if r.cache != nil {
		r.cache.Add(addr, cached{dbs: dbs, facts: facts})
	}
	return facts, nil
}

// Reload reads the configured files again and, if all of them load, verify
// and pass the sanity checks, swaps them in and empties the cache. On
// failure the databases already loaded keep serving, the error is logged
// and returned, and ReloadStats counts it.
//
// The sanity checks, each against the database serving now, are: the
// checksum file (ChecksumSuffix), when there is one, matches; the database
// type is the one first loaded; the build time is not earlier; the search
// tree has at least half as many nodes; Config.Canaries get exactly their
// flags; and of the flagged networks sampled from the serving Anonymous-IP
// database (up to 32, spread over the address space) at most one in eight
// is no longer flagged. Such failures wrap ErrSuspectDatabase. To go back
// to an older or much smaller database deliberately, restart the gateway.
func (r *Reader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.dbs.Load()
	if prev == nil {
		return ErrClosed
	}
	dbs, err := r.load(prev)
	if err != nil {
		n := r.recordReload(err)
		r.log.Error("geoip reload failed, keeping the loaded database", "error", err, "failed_reloads", n)
		return err
	}
	r.dbs.Store(dbs)
	if r.cache != nil {
		r.cache.Purge()
	}
	r.recordReload(nil)
	return nil
}

// ReloadStats reports how many reloads succeeded and failed since Open,
// for metrics and health checks. It is safe to call at any time.
func (r *Reader) ReloadStats() ReloadStats {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	return r.stats
}

// recordReload counts a reload's outcome and returns the number of failed
// reloads so far.
func (r *Reader) recordReload(err error) uint64 {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	if err == nil {
		r.stats.Succeeded++
	} else {
		r.stats.Failed++
		r.stats.LastFailure = r.now()
		r.stats.LastError = err
	}
	return r.stats.Failed
}

// Watch checks the files' modification time and size, and their checksum
// files', every interval and calls Reload when any changed (a file
// replaced by rename counts). It
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

// changed reports whether a configured file, or its checksum file,
// differs from when it was last read. The checksum file counts so that a
// database refused because its new checksum file was not yet in place is
// tried again when it arrives.
func (r *Reader) changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, path := range r.paths() {
		if path != "" && statStamps(path) != r.seen[i] {
			return true
		}
	}
	return false
}

func (r *Reader) paths() [2]string {
	return [2]string{r.cfg.AnonymousIPPath, r.cfg.CountryPath}
}

// load reads every configured file and checks it against prev, the
// generation serving now (nil on the first load). It returns the new
// generation only when every file passes, logging each file it accepted;
// failures are the caller's to log. It sets r.seen. r.mu must be held.
func (r *Reader) load(prev *databases) (*databases, error) {
	var (
		dbs  databases
		errs []error
	)
	for i, path := range r.paths() {
		if path == "" {
			continue
		}
		kind, typeOK := "anonymous-ip", isAnonymousIPType
		var old *maxminddb.Reader
		if prev != nil {
			old = prev.anon
		}
		if i == 1 {
			kind, typeOK = "country", isCountryType
			if prev != nil {
				old = prev.country
			}
		}
		db, st, err := openFile(path, kind, typeOK)
		r.seen[i] = st
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if old != nil {
			err = checkUpdate(old.Metadata, db.Metadata, r.firstType[i])
		}
		if err == nil && i == 0 {
			err = checkCanaries(db, r.cfg.Canaries, prev)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("geoip: load %s database %s: %w", kind, path, err))
			continue
		}
		if i == 0 {
			dbs.anon = db
		} else {
			dbs.country = db
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if dbs.anon != nil {
		c, err := sampleCanaries(dbs.anon, derivedCanaries)
		if err != nil {
			return nil, fmt.Errorf("geoip: load anonymous-ip database %s: sample canaries: %w", r.cfg.AnonymousIPPath, err)
		}
		dbs.canaries = c
	}
	for i, db := range [2]*maxminddb.Reader{dbs.anon, dbs.country} {
		if db == nil {
			continue
		}
		if r.firstType[i] == "" {
			r.firstType[i] = db.Metadata.DatabaseType
		}
		r.log.Info("geoip database loaded",
			"kind", [2]string{"anonymous-ip", "country"}[i],
			"path", r.paths()[i],
			"database_type", db.Metadata.DatabaseType,
			"build_time", db.Metadata.BuildTime().UTC(),
			"node_count", db.Metadata.NodeCount)
	}
	return &dbs, nil
}

// openFile reads and verifies one database and compares it with its
// checksum file, if there is one. The stamps are taken before the reads,
// so a file that changes while being read is seen as changed again.
func openFile(path, kind string, typeOK func(string) bool) (*maxminddb.Reader, fileStamps, error) {
	st := statStamps(path)
	// Read into memory rather than mapping the file: an old generation can
	// then be dropped at any time without unmapping memory a concurrent
	// lookup still reads.
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, st, fmt.Errorf("geoip: open %s database: %w", kind, err)
	}
	if err := checkSum(path, b); err != nil {
		return nil, st, fmt.Errorf("geoip: open %s database %s: %w", kind, path, err)
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

// checkSum compares b with the SHA-256 in path's checksum file. No
// checksum file is no check; one that cannot be read or parsed fails.
func checkSum(path string, b []byte) error {
	text, err := os.ReadFile(path + ChecksumSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read checksum file: %w", err)
	}
	// "<hex>  <name>" (sha256sum), "<hex> *<name>" or just "<hex>". The
	// name is not compared: the file is often renamed into place.
	fields := bytes.Fields(text)
	if len(fields) == 0 {
		return fmt.Errorf("%w: checksum file %s is empty", ErrSuspectDatabase, path+ChecksumSuffix)
	}
	want, err := hex.DecodeString(string(fields[0]))
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("%w: checksum file %s does not start with a SHA-256 in hex", ErrSuspectDatabase, path+ChecksumSuffix)
	}
	got := sha256.Sum256(b)
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return fmt.Errorf("%w: SHA-256 %x does not match %s", ErrSuspectDatabase, got, path+ChecksumSuffix)
	}
	return nil
}

// checkUpdate compares the metadata of a replacement with the database
// serving now and with the type first loaded.
func checkUpdate(old, repl maxminddb.Metadata, firstType string) error {
	if firstType != "" && repl.DatabaseType != firstType {
		return fmt.Errorf("%w: database type %q differs from %q loaded at start", ErrSuspectDatabase, repl.DatabaseType, firstType)
	}
	if repl.BuildEpoch < old.BuildEpoch {
		return fmt.Errorf("%w: built %s, before the serving database (%s)", ErrSuspectDatabase,
			repl.BuildTime().UTC().Format(time.RFC3339), old.BuildTime().UTC().Format(time.RFC3339))
	}
	if repl.NodeCount*minNodeFraction < old.NodeCount {
		return fmt.Errorf("%w: search tree has %d nodes, less than 1/%d of the serving database's %d", ErrSuspectDatabase,
			repl.NodeCount, minNodeFraction, old.NodeCount)
	}
	return nil
}

// checkCanaries checks an Anonymous-IP database against the configured
// canaries (exact flags) and the canaries sampled from prev (still
// flagged, with a little tolerance). prev is nil on the first load.
func checkCanaries(db *maxminddb.Reader, configured []Canary, prev *databases) error {
	for _, c := range configured {
		got, err := anonymousFlags(db.Lookup(c.Addr.Unmap()))
		if err != nil {
			return fmt.Errorf("%w: canary %s: %w", ErrSuspectDatabase, c.Addr, err)
		}
		if got != c.Flags {
			return fmt.Errorf("%w: canary %s is %+v, want %+v", ErrSuspectDatabase, c.Addr, got, c.Flags)
		}
	}
	if prev == nil {
		return nil
	}
	var lost []netip.Addr
	for _, c := range prev.canaries {
		got, err := anonymousFlags(db.Lookup(c.Addr))
		if err != nil || !got.any() {
			lost = append(lost, c.Addr)
		}
	}
	if len(lost) > len(prev.canaries)/lostCanaryDivisor {
		return fmt.Errorf("%w: %d of %d addresses the serving database flags are no longer flagged (%v)",
			ErrSuspectDatabase, len(lost), len(prev.canaries), lost[:min(len(lost), 5)])
	}
	return nil
}

// sampleCanaries walks the flagged networks of db and keeps the first
// address of up to n of them, spread evenly over the walk (which goes in
// address order), so that damage anywhere in the tree is likely to hit one.
func sampleCanaries(db *maxminddb.Reader, n int) ([]Canary, error) {
	var (
		picked  []Canary
		stride  = 1
		flagged = 0
		byData  = make(map[uintptr]Flags) // records are shared by many networks
	)
	for res := range db.Networks() {
		if err := res.Err(); err != nil {
			return nil, err
		}
		f, ok := byData[res.Offset()]
		if !ok {
			var err error
			if f, err = anonymousFlags(res); err != nil {
				return nil, err
			}
			byData[res.Offset()] = f
		}
		if !f.any() {
			continue
		}
		if flagged%stride == 0 {
			picked = append(picked, Canary{Addr: res.Prefix().Addr(), Flags: f})
			if len(picked) == 2*n {
				// Keep every other one and take every other network
				// from now on.
				for i := range n {
					picked[i] = picked[2*i]
				}
				picked = picked[:n]
				stride *= 2
			}
		}
		flagged++
	}
	if len(picked) <= n {
		return picked, nil
	}
	out := make([]Canary, n)
	for i := range out {
		out[i] = picked[i*len(picked)/n]
	}
	return out, nil
}

// anonymousFlags decodes an Anonymous-IP record; an address without one
// has no flags.
func anonymousFlags(res maxminddb.Result) (Flags, error) {
	var rec geoip2.AnonymousIP
	if err := res.Decode(&rec); err != nil {
		return Flags{}, err
	}
	return Flags{
		Anonymous:        rec.IsAnonymous,
		AnonymousVPN:     rec.IsAnonymousVPN,
		PublicProxy:      rec.IsPublicProxy,
		TorExitNode:      rec.IsTorExitNode,
		HostingProvider:  rec.IsHostingProvider,
		ResidentialProxy: rec.IsResidentialProxy,
	}, nil
}

func statStamps(path string) fileStamps {
	return fileStamps{db: statFile(path), sum: statFile(path + ChecksumSuffix)}
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
