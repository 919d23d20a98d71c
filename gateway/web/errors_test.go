package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"crypto/rand"
)

func TestWantsJSON(t *testing.T) {
	for _, tc := range []struct {
		path   string
		accept []string
		want   bool
	}{
		{"/.portcullis/api/v1/login", nil, true},
		{"/.portcullis/api/v1/session", []string{"text/html"}, true},
		{"/account", nil, false},
		{"/account", []string{"*/*"}, false},
		{"/account", []string{"application/json"}, true},
		{"/account", []string{"application/json; charset=utf-8"}, true},
		{"/account", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, false},
		{"/account", []string{"application/json, text/plain, */*"}, true},
		{"/account", []string{"text/html;q=0.5, application/json"}, true},
		{"/account", []string{"application/json;q=0.5, text/html"}, false},
		{"/account", []string{"application/json;q=0"}, false},
		{"/account", []string{"application/json;q=abc"}, false},
		{"/account", []string{"text/html", "application/json"}, false},
		{"/account", []string{"garbage;;;"}, false},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.path, nil)
		for _, a := range tc.accept {
			r.Header.Add("Accept", a)
		}
		if got := WantsJSON(r); got != tc.want {
			t.Errorf("WantsJSON(%s, Accept %q) = %v, want %v", tc.path, tc.accept, got, tc.want)
		}
	}
}

// A script that asks for JSON gets a refusal it can read, wherever the
// refusal comes from; a browser gets the page.
func TestRenderErrorAnswersInTheFormAsked(t *testing.T) {
	site := NewSite(SiteConfig{Hosts: []string{"bank.example"}}, slog.New(slog.DiscardHandler), rand.Reader)
	refusal := Forbidden("not_permitted", errors.New("secret detail"))

	r := httptest.NewRequest(http.MethodGet, "https://bank.example/accounts", nil)
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	site.RenderError(w, r, refusal)
	if ct := w.Header().Get("Content-Type"); w.Code != http.StatusForbidden || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("JSON client: %d %s, want a JSON 403", w.Code, ct)
	}
	var body APIResponse
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Status != "denied" || body.Reason != "not_permitted" {
		t.Fatalf("JSON client body %s (%v)", w.Body, err)
	}

	r = httptest.NewRequest(http.MethodGet, "https://bank.example/accounts", nil)
	r.Header.Set("Accept", "text/html")
	w = httptest.NewRecorder()
	site.RenderError(w, r, refusal)
	if ct := w.Header().Get("Content-Type"); w.Code != http.StatusForbidden || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("browser: %d %s, want an HTML 403", w.Code, ct)
	}
	if strings.Contains(w.Body.String(), "secret detail") {
		t.Fatal("the logged error reached the page")
	}

	// Anything but an *Error is a failed dependency: 503, never a pass.
	w = httptest.NewRecorder()
	site.RenderError(w, r, errors.New("store down"))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("plain error: %d, want 503", w.Code)
	}
}
