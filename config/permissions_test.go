package config

import "testing"

func TestAllowInsecurePermissions(t *testing.T) {
	const routes = "geoip: {allow_missing: true}\nroutes:\n  - {name: app, host: app.example, upstream: 'http://127.0.0.1:1'}\n"
	tests := []struct {
		name, yaml string
		want       bool
	}{
		{"default refuses", routes, false},
		{"set", routes + "store: {allow_insecure_permissions: true}\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if f.Store.AllowInsecurePermissions != tc.want {
				t.Errorf("store.allow_insecure_permissions = %v, want %v", f.Store.AllowInsecurePermissions, tc.want)
			}
		})
	}
}
