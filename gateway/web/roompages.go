package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
)

// ParsePages parses a room's own page templates, the files of fsys that
// patterns match, together with the shared layout (the "head" and "foot"
// templates every page uses), so that a room whose pages need data of
// their own still looks like the rest. Each page's data must have a Title.
func ParsePages(fsys fs.FS, patterns ...string) (*template.Template, error) {
	t, err := template.New("").Funcs(themeFuncs).ParseFS(pageFS, "pages/layout.html")
	if err != nil {
		return nil, err
	}
	return t.ParseFS(fsys, patterns...)
}

// RenderPage writes one of a room's own pages (see ParsePages) as Render
// writes a shared one: into a buffer first, so that a template failure is a
// clean error page.
func (s *Site) RenderPage(w http.ResponseWriter, r *http.Request, status int, t *template.Template, name string, data any) {
	var buf bytes.Buffer
	t, err := s.pagesFor(t)
	if err == nil {
		err = t.ExecuteTemplate(&buf, name+".html", data)
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "error", err)
		http.Error(w, MsgUnavailable, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
