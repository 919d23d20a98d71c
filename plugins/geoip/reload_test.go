package geoip

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/portcullis/portcullis/plugins/geoip/geoiptest"
	"github.com/portcullis/portcullis/policies"
)

// fixedNow is the injected clock of these tests.
var fixedNow = time.Date(2025, time.March, 3, 3, 3, 3, 0, time.UTC)

func clock() time.Time { return fixedNow }

// flagged are addresses of the standard test database and what it says
// about them; a refused reload must leave every answer as it was.
var flagged = []struct {
	addr string
	want policies.IPFacts
}{
	{"127.0.0.2", policies.IPFacts{Checked: true, Anonymous: true, AnonymousVPN: true}},
	{"127.0.0.3", policies.IPFacts{Checked: true, Anonymous: true, TorExitNode: true}},
	{"127.0.0.6", policies.IPFacts{Checked: true, Anonymous: true, ResidentialProxy: true}},
	{"203.0.113.77", policies.IPFacts{Checked: true, Anonymous: true, AnonymousVPN: true}},
	{"198.51.100.200", policies.IPFacts{Checked: true, Anonymous: true, TorExitNode: true}},
	{"2001:db8:2::1", policies.IPFacts{Checked: true, Anonymous: true, TorExitNode: true}},
}

// metadataMarker starts the metadata section of a MaxMind DB file.
var metadataMarker = []byte("\xab\xcd\xefMaxMind.com")

// treeBytes is the size of the search tree of a database file.
func treeBytes(t testing.TB, b []byte) (size int, md maxminddb.Metadata) {
	t.Helper()
	db, err := maxminddb.OpenBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return int(db.Metadata.NodeCount * db.Metadata.RecordSize / 4), db.Metadata
}

// invert flips every bit of b[from:to+1] in a copy of b.
func invert(b []byte, from, to int) []byte {
	b = bytes.Clone(b)
	for i := from; i <= to && i < len(b); i++ {
		b[i] ^= 0xff
	}
	return b
}

// emptyRecords rewrites every 24-bit search-tree record that starts in
// bytes from..to to "no data", the damage that keeps the tree well formed
// (so Verify passes) while every network below those records is lost:
// flagged networks come back clean.
func emptyRecords(t testing.TB, b []byte, from, to int) []byte {
	t.Helper()
	size, md := treeBytes(t, b)
	if md.RecordSize != 24 {
		t.Skipf("record size %d; this corruption is written for 24-bit records", md.RecordSize)
	}
	b = bytes.Clone(b)
	n := md.NodeCount
	for off := (from + 2) / 3 * 3; off <= to && off+3 <= size; off += 3 {
		b[off], b[off+1], b[off+2] = byte(n>>16), byte(n>>8), byte(n)
	}
	return b
}

func verifies(b []byte) error {
	db, err := maxminddb.OpenBytes(b)
	if err != nil {
		return err
	}
	return db.Verify()
}

