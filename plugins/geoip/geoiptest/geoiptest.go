// Package geoiptest writes small MaxMind databases for tests and demos:
// the standard test databases committed under testdata/geoip, and custom
// ones a test needs (for example a replacement to exercise a reload).
package geoiptest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/geoip2-golang/v2"
)

// File names of the standard test databases.
const (
	AnonymousIPFile = "GeoIP2-Anonymous-IP-Test.mmdb"
	CountryFile     = "GeoLite2-Country-Test.mmdb"
)

// buildEpoch is fixed so that the same input always produces the same
// bytes, which lets a test prove the committed files are current.
var buildEpoch = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC).Unix()

// AnonymousIP is the content of the standard Anonymous-IP test database.
// 127.0.0.1, 192.0.2.0/24 and the rest of 2001:db8::/32 are absent, which
// is how the real database describes a clean address.
var AnonymousIP = []geoip2.AnonymousIP{
	{Network: netip.MustParsePrefix("127.0.0.2/32"), IsAnonymousVPN: true},
	{Network: netip.MustParsePrefix("127.0.0.3/32"), IsTorExitNode: true},
	{Network: netip.MustParsePrefix("127.0.0.4/32"), IsHostingProvider: true},
	{Network: netip.MustParsePrefix("127.0.0.5/32"), IsPublicProxy: true},
	{Network: netip.MustParsePrefix("127.0.0.6/32"), IsResidentialProxy: true},
	{Network: netip.MustParsePrefix("203.0.113.0/24"), IsAnonymousVPN: true},
	{Network: netip.MustParsePrefix("198.51.100.0/24"), IsTorExitNode: true},
	{Network: netip.MustParsePrefix("2001:db8:1::/48"), IsAnonymousVPN: true},
	{Network: netip.MustParsePrefix("2001:db8:2::/48"), IsTorExitNode: true},
	{Network: netip.MustParsePrefix("2001:db8:3::/48"), IsHostingProvider: true},
}

// CountryNetwork assigns an ISO 3166-1 alpha-2 country code to a network.
type CountryNetwork struct {
	Network netip.Prefix
	ISOCode string
}

// Country is the content of the standard Country test database.
var Country = []CountryNetwork{
	{netip.MustParsePrefix("127.0.0.0/8"), "US"},
	{netip.MustParsePrefix("192.0.2.0/24"), "GB"},
	{netip.MustParsePrefix("198.51.100.0/24"), "DE"},
	{netip.MustParsePrefix("203.0.113.0/24"), "NL"},
	{netip.MustParsePrefix("2001:db8::/32"), "CA"},
}

// Generate writes the standard test databases into dir.
func Generate(dir string) error {
	var anon, country bytes.Buffer
	if err := WriteAnonymousIP(&anon, AnonymousIP); err != nil {
		return err
	}
	if err := WriteCountry(&country, Country); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, AnonymousIPFile), anon.Bytes(), 0o644); err != nil {
		return fmt.Errorf("geoiptest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, CountryFile), country.Bytes(), 0o644); err != nil {
		return fmt.Errorf("geoiptest: %w", err)
	}
	return nil
}

// Options change the metadata of a database written with
// WriteAnonymousIPWith, for tests of what a reload accepts.
type Options struct {
	// BuildTime is the database's build_epoch; zero means the fixed time
	// of the standard test databases.
	BuildTime time.Time
	// DatabaseType is the database_type; empty means the standard one.
	DatabaseType string
}

// WriteAnonymousIP writes a GeoIP2-Anonymous-IP database holding records,
// each for its Network. is_anonymous is set whenever any other flag is,
// as in the real database; only true flags are stored.
func WriteAnonymousIP(w io.Writer, records []geoip2.AnonymousIP) error {
	return WriteAnonymousIPWith(w, Options{}, records)
}

// WriteAnonymousIPWith is WriteAnonymousIP with the metadata changed by
// opts.
func WriteAnonymousIPWith(w io.Writer, opts Options, records []geoip2.AnonymousIP) error {
	if opts.DatabaseType == "" {
		opts.DatabaseType = "GeoIP2-Anonymous-IP"
	}
	tree, err := newTree(opts, "Portcullis test Anonymous-IP database")
	if err != nil {
		return err
	}
	for _, rec := range records {
		m := mmdbtype.Map{}
		set := func(key string, v bool) {
			if v {
				m[mmdbtype.String(key)] = mmdbtype.Bool(true)
			}
		}
		set("is_anonymous", rec.IsAnonymous || rec.HasData())
		set("is_anonymous_vpn", rec.IsAnonymousVPN)
		set("is_hosting_provider", rec.IsHostingProvider)
		set("is_public_proxy", rec.IsPublicProxy)
		set("is_residential_proxy", rec.IsResidentialProxy)
		set("is_tor_exit_node", rec.IsTorExitNode)
		if err := insert(tree, rec.Network, m); err != nil {
			return err
		}
	}
	return write(tree, w)
}

// WriteCountry writes a GeoLite2-Country database holding country.iso_code
// for each network.
func WriteCountry(w io.Writer, networks []CountryNetwork) error {
	tree, err := newTree(Options{DatabaseType: "GeoLite2-Country"}, "Portcullis test Country database")
	if err != nil {
		return err
	}
	for _, n := range networks {
		m := mmdbtype.Map{
			"country": mmdbtype.Map{"iso_code": mmdbtype.String(n.ISOCode)},
		}
		if err := insert(tree, n.Network, m); err != nil {
			return err
		}
	}
	return write(tree, w)
}

func newTree(opts Options, description string) (*mmdbwriter.Tree, error) {
	epoch := buildEpoch
	if !opts.BuildTime.IsZero() {
		epoch = opts.BuildTime.Unix()
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		BuildEpoch:   epoch,
		DatabaseType: opts.DatabaseType,
		Description:  map[string]string{"en": description},
		Languages:    []string{"en"},
		// The test ranges are loopback and documentation networks, which
		// the writer refuses by default.
		IncludeReservedNetworks: true,
		RecordSize:              24,
	})
	if err != nil {
		return nil, fmt.Errorf("geoiptest: new %s tree: %w", opts.DatabaseType, err)
	}
	return tree, nil
}

func insert(tree *mmdbwriter.Tree, network netip.Prefix, m mmdbtype.Map) error {
	if !network.IsValid() {
		return fmt.Errorf("geoiptest: invalid network %v", network)
	}
	_, ipnet, err := net.ParseCIDR(network.Masked().String())
	if err != nil {
		return fmt.Errorf("geoiptest: %w", err)
	}
	if err := tree.Insert(ipnet, m); err != nil {
		return fmt.Errorf("geoiptest: insert %s: %w", network, err)
	}
	return nil
}

func write(tree *mmdbwriter.Tree, w io.Writer) error {
	if _, err := tree.WriteTo(w); err != nil {
		return fmt.Errorf("geoiptest: write database: %w", err)
	}
	return nil
}
