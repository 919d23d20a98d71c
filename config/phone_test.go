package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPhoneSettings(t *testing.T) {
	const base = "geoip: {allow_missing: true}\nroutes:\n  - {name: app, host: app.example, upstream: 'http://127.0.0.1:1'}\n"
	secret := filepath.Join(t.TempDir(), "carrier.key")
	if err := os.WriteFile(secret, []byte("key-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTCULLIS_TEST_CARRIER_KEY", "key-456")
	lookup := "phone:\n  carrier_lookup: {url: 'https://lookup.example/{e164}', field: line_type, header: X-Api-Key"
	tests := []struct {
		name, yaml, problem, secret string
	}{
		{"defaults", base, "", ""},
		{"secret from a file", base + lookup + ", secret_file: '" + secret + "'}\n", "", "key-123"},
		{"secret from the environment", base + lookup + ", secret_env: PORTCULLIS_TEST_CARRIER_KEY}\n", "", "key-456"},
		{"header without a secret", base + lookup + "}\n", "needs secret_file or secret_env", ""},
		{"both secrets", base + lookup + ", secret_file: '" + secret + "', secret_env: PORTCULLIS_TEST_CARRIER_KEY}\n", "not both", ""},
		{"unset environment variable", base + lookup + ", secret_env: PORTCULLIS_TEST_NO_SUCH_VAR}\n", "PORTCULLIS_TEST_NO_SUCH_VAR is not set", ""},
		{"missing secret file", base + lookup + ", secret_file: /nonexistent/carrier.key}\n", "secret_file", ""},
		{"no field", base + "phone:\n  carrier_lookup: {url: 'https://lookup.example/{e164}'}\n", "field: is required", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("Parse = %v, want a problem mentioning %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Phone.DefaultRegion != "US" {
				t.Errorf("phone.default_region = %q, want US by default", f.Phone.DefaultRegion)
			}
			got, err := f.Phone.CarrierLookup.Secret()
			if err != nil || got != tc.secret {
				t.Errorf("Secret() = %q, %v; want %q", got, err, tc.secret)
			}
		})
	}
}