// TestReloadRefusesCorruptDatabase replays the incident: bytes 100–400 of
// the Anonymous-IP database were damaged, the reader's Verify still
// passed, and after the reload VPN and proxy networks came back clean.
// Whether or not Verify notices, the reload must be refused, the old
// database keep answering, and the failure be logged and counted.
func TestReloadRefusesCorruptDatabase(t *testing.T) {
	standard := readFile(t, testAnonymousIP)
	treeSize, _ := treeBytes(t, standard)
	dataStart := treeSize + 16
	dataEnd := bytes.LastIndex(standard, metadataMarker) - 1

	tests := []struct {
		name         string
		corrupt      func(t testing.TB) []byte
		mustVerify   bool // the damage is built to get past Verify
		wantCanaries bool // so the canary check has to be what refuses it
	}{
		{"tree records in bytes 100-400 emptied", func(t testing.TB) []byte { return emptyRecords(t, standard, 100, 400) }, true, true},
		{"bytes 100-400 inverted", func(testing.TB) []byte { return invert(standard, 100, 400) }, false, false},
		{"data section bytes 100-400 inverted", func(t testing.TB) []byte {
			if dataEnd-dataStart < 100 {
				t.Skip("data section shorter than 100 bytes")
			}
			return invert(standard, dataStart+100, min(dataStart+400, dataEnd))
		}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			corrupt := tc.corrupt(t)
			verr := verifies(corrupt)
			if tc.mustVerify {
				if verr != nil {
					t.Fatalf("the corruption was meant to pass Verify, got %v", verr)
				}
				// And it fails open: served, it would call flagged
				// addresses clean.
				db, err := maxminddb.OpenBytes(corrupt)
				if err != nil {
					t.Fatal(err)
				}
				var cleared []string
				for _, f := range flagged {
					if got, err := anonymousFlags(db.Lookup(netip.MustParseAddr(f.addr))); err == nil && !got.any() {
						cleared = append(cleared, f.addr)
					}
				}
				if len(cleared) == 0 {
					t.Fatal("the corruption changes no answer; it does not reproduce the incident")
				}
				t.Logf("the corrupt file calls %v clean", cleared)
			}
			t.Logf("Verify on the corrupt file: %v", verr)

			path := filepath.Join(t.TempDir(), "anon.mmdb")
			writeFile(t, path, standard)
			var logs syncBuffer
			r := open(t, Config{AnonymousIPPath: path, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: clock})
			for _, f := range flagged {
				lookup(t, r, f.addr) // fill the cache, which must not be purged either
			}

			replaceFile(t, path, corrupt)
			err := r.Reload()
			if err == nil {
				t.Fatal("Reload accepted the corrupt database")
			}
			if tc.wantCanaries && (!errors.Is(err, ErrSuspectDatabase) || !strings.Contains(err.Error(), "no longer flagged")) {
				t.Errorf("Reload error = %v, want the canary check (ErrSuspectDatabase)", err)
			}
			for _, f := range flagged {
				if got := lookup(t, r, f.addr); got != f.want {
					t.Errorf("after the refused reload: %s = %+v, want %+v from the old database", f.addr, got, f.want)
				}
			}
			if r.cache.Len() != len(flagged) {
				t.Errorf("cache holds %d entries, want the %d from before the refused reload", r.cache.Len(), len(flagged))
			}
			st := r.ReloadStats()
			if st.Failed != 1 || st.Succeeded != 0 || !st.LastFailure.Equal(fixedNow) || !errors.Is(st.LastError, err) {
				t.Errorf("ReloadStats = %+v, want 1 failure at %v with the Reload error", st, fixedNow)
			}
			if out := logs.String(); !strings.Contains(out, "geoip reload failed") || !strings.Contains(out, "failed_reloads=1") {
				t.Errorf("refused reload not logged with its count:\n%s", out)
			}
			if n := strings.Count(logs.String(), "geoip database loaded"); n != 1 {
				t.Errorf("%q logged %d times, want once (the first load)", "geoip database loaded", n)
			}
		})
	}
}

// withExtra is the standard database with one more VPN network, the shape
// of an ordinary update.
var withExtra = append([]geoip2.AnonymousIP{
	{Network: netip.MustParsePrefix("100.64.1.0/24"), IsAnonymousVPN: true},
}, geoiptest.AnonymousIP...)

func writeDBWith(t testing.TB, opts geoiptest.Options, records []geoip2.AnonymousIP) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := geoiptest.WriteAnonymousIPWith(&buf, opts, records); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha256File(b []byte, name string) []byte {
	return fmt.Appendf(nil, "%x  %s\n", sha256.Sum256(b), name)
}

// TestReloadAcceptsNewerDatabase checks that the sanity checks let an
// ordinary update through: newer, one network more, with a matching
// checksum file.
func TestReloadAcceptsNewerDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "GeoIP2-Anonymous-IP.mmdb")
	standard := readFile(t, testAnonymousIP)
	writeFile(t, path, standard)
	writeFile(t, path+ChecksumSuffix, sha256File(standard, "GeoIP2-Anonymous-IP.mmdb"))
	r := open(t, Config{AnonymousIPPath: path, Now: clock})
	if f := lookup(t, r, "100.64.1.9"); f.Anonymous {
		t.Fatalf("before the update: 100.64.1.9 = %+v, want clean", f)
	}

	newer := writeDBWith(t, geoiptest.Options{BuildTime: time.Date(2025, time.February, 1, 0, 0, 0, 0, time.UTC)}, withExtra)
	replaceFile(t, path+ChecksumSuffix, sha256File(newer, "GeoIP2-Anonymous-IP.mmdb"))
	replaceFile(t, path, newer)
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload refused a legitimate update: %v", err)
	}
	want := policies.IPFacts{Checked: true, Anonymous: true, AnonymousVPN: true}
	if f := lookup(t, r, "100.64.1.9"); f != want {
		t.Errorf("after the update: 100.64.1.9 = %+v, want %+v", f, want)
	}
	for _, f := range flagged {
		if got := lookup(t, r, f.addr); got != f.want {
			t.Errorf("after the update: %s = %+v, want %+v", f.addr, got, f.want)
		}
	}
	if st := r.ReloadStats(); st.Succeeded != 1 || st.Failed != 0 {
		t.Errorf("ReloadStats = %+v, want 1 success", st)
	}

	// The same file again (an updater touching it) is fine too.
	if err := r.Reload(); err != nil {
		t.Errorf("reloading the same database: %v", err)
	}
}

