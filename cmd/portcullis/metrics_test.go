package main

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/plugins/geoip"
)

func TestGeoIPReloadsAreCounted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anon.mmdb")
	good, err := os.ReadFile("../../testdata/geoip/GeoIP2-Anonymous-IP-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := geoip.Open(geoip.Config{AnonymousIPPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.WriteFile(path, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("a garbage database reloaded")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(geoipReloads(r))
	got := gatherCounters(t, reg)
	if got["portcullis_geoip_reloads_total{failed}"] != 1 || got["portcullis_geoip_reloads_total{ok}"] != 0 {
		t.Fatalf("metrics %v, want one failed reload and none ok", got)
	}
}

func TestRequestsAreCountedByStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := instrument(reg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/stream":
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
		case "/informational":
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusTeapot)
		case "/hijack":
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack through the metrics writer: %v", err)
				return
			}
			conn.Close()
		default:
			io.WriteString(w, "ok")
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/", "/", "/missing", "/stream", "/informational"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A POST, which the client does not retry on the closed connection.
	if _, err := http.Post(srv.URL+"/hijack", "text/plain", nil); err == nil {
		t.Error("the hijacked request was answered")
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	// The hijacked request is counted as 200, as promhttp counts it.
	want := map[string]uint64{"200": 4, "404": 1, "418": 1}
	if !maps.Equal(got, want) {
		t.Errorf("requests by code = %v, want %v", got, want)
	}
}
