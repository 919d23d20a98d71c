package geoip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/portcullis/portcullis/plugins/geoip/geoiptest"
	"github.com/portcullis/portcullis/policies"
)

var (
	testAnonymousIP = filepath.Join("..", "..", "testdata", "geoip", geoiptest.AnonymousIPFile)
	testCountry     = filepath.Join("..", "..", "testdata", "geoip", geoiptest.CountryFile)
)

func open(t testing.TB, cfg Config) *Reader {
	t.Helper()
	r, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func lookup(t testing.TB, r *Reader, addr string) policies.IPFacts {
	t.Helper()
	facts, err := r.Lookup(context.Background(), netip.MustParseAddr(addr))
	if err != nil {
		t.Fatalf("Lookup(%s): %v", addr, err)
	}
	return facts
}

func TestLookup(t *testing.T) {
	r := open(t, Config{AnonymousIPPath: testAnonymousIP, CountryPath: testCountry})

	vpn := policies.IPFacts{Checked: true, Anonymous: true, AnonymousVPN: true}
	tor := policies.IPFacts{Checked: true, Anonymous: true, TorExitNode: true}
	hosting := policies.IPFacts{Checked: true, Anonymous: true, HostingProvider: true}
	clean := policies.IPFacts{Checked: true}
	in := func(f policies.IPFacts, country string) policies.IPFacts {
		f.Country = country
		return f
	}

	tests := []struct {
		name string
		addr string
		want policies.IPFacts
	}{
		{"loopback is clean", "127.0.0.1", in(clean, "US")},
		{"anonymous vpn", "127.0.0.2", in(vpn, "US")},
		{"tor exit node", "127.0.0.3", in(tor, "US")},
		{"hosting provider", "127.0.0.4", in(hosting, "US")},
		{"public proxy", "127.0.0.5", policies.IPFacts{Checked: true, Anonymous: true, PublicProxy: true, Country: "US"}},
		{"residential proxy", "127.0.0.6", policies.IPFacts{Checked: true, Anonymous: true, ResidentialProxy: true, Country: "US"}},
		{"vpn range", "203.0.113.77", in(vpn, "NL")},
		{"tor range", "198.51.100.200", in(tor, "DE")},
		{"clean documentation range", "192.0.2.10", in(clean, "GB")},
		{"ipv6 vpn", "2001:db8:1::42", in(vpn, "CA")},
		{"ipv6 tor", "2001:db8:2:ff::1", in(tor, "CA")},
		{"ipv6 hosting", "2001:db8:3::1", in(hosting, "CA")},
		{"ipv6 clean", "2001:db8:ffff::1", in(clean, "CA")},
		{"ipv4-mapped ipv6 is unmapped", "::ffff:127.0.0.2", in(vpn, "US")},
		{"ipv4-mapped clean", "::ffff:192.0.2.1", in(clean, "GB")},
		{"zone is ignored", "2001:db8:1::1%eth0", in(vpn, "CA")},
		{"unlisted address", "8.8.8.8", clean},
		{"unlisted ipv6", "2606:4700::1111", clean},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second answer comes from the cache.
			for range 2 {
				if got := lookup(t, r, tc.addr); got != tc.want {
					t.Errorf("Lookup(%s) = %+v, want %+v", tc.addr, got, tc.want)
				}
			}
		})
	}
}