// TestReloadSanityChecks covers each check with a replacement that reads
// and verifies but must be refused, and a few that must be accepted.
func TestReloadSanityChecks(t *testing.T) {
	later := geoiptest.Options{BuildTime: time.Date(2025, time.June, 1, 0, 0, 0, 0, time.UTC)}
	earlier := geoiptest.Options{BuildTime: time.Date(2024, time.June, 1, 0, 0, 0, 0, time.UTC)}
	without := func(recs []geoip2.AnonymousIP, drop ...string) []geoip2.AnonymousIP {
		var out []geoip2.AnonymousIP
	next:
		for _, rec := range recs {
			for _, d := range drop {
				if rec.Network == netip.MustParsePrefix(d) {
					continue next
				}
			}
			out = append(out, rec)
		}
		return out
	}
	// many is the standard database plus 200 single Tor exit addresses in
	// 10.0.0.0/8; summarized replaces them with 10.0.0.0/8 as a whole, so
	// every address stays flagged but the tree shrinks to a fraction.
	var many []geoip2.AnonymousIP
	for i := range 200 {
		many = append(many, geoip2.AnonymousIP{Network: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), byte(i * 7), 1}), 32), IsTorExitNode: true})
	}
	many = append(many, geoiptest.AnonymousIP...)
	summarized := append([]geoip2.AnonymousIP{{Network: netip.MustParsePrefix("10.0.0.0/8"), IsTorExitNode: true}}, geoiptest.AnonymousIP...)
	torIsVPN := without(geoiptest.AnonymousIP, "127.0.0.3/32")
	torIsVPN = append(torIsVPN, geoip2.AnonymousIP{Network: netip.MustParsePrefix("127.0.0.3/32"), IsAnonymousVPN: true})
	torCanary := []Canary{{Addr: netip.MustParseAddr("127.0.0.3"), Flags: Flags{Anonymous: true, TorExitNode: true}}}

	tests := []struct {
		name     string
		first    []byte
		canaries []Canary
		next     []byte
		sum      []byte // checksum file for next; nil means none
		want     string // substring of the error; empty means accepted
	}{
		{name: "older build", next: writeDBWith(t, earlier, withExtra), want: "before the serving database"},
		{name: "same build", next: writeDBWith(t, geoiptest.Options{}, withExtra)},
		{name: "other database type", next: writeDBWith(t, geoiptest.Options{BuildTime: later.BuildTime, DatabaseType: "GeoIP-Anonymous-Plus"}, withExtra),
			want: `database type "GeoIP-Anonymous-Plus" differs from "GeoIP2-Anonymous-IP"`},
		{name: "search tree shrinks below half", first: writeDBWith(t, geoiptest.Options{}, many), next: writeDBWith(t, later, summarized), want: "less than 1/2"},
		{name: "one flagged network delisted is tolerated", next: writeDBWith(t, later, without(geoiptest.AnonymousIP, "127.0.0.4/32"))},
		{name: "two flagged networks delisted", next: writeDBWith(t, later, without(geoiptest.AnonymousIP, "127.0.0.4/32", "2001:db8:3::/48")),
			want: "2 of 10 addresses the serving database flags are no longer flagged"},
		{name: "configured canary changes its flags", canaries: torCanary, next: writeDBWith(t, later, torIsVPN), want: "canary 127.0.0.3"},
		{name: "configured canary unchanged", canaries: torCanary, next: writeDBWith(t, later, withExtra)},
		{name: "checksum matches", next: writeDBWith(t, later, withExtra), sum: sha256File(writeDBWith(t, later, withExtra), "x.mmdb")},
		{name: "bare checksum matches", next: writeDBWith(t, later, withExtra), sum: fmt.Appendf(nil, "%x", sha256.Sum256(writeDBWith(t, later, withExtra)))},
		{name: "checksum of the old file", next: writeDBWith(t, later, withExtra), sum: sha256File(readFile(t, testAnonymousIP), "x.mmdb"), want: "does not match"},
		{name: "checksum file garbled", next: writeDBWith(t, later, withExtra), sum: []byte("<html>not found</html>\n"), want: "does not start with a SHA-256"},
		{name: "checksum file empty", next: writeDBWith(t, later, withExtra), sum: []byte{}, want: "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.first
			if first == nil {
				first = readFile(t, testAnonymousIP)
			}
			path := filepath.Join(t.TempDir(), "anon.mmdb")
			writeFile(t, path, first)
			r := open(t, Config{AnonymousIPPath: path, Canaries: tc.canaries, Now: clock})
			before := map[string]policies.IPFacts{}
			for _, f := range flagged {
				before[f.addr] = lookup(t, r, f.addr)
			}

			if tc.sum != nil {
				writeFile(t, path+ChecksumSuffix, tc.sum)
			}
			replaceFile(t, path, tc.next)
			err := r.Reload()
			st := r.ReloadStats()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Reload refused: %v", err)
				}
				if st.Succeeded != 1 || st.Failed != 0 {
					t.Errorf("ReloadStats = %+v, want 1 success", st)
				}
				return
			}
			if err == nil {
				t.Fatal("Reload accepted the replacement")
			}
			if !errors.Is(err, ErrSuspectDatabase) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Reload error = %v, want ErrSuspectDatabase mentioning %q", err, tc.want)
			}
			if st.Failed != 1 || st.Succeeded != 0 {
				t.Errorf("ReloadStats = %+v, want 1 failure", st)
			}
			for addr, want := range before {
				if got := lookup(t, r, addr); got != want {
					t.Errorf("after the refused reload: %s = %+v, want %+v", addr, got, want)
				}
			}
		})
	}
}

