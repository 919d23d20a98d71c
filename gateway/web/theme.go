package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
)

// Brand is the bank's own look on every page: its name, its logo and its
// colours.
type Brand struct {
	// Name is shown at the top of every page and in its title; empty
	// shows none.
	Name string
	// Logo is an image shown beside the name (served at
	// /.portcullis/static/brand/logo), and LogoType its media type; nil
	// shows none.
	Logo     []byte
	LogoType string
	// Colors override the style sheet's: each a "#rrggbb" value.
	Colors Colors
}

// Colors are the pages' colours, each "#rrggbb" or empty for the default.
type Colors struct {
	Accent     string // buttons, links, focus rings
	Ink        string // text
	Page       string // the page around the card
	Card       string // the card the form sits on
	Bad        string // error text
	ButtonText string // text on buttons
}

// HasLogo reports whether the brand has a logo, for templates.
func (b Brand) HasLogo() bool { return len(b.Logo) > 0 }

// Theme is an operator's look for the pages: the brand, and a directory
// whose templates/*.html replace the built-in page templates of the same
// name (layout.html holds the "head" and "foot" every page uses) and whose
// static/ files replace or add to the built-in style sheet and images, as
// Keycloak themes and Authelia's assets allow.
type Theme struct {
	Brand Brand
	Dir   fs.FS // nil for the built-in pages
}

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// LogoTypes are the image types a logo may have, by file extension.
var LogoTypes = map[string]string{
	".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
	".webp": "image/webp", ".gif": "image/gif",
}

// MaxLogoBytes bounds a logo.
const MaxLogoBytes = 256 << 10

// check reports what is wrong with the brand, all at once.
func (b Brand) check() error {
	var errs []error
	for _, c := range []struct{ name, v string }{
		{"accent", b.Colors.Accent}, {"ink", b.Colors.Ink}, {"page", b.Colors.Page},
		{"card", b.Colors.Card}, {"bad", b.Colors.Bad}, {"button_text", b.Colors.ButtonText},
	} {
		if c.v != "" && !hexColor.MatchString(c.v) {
			errs = append(errs, fmt.Errorf("colour %s: %q is not #rrggbb", c.name, c.v))
		}
	}
	if len(b.Logo) > MaxLogoBytes {
		errs = append(errs, fmt.Errorf("logo: %d bytes, at most %d", len(b.Logo), MaxLogoBytes))
	}
	if len(b.Logo) > 0 && !strings.HasPrefix(b.LogoType, "image/") {
		errs = append(errs, fmt.Errorf("logo: type %q is not an image", b.LogoType))
	}
	if len(b.Logo) > 0 && b.Name == "" {
		errs = append(errs, errors.New("logo: needs the brand's name beside it (for people who cannot see it)"))
	}
	if strings.ContainsAny(b.Name, "\r\n") || len(b.Name) > 100 {
		errs = append(errs, errors.New("name: one line of at most 100 bytes"))
	}
	return errors.Join(errs...)
}

// css is the style sheet that sets the brand's colours over style.css.
func (b Brand) css() []byte {
	var buf bytes.Buffer
	buf.WriteString(":root {")
	for _, c := range []struct{ prop, v string }{
		{"--accent", b.Colors.Accent}, {"--ink", b.Colors.Ink}, {"--page", b.Colors.Page},
		{"--card", b.Colors.Card}, {"--bad", b.Colors.Bad}, {"--button-ink", b.Colors.ButtonText},
	} {
		if hexColor.MatchString(c.v) { // checked already; never write anything else
			fmt.Fprintf(&buf, " %s: %s;", c.prop, c.v)
		}
	}
	buf.WriteString(" }\n")
	return buf.Bytes()
}

// themeFuncs are the functions page templates may call. brand is the
// site's Brand; each Site binds its own (see Site.bind).
var themeFuncs = template.FuncMap{"brand": func() Brand { return Brand{} }}

// CheckBrand reports what is wrong with b, all at once: colours that are
// not #rrggbb, a logo too large or not an image, a logo without a name.
func CheckBrand(b Brand) error { return b.check() }

// CheckTheme reports whether t's templates parse over the built-in pages,
// as UseTheme will parse them.
func CheckTheme(t Theme) error {
	_, err := bind(basePages, t)
	return err
}

// UseTheme gives the site's pages t's brand and templates. A template in
// the theme directory that does not parse, a brand that does not check,
// are errors, and the site keeps its pages.
func (s *Site) UseTheme(t Theme) error {
	if err := t.Brand.check(); err != nil {
		return fmt.Errorf("theme: %w", err)
	}
	pages, err := bind(basePages, t)
	if err != nil {
		return err
	}
	s.themeMu.Lock()
	defer s.themeMu.Unlock()
	s.brand = t.Brand
	s.brandCSS = t.Brand.css()
	s.themeDir = t.Dir
	s.pages = pages
	s.roomPages.Clear()
	return nil
}

// bind returns a copy of pages whose templates call th's brand, with the
// theme directory's templates parsed over it.
func bind(pages *template.Template, th Theme) (*template.Template, error) {
	c, err := pages.Clone()
	if err != nil {
		return nil, fmt.Errorf("theme: %w", err)
	}
	brand := th.Brand
	c.Funcs(template.FuncMap{"brand": func() Brand { return brand }})
	if th.Dir == nil {
		return c, nil
	}
	names, err := fs.Glob(th.Dir, "templates/*.html")
	if err != nil || len(names) == 0 {
		return c, err
	}
	if _, err := c.ParseFS(th.Dir, names...); err != nil {
		return nil, fmt.Errorf("theme templates: %w", err)
	}
	return c, nil
}

// pagesFor returns a room's templates (see ParsePages) bound to this site,
// made once per room.
func (s *Site) pagesFor(t *template.Template) (*template.Template, error) {
	if c, ok := s.roomPages.Load(t); ok {
		return c.(*template.Template), nil
	}
	s.themeMu.Lock()
	defer s.themeMu.Unlock()
	if c, ok := s.roomPages.Load(t); ok {
		return c.(*template.Template), nil
	}
	c, err := bind(t, Theme{Brand: s.brand, Dir: s.themeDir})
	if err != nil {
		return nil, err
	}
	s.roomPages.Store(t, c)
	return c, nil
}

// Static serves the pages' style sheet and images under Prefix+"static/":
// the brand's colours (brand.css) and logo (brand/logo), the theme
// directory's static/ files, then the built-in ones.
func (s *Site) Static() http.Handler {
	builtin := http.FileServerFS(staticFS)
	return http.StripPrefix(Prefix+"static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.themeMu.Lock()
		brandCSS, brand, dir := s.brandCSS, s.brand, s.themeDir
		s.themeMu.Unlock()
		w.Header().Set("X-Content-Type-Options", "nosniff")
		switch r.URL.Path {
		case "brand.css":
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(brandCSS)
			return
		case "brand/logo":
			if !brand.HasLogo() {
				http.NotFound(w, r)
				return
			}
			// An SVG opened on its own must not run anything.
			w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
			w.Header().Set("Content-Type", brand.LogoType)
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(brand.Logo)
			return
		}
		if dir != nil {
			name := path.Join("static", path.Clean("/" + r.URL.Path)[1:])
			if info, err := fs.Stat(dir, name); err == nil && !info.IsDir() {
				http.ServeFileFS(w, r, dir, name)
				return
			}
		}
		builtin.ServeHTTP(w, r)
	}))
}
