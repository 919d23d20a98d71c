package web

import (
	"bytes"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"net/http"
)

//go:embed pages/*.html
var pageFS embed.FS

//go:embed pages/static
var staticRoot embed.FS

var staticFS = mustSub(staticRoot, "pages/static")

// basePages are the built-in page templates; each Site renders its own
// copy, bound to its brand and theme (theme.go).
var basePages = template.Must(template.New("").Funcs(themeFuncs).ParseFS(pageFS, "pages/*.html"))

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// PageData is what every page template may show.
type PageData struct {
	Title    string
	Message  string
	Error    string
	CSRF     string
	Return   string
	Username string
	Link     string
	// Methods are the buttons of a choice (the step-up methods).
	Methods []Choice
	// Support is a line pointing to the support number.
	Support string
	// Devices and Factors are the settings page's lists: the registered
	// devices and the second factors enrolled.
	Devices []Item
	Factors []Item
	// Sessions are the settings page's signed-in sessions (ID is a
	// session's handle, never its ID).
	// Products are the products (routes) the settings page's profile
	// reaches.
	Products []string
	Sessions []Item
	// Phone is the security phone, masked.
	Phone string
	// Questions are the challenge questions to choose from (Value is the
	// question's ID, Label its text).
	Questions []Choice
	// Secret is an authenticator app's key for typing in, and QRCode the
	// same key as an image to scan (see PNGData).
	Secret string
	QRCode template.URL
}

// Item is one entry of a list on a page (a registered device, a second
// factor): the ID its button submits, and its dates as people read them.
type Item struct {
	ID       string
	Kind     string
	Name     string
	Added    string
	LastUsed string
	// Current marks the entry of the request's own session.
	Current bool
}

// PNGData is a PNG the gateway made, as a data: URL an <img> may show (the
// page CSP allows data: images). html/template refuses data: URLs it is not
// told are safe; this one holds nothing but base64.
func PNGData(png []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

// Choice is one button of a choice: the value it submits and its label.
type Choice struct {
	Value string
	Label string
}

// Render writes a page. Templates are executed into a buffer first so that a
// template failure becomes a clean error page, never half a page.
func (s *Site) Render(w http.ResponseWriter, r *http.Request, status int, name string, data PageData) {
	var buf bytes.Buffer
	s.themeMu.Lock()
	pages := s.pages
	s.themeMu.Unlock()
	if err := pages.ExecuteTemplate(&buf, name+".html", data); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "error", err)
		http.Error(w, MsgUnavailable, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