// TestOpenSanityChecks checks that the checks that need no previous
// database (checksum file, configured canaries) apply to the first load.
func TestOpenSanityChecks(t *testing.T) {
	standard := readFile(t, testAnonymousIP)
	tests := []struct {
		name     string
		sum      []byte
		canaries []Canary
		want     string
	}{
		{"checksum mismatch", sha256File([]byte("other"), "x"), nil, "does not match"},
		{"canary not flagged", nil, []Canary{{Addr: netip.MustParseAddr("127.0.0.1"), Flags: Flags{Anonymous: true, AnonymousVPN: true}}}, "canary 127.0.0.1"},
		{"canary with other flags", nil, []Canary{{Addr: netip.MustParseAddr("::ffff:127.0.0.2"), Flags: Flags{Anonymous: true, TorExitNode: true}}}, "canary ::ffff:127.0.0.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "anon.mmdb")
			writeFile(t, path, standard)
			if tc.sum != nil {
				writeFile(t, path+ChecksumSuffix, tc.sum)
			}
			r, err := Open(Config{AnonymousIPPath: path, Canaries: tc.canaries})
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrSuspectDatabase) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open error = %v, want ErrSuspectDatabase mentioning %q", err, tc.want)
			}
		})
	}

	t.Run("matching canaries and checksum", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "anon.mmdb")
		writeFile(t, path, standard)
		writeFile(t, path+ChecksumSuffix, sha256File(standard, "anon.mmdb"))
		open(t, Config{AnonymousIPPath: path, Canaries: []Canary{
			{Addr: netip.MustParseAddr("127.0.0.1")},
			{Addr: netip.MustParseAddr("198.51.100.1"), Flags: Flags{Anonymous: true, TorExitNode: true}},
		}})
	})
	t.Run("invalid canary", func(t *testing.T) {
		if _, err := Open(Config{AnonymousIPPath: testAnonymousIP, Canaries: []Canary{{}}}); err == nil {
			t.Error("Open accepted a canary without an address")
		}
	})
	t.Run("canaries without a database", func(t *testing.T) {
		if _, err := Open(Config{CountryPath: testCountry, Canaries: []Canary{{Addr: netip.MustParseAddr("127.0.0.2")}}}); err == nil {
			t.Error("Open accepted canaries without an anonymous-ip database")
		}
	})
}

