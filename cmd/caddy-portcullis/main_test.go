package main

import (
	"os"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The binary has Portcullis's modules beside Caddy's standard ones (their
// directive order registers without a clash), and both example Caddyfiles,
// Caddy in front of a standalone gateway and the gateway inside Caddy,
// adapt with it.
func TestModulesAndExamples(t *testing.T) {
	for _, id := range []string{"http.handlers.portcullis", "http.handlers.portcullis_admin", "http.handlers.reverse_proxy", "caddy.storage.file_system"} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	for _, path := range []string{"../../Caddyfile.example", "../../Caddyfile.embedded.example"} {
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": path})
		if err != nil {
			t.Errorf("%s: %v", path, err)
		}
		for _, w := range warnings {
			t.Errorf("%s: warning: %s", path, w)
		}
	}
}