func TestLookupWithoutCountry(t *testing.T) {
	r := open(t, Config{AnonymousIPPath: testAnonymousIP, CacheSize: -1})
	want := policies.IPFacts{Checked: true, Anonymous: true, AnonymousVPN: true}
	if got := lookup(t, r, "203.0.113.1"); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestNotConfigured(t *testing.T) {
	ctx := t.Context()
	addr := netip.MustParseAddr("127.0.0.2")

	t.Run("nil reader", func(t *testing.T) {
		var r *Reader
		facts, err := r.Lookup(ctx, addr)
		if !errors.Is(err, ErrNotConfigured) || facts.Checked {
			t.Errorf("got %+v, %v; want unchecked, ErrNotConfigured", facts, err)
		}
	})
	t.Run("empty config", func(t *testing.T) {
		r := open(t, Config{})
		facts, err := r.Lookup(ctx, addr)
		if !errors.Is(err, ErrNotConfigured) || facts.Checked {
			t.Errorf("got %+v, %v; want unchecked, ErrNotConfigured", facts, err)
		}
	})
	t.Run("country only", func(t *testing.T) {
		r := open(t, Config{CountryPath: testCountry})
		facts, err := r.Lookup(ctx, addr)
		want := policies.IPFacts{Country: "US"}
		if !errors.Is(err, ErrNotConfigured) || facts != want {
			t.Errorf("got %+v, %v; want %+v, ErrNotConfigured", facts, err, want)
		}
	})
}

func TestLookupInvalidAddress(t *testing.T) {
	r := open(t, Config{AnonymousIPPath: testAnonymousIP})
	facts, err := r.Lookup(t.Context(), netip.Addr{})
	if err == nil || facts.Checked {
		t.Errorf("got %+v, %v; want an error and unchecked facts", facts, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mmdb")
	writeFile(t, garbage, []byte("this is not a MaxMind database"))
	truncated := filepath.Join(dir, "truncated.mmdb")
	valid := readFile(t, testAnonymousIP)
	writeFile(t, truncated, valid[:len(valid)/2])

	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing file", Config{AnonymousIPPath: filepath.Join(dir, "missing.mmdb")}, "no such file"},
		{"garbage", Config{AnonymousIPPath: garbage}, "invalid MaxMind DB"},
		{"truncated", Config{AnonymousIPPath: truncated}, "invalid MaxMind DB"},
		{"country db as anonymous-ip", Config{AnonymousIPPath: testCountry}, `unexpected database type "GeoLite2-Country"`},
		{"anonymous-ip db as country", Config{AnonymousIPPath: testAnonymousIP, CountryPath: testAnonymousIP}, `unexpected database type "GeoIP2-Anonymous-IP"`},
		{"missing country", Config{AnonymousIPPath: testAnonymousIP, CountryPath: filepath.Join(dir, "missing.mmdb")}, "open country database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Open(tc.cfg)
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestOpenRejectsCorruptTree(t *testing.T) {
	b := readFile(t, testAnonymousIP)
	// Point every search-tree record far outside the file while keeping
	// the metadata intact, so only verification can tell.
	for i := range 64 {
		b[i] = 0xff
	}
	path := filepath.Join(t.TempDir(), "corrupt.mmdb")
	writeFile(t, path, b)
	r, err := Open(Config{AnonymousIPPath: path})
	if err == nil {
		r.Close()
		t.Fatal("Open succeeded on a corrupt search tree")
	}
	if !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("Open error %q does not say the file is corrupt", err)
	}
}

// alternate is a database that answers differently from the standard one,
// as a legitimate update does: 127.0.0.1 becomes a VPN and 127.0.0.2 is
// delisted; everything else stays. (A replacement that delists most of
// the standard networks is refused by the canary check; see
// TestReloadSanityChecks.)
var alternate = func() []geoip2.AnonymousIP {
	recs := []geoip2.AnonymousIP{{Network: netip.MustParsePrefix("127.0.0.1/32"), IsAnonymousVPN: true}}
	for _, rec := range geoiptest.AnonymousIP {
		if rec.Network != netip.MustParsePrefix("127.0.0.2/32") {
			recs = append(recs, rec)
		}
	}
	return recs
}()

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anon.mmdb")
	writeFile(t, path, readFile(t, testAnonymousIP))
	var logs syncBuffer
	r := open(t, Config{AnonymousIPPath: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	if f := lookup(t, r, "127.0.0.2"); !f.AnonymousVPN {
		t.Fatalf("before reload: 127.0.0.2 = %+v, want vpn", f)
	}
	if f := lookup(t, r, "127.0.0.1"); f.Anonymous {
		t.Fatalf("before reload: 127.0.0.1 = %+v, want clean", f)
	}
	if n := r.cache.Len(); n != 2 {
		t.Fatalf("cache holds %d entries, want 2", n)
	}

	replaceFile(t, path, writeDB(t, alternate))
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if n := r.cache.Len(); n != 0 {
		t.Errorf("cache holds %d entries after reload, want 0", n)
	}
	if f := lookup(t, r, "127.0.0.2"); f.Anonymous {
		t.Errorf("after reload: 127.0.0.2 = %+v, want clean", f)
	}
	if f := lookup(t, r, "127.0.0.1"); !f.AnonymousVPN {
		t.Errorf("after reload: 127.0.0.1 = %+v, want vpn", f)
	}

	t.Run("corrupt replacement keeps the old database", func(t *testing.T) {
		replaceFile(t, path, []byte("truncated download"))
		if err := r.Reload(); err == nil {
			t.Fatal("Reload succeeded on a corrupt file")
		}
		if f := lookup(t, r, "127.0.0.1"); !f.AnonymousVPN {
			t.Errorf("after failed reload: 127.0.0.1 = %+v, want vpn from the old database", f)
		}
		if !strings.Contains(logs.String(), "geoip reload failed") {
			t.Errorf("failed reload was not logged; logs:\n%s", logs.String())
		}
	})
	t.Run("missing file keeps the old database", func(t *testing.T) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := r.Reload(); err == nil {
			t.Fatal("Reload succeeded on a missing file")
		}
		if f := lookup(t, r, "127.0.0.1"); !f.AnonymousVPN {
			t.Errorf("after failed reload: 127.0.0.1 = %+v, want vpn from the old database", f)
		}
	})
}

func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "anon.mmdb")
		writeFile(t, path, readFile(t, testAnonymousIP))
		var logs syncBuffer
		r := open(t, Config{AnonymousIPPath: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			r.Watch(ctx, time.Minute)
			close(done)
		}()

		// Several intervals without a change: nothing is reloaded.
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if n := strings.Count(logs.String(), "geoip database loaded"); n != 1 {
			t.Fatalf("reloaded an unchanged file; logs:\n%s", logs.String())
		}

		replaceFile(t, path, writeDB(t, alternate))
		time.Sleep(time.Minute)
		synctest.Wait()
		if f := lookup(t, r, "127.0.0.2"); f.Anonymous {
			t.Errorf("after change: 127.0.0.2 = %+v, want clean", f)
		}

		// A broken file is reported once, not on every tick, and the
		// working database stays.
		replaceFile(t, path, []byte("partial"))
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := strings.Count(logs.String(), "geoip reload failed"); n != 1 {
			t.Errorf("failed reload logged %d times, want 1; logs:\n%s", n, logs.String())
		}
		if f := lookup(t, r, "127.0.0.1"); !f.AnonymousVPN {
			t.Errorf("after broken change: 127.0.0.1 = %+v, want vpn", f)
		}

		// Fixing the file is picked up.
		replaceFile(t, path, readFile(t, testAnonymousIP))
		time.Sleep(time.Minute)
		synctest.Wait()
		if f := lookup(t, r, "127.0.0.2"); !f.AnonymousVPN {
			t.Errorf("after fix: 127.0.0.2 = %+v, want vpn", f)
		}

		cancel()
		<-done
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := Open(Config{AnonymousIPPath: testAnonymousIP})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			r.Watch(t.Context(), time.Second)
			close(done)
		}()
		lookup(t, r, "127.0.0.2")
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		<-done // Watch returns on Close
		if _, err := r.Lookup(t.Context(), netip.MustParseAddr("127.0.0.2")); !errors.Is(err, ErrClosed) {
			t.Errorf("Lookup after Close: %v, want ErrClosed", err)
		}
		if err := r.Reload(); !errors.Is(err, ErrClosed) {
			t.Errorf("Reload after Close: %v, want ErrClosed", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// TestConcurrentLookupAndReload runs lookups while the database flips
// between two versions; every answer must come from one version or the
// other (never a mix), and -race must stay quiet.
func TestConcurrentLookupAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "anon.mmdb")
	standard := readFile(t, testAnonymousIP)
	other := writeDB(t, alternate)
	writeFile(t, path, standard)
	r := open(t, Config{AnonymousIPPath: path, CacheSize: 8})

	ctx := t.Context()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			addrs := []netip.Addr{
				netip.MustParseAddr("127.0.0.1"),
				netip.MustParseAddr("127.0.0.2"),
				netip.MustParseAddr("127.0.0.3"),
				netip.AddrFrom4([4]byte{10, 0, 0, byte(g)}),
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				addr := addrs[i%len(addrs)]
				f, err := r.Lookup(ctx, addr)
				if err != nil || !f.Checked {
					errs <- fmt.Errorf("Lookup(%s) = %+v, %v", addr, f, err)
					return
				}
				if addr.String() == "127.0.0.3" && !f.TorExitNode {
					errs <- fmt.Errorf("127.0.0.3 = %+v, want tor in both versions", f)
					return
				}
			}
		})
	}
	for i := range 50 {
		data := standard
		if i%2 == 0 {
			data = other
		}
		replaceFile(t, path, data)
		if err := r.Reload(); err != nil {
			t.Errorf("Reload: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkLookup(b *testing.B) {
	addrs := []netip.Addr{
		netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("127.0.0.2"),
		netip.MustParseAddr("203.0.113.9"),
		netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("8.8.8.8"),
		netip.MustParseAddr("2001:db8:1::1"),
		netip.MustParseAddr("2606:4700::1111"),
		netip.MustParseAddr("::ffff:198.51.100.3"),
	}
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"uncached", Config{AnonymousIPPath: testAnonymousIP, CacheSize: -1}},
		{"uncached_with_country", Config{AnonymousIPPath: testAnonymousIP, CountryPath: testCountry, CacheSize: -1}},
		{"cached", Config{AnonymousIPPath: testAnonymousIP, CountryPath: testCountry}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := open(b, bc.cfg)
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := r.Lookup(ctx, addrs[i%len(addrs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile swaps in new content the way a database updater does: write
// a temporary file, then rename it over the old one.
func replaceFile(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, b)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func writeDB(t testing.TB, records []geoip2.AnonymousIP) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := geoiptest.WriteAnonymousIP(&buf, records); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
