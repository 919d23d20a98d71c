package web

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func themedSite(t *testing.T, th Theme) *Site {
	t.Helper()
	s := NewSite(SiteConfig{Hosts: []string{"bank.example"}}, slog.New(slog.DiscardHandler), rand.Reader)
	if err := s.UseTheme(th); err != nil {
		t.Fatal(err)
	}
	return s
}

func render(t *testing.T, s *Site, name string) string {
	t.Helper()
	w := httptest.NewRecorder()
	s.Render(w, httptest.NewRequest("GET", "/", nil), 200, name, PageData{Title: "Sign in"})
	if w.Code != 200 {
		t.Fatalf("render %s: %d %s", name, w.Code, w.Body)
	}
	return w.Body.String()
}

func get(t *testing.T, h http.Handler, path string) *http.Response {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	return w.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBrandOnEveryPage(t *testing.T) {
	logo := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	s := themedSite(t, Theme{Brand: Brand{Name: "Example Bank", Logo: logo, LogoType: "image/svg+xml",
		Colors: Colors{Accent: "#00457c", Page: "#fafafa"}}})
	page := render(t, s, "login")
	for _, want := range []string{"<title>Sign in · Example Bank</title>", `<header class="brand"><img src="/.portcullis/static/brand/logo" alt=""><span>Example Bank</span></header>`,
		`href="/.portcullis/static/brand.css"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s:\n%s", want, page)
		}
	}
	static := s.Static()
	css := get(t, static, Prefix+"static/brand.css")
	if got := body(t, css); got != ":root { --accent: #00457c; --page: #fafafa; }\n" || css.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("brand.css %q (%s)", got, css.Header.Get("Content-Type"))
	}
	img := get(t, static, Prefix+"static/brand/logo")
	if body(t, img) != string(logo) || img.Header.Get("Content-Type") != "image/svg+xml" ||
		!strings.Contains(img.Header.Get("Content-Security-Policy"), "sandbox") || img.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("logo served with %v", img.Header)
	}
	if r := get(t, static, Prefix+"static/style.css"); r.StatusCode != 200 || !strings.Contains(body(t, r), "--page") {
		t.Errorf("built-in style sheet: %d", r.StatusCode)
	}
}

func TestNoBrandShowsNoHeader(t *testing.T) {
	s := themedSite(t, Theme{})
	page := render(t, s, "login")
	if strings.Contains(page, `class="brand"`) || !strings.Contains(page, "<title>Sign in</title>") {
		t.Errorf("page:\n%s", page)
	}
	if r := get(t, s.Static(), Prefix+"static/brand/logo"); r.StatusCode != 404 {
		t.Errorf("logo without one: %d", r.StatusCode)
	}
}

func TestBadBrandsAreRefused(t *testing.T) {
	for _, b := range []Brand{
		{Colors: Colors{Accent: "red; } body { display: none"}},
		{Colors: Colors{Ink: "#12345"}},
		{Name: "Bank", Logo: []byte("x"), LogoType: "text/html"},
		{Logo: []byte("<svg/>"), LogoType: "image/svg+xml"},
		{Name: "Bank", Logo: make([]byte, MaxLogoBytes+1), LogoType: "image/png"},
		{Name: "two\nlines"},
	} {
		s := NewSite(SiteConfig{}, slog.New(slog.DiscardHandler), rand.Reader)
		if err := s.UseTheme(Theme{Brand: b}); err == nil {
			t.Errorf("%+v accepted", b.Colors)
		}
	}
}

func TestThemeDirectoryOverridesPagesAndStatic(t *testing.T) {
	dir := fstest.MapFS{
		"templates/layout.html": {Data: []byte(`{{define "head"}}<!doctype html><title>{{.Title}}</title><div class="bank-frame">{{brand.Name}}{{end}}{{define "foot"}}</div>{{end}}`)},
		"templates/login.html":  {Data: []byte(`{{template "head" .}}<form class="bank-login"></form>{{template "foot" .}}`)},
		"static/style.css":      {Data: []byte("body { color: #123456 }")},
		"static/img/seal.png":   {Data: []byte("PNG")},
	}
	s := themedSite(t, Theme{Brand: Brand{Name: "Example Bank"}, Dir: dir})
	if page := render(t, s, "login"); !strings.Contains(page, `<div class="bank-frame">Example Bank<form class="bank-login">`) {
		t.Errorf("login page not overridden:\n%s", page)
	}
	if page := render(t, s, "message"); !strings.Contains(page, `class="bank-frame"`) {
		t.Errorf("layout not overridden on another page:\n%s", page)
	}
	// A room's own pages get the theme's layout too.
	room, err := ParsePages(fstest.MapFS{"enrol.html": {Data: []byte(`{{template "head" .}}enrol{{template "foot" .}}`)}}, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.RenderPage(w, httptest.NewRequest("GET", "/", nil), 200, room, "enrol", PageData{Title: "Create a profile"})
	if !strings.Contains(w.Body.String(), `<div class="bank-frame">Example Bank`) {
		t.Errorf("room page:\n%s", w.Body)
	}
	static := s.Static()
	if got := body(t, get(t, static, Prefix+"static/style.css")); got != "body { color: #123456 }" {
		t.Errorf("style.css %q", got)
	}
	if got := body(t, get(t, static, Prefix+"static/img/seal.png")); got != "PNG" {
		t.Errorf("added file %q", got)
	}
	for _, p := range []string{"static/../templates/login.html", "static/%2e%2e/templates/login.html", "static/../../etc/passwd"} {
		if r := get(t, static, Prefix+p); r.StatusCode == 200 && strings.Contains(body(t, r), "bank-login") {
			t.Errorf("%s served a template", p)
		}
	}
}

func TestBrokenThemeKeepsThePages(t *testing.T) {
	s := themedSite(t, Theme{Brand: Brand{Name: "Example Bank"}})
	broken := fstest.MapFS{"templates/login.html": {Data: []byte(`{{template "head" .}`)}}
	if err := s.UseTheme(Theme{Dir: broken}); err == nil {
		t.Fatal("broken template accepted")
	}
	if page := render(t, s, "login"); !strings.Contains(page, "Example Bank") {
		t.Errorf("pages lost after a refused theme:\n%s", page)
	}
}
