package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDirectoryAndBrand: the customer directory's settings, the brand and
// the theme directory are checked as serve will use them, each problem on
// its setting's line, and paths are taken relative to the configuration
// file. (The customer file's records are the plugin's to check: see
// TestCheckDirectory in cmd/portcullis.)
func TestDirectoryAndBrand(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("customers.json", []byte(`{"customers": []}`), 0o600)
	write("token", []byte("s3cret-token\n"), 0o600)
	write("logo.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), 0o644)
	write("logo.txt", []byte("not an image"), 0o644)
	write("huge.png", bytes.Repeat([]byte{0}, 300<<10), 0o644)
	write("theme/templates/login.html", []byte(`{{define "login"}}{{template "head" .}}custom{{template "foot" .}}{{end}}`), 0o644)
	write("badtheme/templates/login.html", []byte(`{{define "login"}}{{if}}{{end}}`), 0o644)

	const head = "geoip: {allow_missing: true}\nroutes: [{name: a, host: a.example, upstream: 'http://127.0.0.1:1'}]\norganisation: Example Bank\n"
	for _, tc := range []struct {
		name, yaml string
		want       string // a problem's text, "" for none
	}{
		{"none", "", ""},
		{"a customer file", "directory: {file: customers.json}\n", ""},
		{"a missing customer file", "directory: {file: nope.json}\n", "directory.file: open " + filepath.Join(dir, "nope.json")},
		{"file and url", "directory: {file: customers.json, url: 'https://dir.example', token_file: token}\n", "directory.url: set file or url, not both"},
		{"an HTTP directory", "directory: {url: 'https://dir.example', token_file: token, timeout: 3s}\n", ""},
		{"an HTTP directory without a token", "directory: {url: 'https://dir.example'}\n", "directory.token_file: is required with directory.url"},
		{"a token without a url", "directory: {token_file: token}\n", "directory: token_file, ca_file and timeout need directory.url"},
		{"a brand", "brand: {name: Example Bank, logo: logo.svg, colors: {accent: '#0b5d3b'}}\ntheme_dir: theme\n", ""},
		{"a colour that is not #rrggbb", "brand: {colors: {accent: green}}\n", `brand: colour accent: "green" is not #rrggbb`},
		{"a logo that is not an image", "brand: {logo: logo.txt}\n", "brand.logo: " + filepath.Join(dir, "logo.txt") + " is not an .svg"},
		{"a logo too large", "brand: {logo: huge.png}\n", "brand.logo: " + filepath.Join(dir, "huge.png") + " has 307200 bytes"},
		{"a missing logo", "brand: {logo: none.svg}\n", "brand.logo: stat " + filepath.Join(dir, "none.svg")},
		{"a theme that is a file", "theme_dir: logo.svg\n", "theme_dir: " + filepath.Join(dir, "logo.svg") + " is not a directory"},
		{"a theme template that does not parse", "theme_dir: badtheme\n", "theme_dir: theme templates: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "portcullis.yaml")
			if err := os.WriteFile(path, []byte(head+tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Load(path)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("problems:\n%v\nwant one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			th, err := f.Theme()
			if err != nil {
				t.Fatal(err)
			}
			if th.Brand.Name != "Example Bank" {
				t.Errorf("brand name %q, want the organisation's", th.Brand.Name)
			}
			if f.Brand.Logo != "" && (th.Brand.LogoType != "image/svg+xml" || !bytes.HasPrefix(th.Brand.Logo, []byte("<svg"))) {
				t.Errorf("logo %q (%s), want the svg file", th.Brand.Logo, th.Brand.LogoType)
			}
			if (f.ThemeDir != "") != (th.Dir != nil) {
				t.Errorf("theme_dir %q gave theme directory %v", f.ThemeDir, th.Dir)
			}
		})
	}
}