// TestChecksumFileChangeCountsAsChange: an updater that writes the
// database before its checksum file gets a refused reload in between;
// the checksum file arriving must make Watch try again.
func TestChecksumFileChangeCountsAsChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anon.mmdb")
	standard := readFile(t, testAnonymousIP)
	writeFile(t, path, standard)
	writeFile(t, path+ChecksumSuffix, sha256File(standard, "anon.mmdb"))
	r := open(t, Config{AnonymousIPPath: path})

	newer := writeDBWith(t, geoiptest.Options{BuildTime: time.Date(2025, time.February, 1, 0, 0, 0, 0, time.UTC)}, withExtra)
	replaceFile(t, path, newer)
	if !r.changed() {
		t.Fatal("new database not seen as a change")
	}
	if err := r.Reload(); !errors.Is(err, ErrSuspectDatabase) {
		t.Fatalf("Reload with the old checksum file = %v, want ErrSuspectDatabase", err)
	}
	if r.changed() {
		t.Fatal("refused file still seen as a change; Watch would retry it on every tick")
	}
	// Same size, so only the modification time differs.
	replaceFile(t, path+ChecksumSuffix, sha256File(newer, "anon.mmdb"))
	if !r.changed() {
		t.Fatal("new checksum file not seen as a change")
	}
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload with the matching checksum file: %v", err)
	}
	if f := lookup(t, r, "100.64.1.1"); !f.AnonymousVPN {
		t.Errorf("100.64.1.1 = %+v, want vpn from the new database", f)
	}
}

func TestSampleCanaries(t *testing.T) {
	// 300 IPv4 and 100 IPv6 networks besides the standard ten.
	var recs []geoip2.AnonymousIP
	for i := range 300 {
		// Not adjacent, or the writer would merge them.
		recs = append(recs, geoip2.AnonymousIP{Network: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 128), byte(2 * i), 0}), 24), IsAnonymousVPN: true})
	}
	for i := range 100 {
		a := netip.MustParseAddr("2001:db8:100::").As16()
		a[5] = byte(2 * i)
		recs = append(recs, geoip2.AnonymousIP{Network: netip.PrefixFrom(netip.AddrFrom16(a), 48), IsPublicProxy: true})
	}
	recs = append(recs, geoiptest.AnonymousIP...)
	db, err := maxminddb.OpenBytes(writeDB(t, recs))
	if err != nil {
		t.Fatal(err)
	}
	got, err := sampleCanaries(db, derivedCanaries)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != derivedCanaries {
		t.Fatalf("sampled %d canaries, want %d", len(got), derivedCanaries)
	}
	seen := map[netip.Addr]bool{}
	var v4, v6 int
	for _, c := range got {
		if seen[c.Addr] {
			t.Errorf("%s sampled twice", c.Addr)
		}
		seen[c.Addr] = true
		if !c.Flags.any() {
			t.Errorf("%s sampled without flags", c.Addr)
		}
		f, err := anonymousFlags(db.Lookup(c.Addr))
		if err != nil || f != c.Flags {
			t.Errorf("%s: sampled %+v, database says %+v, %v", c.Addr, c.Flags, f, err)
		}
		if c.Addr.Is4() {
			v4++
		} else {
			v6++
		}
	}
	// Spread over the whole walk, not the first 32 networks of 10/8.
	if v6 == 0 || v4 == 0 {
		t.Errorf("sample has %d IPv4 and %d IPv6 addresses, want both: %v", v4, v6, got)
	}

	small, err := sampleCanaries(db, 500)
	if err != nil || len(small) != len(recs) {
		t.Errorf("sampling more than there are: %d canaries, %v; want all %d", len(small), err, len(recs))
	}
}

func TestCheckUpdate(t *testing.T) {
	old := maxminddb.Metadata{DatabaseType: "GeoIP2-Anonymous-IP", BuildEpoch: 1000, NodeCount: 1000}
	tests := []struct {
		name string
		repl maxminddb.Metadata
		ok   bool
	}{
		{"same", old, true},
		{"newer and bigger", maxminddb.Metadata{DatabaseType: old.DatabaseType, BuildEpoch: 2000, NodeCount: 5000}, true},
		{"exactly half the nodes", maxminddb.Metadata{DatabaseType: old.DatabaseType, BuildEpoch: 1000, NodeCount: 500}, true},
		{"under half the nodes", maxminddb.Metadata{DatabaseType: old.DatabaseType, BuildEpoch: 1000, NodeCount: 499}, false},
		{"one second older", maxminddb.Metadata{DatabaseType: old.DatabaseType, BuildEpoch: 999, NodeCount: 1000}, false},
		{"other type", maxminddb.Metadata{DatabaseType: "GeoIP-Anonymous-Plus", BuildEpoch: 1000, NodeCount: 1000}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkUpdate(old, tc.repl, old.DatabaseType)
			if (err == nil) != tc.ok {
				t.Errorf("checkUpdate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrSuspectDatabase) {
				t.Errorf("error %v does not wrap ErrSuspectDatabase", err)
			}
		})
	}
}

