package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestForwardAuthTrustedNetworks(t *testing.T) {
	const routes = "geoip: {allow_missing: true}\nroutes:\n  - {name: app, host: app.example, upstream: 'http://127.0.0.1:1'}\n"
	f, err := Parse([]byte(routes + "forward_auth:\n  trusted_networks: [10.1.0.0/16, 192.0.2.7, '::ffff:192.0.2.8']\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("192.0.2.8/32")}
	if got := f.Gateway().ForwardAuth.TrustedNetworks; !slices.Equal(got, want) {
		t.Fatalf("trusted networks %v, want %v", got, want)
	}

	f, err = Parse([]byte(routes))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Gateway().ForwardAuth.TrustedNetworks; len(got) != 0 {
		t.Fatalf("default trusted networks %v, want none (the endpoint off)", got)
	}

	_, err = Parse([]byte(routes + "forward_auth:\n  trusted_networks: [10.0.0.0/33, proxy.internal, 0.0.0.0/0]\n  trusted_peers: []\n"))
	if err == nil {
		t.Fatal("bad forward_auth accepted")
	}
	for _, want := range []string{
		"5:22: forward_auth.trusted_networks[0]: is not an IP address or CIDR network",
		"5:35: forward_auth.trusted_networks[1]: is not an IP address or CIDR network",
		"5:51: forward_auth.trusted_networks[2]: 0.0.0.0/0 would trust every address",
		"trusted_peers",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}
