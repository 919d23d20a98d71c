package gateway

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
)

//go:embed pages/*.html
var pageFS embed.FS

//go:embed pages/static
var staticRoot embed.FS

var staticFS = mustSub(staticRoot, "pages/static")

var pages = template.Must(template.ParseFS(pageFS, "pages/*.html"))

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// pageData is what every page template may show.
type pageData struct {
	Title    string
	Message  string
	Error    string
	CSRF     string
	Return   string
	Username string
	Link     string
}

// render writes a page. Templates are executed into a buffer first so that a
// template failure becomes a clean error page, never half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name+".html", data); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "error", err)
		http.Error(w, msgUnavailable, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