// TestReloadCountryChecks: the metadata checks apply to the country
// database too, and a refused country file keeps both databases serving.
func TestReloadCountryChecks(t *testing.T) {
	dir := t.TempDir()
	anon, country := filepath.Join(dir, "anon.mmdb"), filepath.Join(dir, "country.mmdb")
	writeFile(t, anon, readFile(t, testAnonymousIP))
	// The standard networks and 200 single addresses in 10.0.0.0/8.
	big := slices.Clone(geoiptest.Country)
	for i := range 200 {
		big = append(big, geoiptest.CountryNetwork{Network: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), byte(i * 7), 1}), 32), ISOCode: "FR"})
	}
	var first bytes.Buffer
	if err := geoiptest.WriteCountry(&first, big); err != nil {
		t.Fatal(err)
	}
	writeFile(t, country, first.Bytes())
	r := open(t, Config{AnonymousIPPath: anon, CountryPath: country})

	replaceFile(t, country, readFile(t, testCountry))
	if err := r.Reload(); !errors.Is(err, ErrSuspectDatabase) {
		t.Fatalf("Reload = %v, want ErrSuspectDatabase for the shrunken country database", err)
	}
	if f := lookup(t, r, "127.0.0.2"); f.Country != "US" || !f.AnonymousVPN {
		t.Errorf("127.0.0.2 = %+v, want US vpn from the old databases", f)
	}
}

// maxMindTestDatabase returns MaxMind's own GeoIP2-Anonymous-IP-Test.mmdb
// from a MaxMind-DB checkout ($MAXMIND_DB_DIR) or mirror, or skips.
func maxMindTestDatabase(t *testing.T) []byte {
	t.Helper()
	const name = "test-data/GeoIP2-Anonymous-IP-Test.mmdb"
	if dir := os.Getenv("MAXMIND_DB_DIR"); dir != "" {
		return readFile(t, filepath.Join(dir, name))
	}
	mirrors, _ := filepath.Glob("/work/.mirror/maxmind+MaxMind-DB*")
	for _, m := range mirrors {
		for _, gitDir := range []string{m, filepath.Join(m, ".git")} {
			out, err := exec.CommandContext(t.Context(), "git", "--git-dir", gitDir, "show", "HEAD:"+name).Output()
			if err == nil && len(out) > 0 {
				return out
			}
		}
	}
	t.Skip("MaxMind's test databases are not available (set MAXMIND_DB_DIR to a MaxMind-DB checkout)")
	return nil
}

// TestReloadRefusesCorruptMaxMindDatabase is the incident with the very
// file it happened with, when that file is available: bytes 100–400 of
// MaxMind's Anonymous-IP test database inverted.
func TestReloadRefusesCorruptMaxMindDatabase(t *testing.T) {
	orig := maxMindTestDatabase(t)
	path := filepath.Join(t.TempDir(), "GeoIP2-Anonymous-IP-Test.mmdb")
	writeFile(t, path, orig)
	r := open(t, Config{AnonymousIPPath: path, Now: clock})
	canaries := r.dbs.Load().canaries
	if len(canaries) == 0 {
		t.Fatal("no flagged networks sampled from MaxMind's test database")
	}
	for _, tc := range []struct {
		name    string
		corrupt func(testing.TB) []byte
	}{
		{"inverted", func(testing.TB) []byte { return invert(orig, 100, 400) }},
		{"records emptied", func(t testing.TB) []byte { return emptyRecords(t, orig, 100, 400) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			corrupt := tc.corrupt(t)
			t.Logf("Verify on the corrupt file: %v", verifies(corrupt))
			replaceFile(t, path, corrupt)
			if err := r.Reload(); err == nil {
				t.Fatal("Reload accepted the corrupt database")
			}
			for _, c := range canaries {
				f := lookup(t, r, c.Addr.String())
				if !f.Anonymous && !f.AnonymousVPN && !f.TorExitNode && !f.PublicProxy && !f.HostingProvider && !f.ResidentialProxy {
					t.Errorf("after the refused reload: %s = %+v, want flagged as before", c.Addr, f)
				}
			}
		})
	}
	if st := r.ReloadStats(); st.Succeeded != 0 {
		t.Errorf("ReloadStats = %+v, want no successful reload", st)
	}
}
