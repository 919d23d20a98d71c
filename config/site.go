package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/portcullis/portcullis/gateway/web"
)

// Configured reports whether a directory of customer records is set.
func (d Directory) Configured() bool { return d.File != "" || d.URL != "" }

// validate checks what can be checked without the directory plugin: one
// source, the settings each needs, files that exist. What only the plugin
// checks (the customer file's records, the token file's mode, the URL's
// form) is checked by serve and check when they open it.
func (d Directory) validate() []Problem {
	var ps []Problem
	add := func(path, msg string) { ps = append(ps, Problem{Path: path, Message: msg}) }
	switch {
	case d.File != "" && d.URL != "":
		add("directory.url", "set file or url, not both")
	case d.URL == "" && (d.TokenFile != "" || d.CAFile != "" || d.Timeout != 0):
		add("directory", "token_file, ca_file and timeout need directory.url")
	case d.URL != "" && d.TokenFile == "":
		add("directory.token_file", "is required with directory.url")
	}
	if d.Timeout < 0 {
		add("directory.timeout", "must not be negative")
	}
	for _, f := range []struct{ path, file string }{
		{"directory.file", d.File}, {"directory.token_file", d.TokenFile}, {"directory.ca_file", d.CAFile},
	} {
		if f.file == "" {
			continue
		}
		if err := readable(f.file); err != nil {
			add(f.path, err.Error())
		}
	}
	return ps
}

// Theme is the pages' look: the brand (its logo read from its file) and the
// theme directory. The brand's name defaults to the organisation.
func (f *File) Theme() (web.Theme, error) {
	b := f.Brand
	c := b.Colors
	t := web.Theme{Brand: web.Brand{Name: b.Name, Colors: web.Colors{Accent: c.Accent, Ink: c.Ink, Page: c.Page,
		Card: c.Card, Bad: c.Bad, ButtonText: c.ButtonText}}}
	if t.Brand.Name == "" {
		t.Brand.Name = f.Organisation
	}
	if b.Logo != "" {
		typ, ok := web.LogoTypes[strings.ToLower(filepath.Ext(b.Logo))]
		if !ok {
			return web.Theme{}, fmt.Errorf("brand.logo: %s is not an .svg, .png, .jpg, .webp or .gif file", b.Logo)
		}
		st, err := os.Stat(b.Logo)
		switch {
		case err != nil:
			return web.Theme{}, fmt.Errorf("brand.logo: %w", err)
		case !st.Mode().IsRegular():
			return web.Theme{}, fmt.Errorf("brand.logo: %s is not a regular file", b.Logo)
		case st.Size() > web.MaxLogoBytes:
			return web.Theme{}, fmt.Errorf("brand.logo: %s has %d bytes, at most %d", b.Logo, st.Size(), web.MaxLogoBytes)
		}
		if t.Brand.Logo, err = os.ReadFile(b.Logo); err != nil {
			return web.Theme{}, fmt.Errorf("brand.logo: %w", err)
		}
		t.Brand.LogoType = typ
	}
	if f.ThemeDir != "" {
		st, err := os.Stat(f.ThemeDir)
		if err != nil {
			return web.Theme{}, fmt.Errorf("theme_dir: %w", err)
		}
		if !st.IsDir() {
			return web.Theme{}, fmt.Errorf("theme_dir: %s is not a directory", f.ThemeDir)
		}
		t.Dir = os.DirFS(f.ThemeDir)
		if _, err := fs.Stat(t.Dir, "templates"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return web.Theme{}, fmt.Errorf("theme_dir: %w", err)
		}
	}
	return t, nil
}

// validateTheme reports a brand or theme serve would refuse: the logo's
// file, the colours, the templates of the theme directory.
func (f *File) validateTheme() []Problem {
	t, err := f.Theme()
	if err != nil {
		path, msg, _ := strings.Cut(err.Error(), ": ")
		return []Problem{{Path: path, Message: msg}}
	}
	if err := web.CheckBrand(t.Brand); err != nil {
		return []Problem{{Path: "brand", Message: err.Error()}}
	}
	if err := web.CheckTheme(t); err != nil {
		return []Problem{{Path: "theme_dir", Message: err.Error()}}
	}
	return nil
}
