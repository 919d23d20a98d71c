package main

import (
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
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()+"/"+m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if got["portcullis_geoip_reloads_total/failed"] != 1 || got["portcullis_geoip_reloads_total/ok"] != 0 {
		t.Fatalf("metrics %v, want one failed reload and none ok", got)
	}
}
