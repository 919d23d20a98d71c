package compose

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/policies"
)

// TestShadowFollowsTheConfigurationOnSIGHUP runs the shadow loop as serve
// does: a candidate that stops blocking VPNs is shadowed from the start,
// its differences are counted in the metrics, and SIGHUP after editing the
// file turns shadow off without a restart.
func TestShadowFollowsTheConfigurationOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	candidate := filepath.Join(dir, "candidate")
	if err := os.CopyFS(candidate, os.DirFS("../../rego")); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(candidate, "data.json")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, data, []byte(strings.Replace(string(b), `"anonymous_vpn": true`, `"anonymous_vpn": false`, 1)))
	cfgFile := filepath.Join(dir, "portcullis.yaml")
	base := "geoip: {allow_missing: true}\nroutes: [{name: a, host: a.example, upstream: 'http://127.0.0.1:1'}]\n"
	writeTestFile(t, cfgFile, []byte(base+"policies: {shadow_dir: candidate}\n"))
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	engine, dlog, err := NewPolicyEngine(t.Context(), cfg.Policies, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dlog.Close()
	if err := applyShadow(t.Context(), engine, cfg.Policies); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() {
		runShadow(ctx, engine, cfg, slog.New(slog.DiscardHandler), hup, nil)
		close(done)
	}()
	vpn := policies.Input{Point: policies.PointLogin, Client: policies.Client{IP: "203.0.113.9",
		Facts: policies.IPFacts{Checked: true, Anonymous: true, AnonymousVPN: true}}}
	if d := engine.Decide(t.Context(), vpn); d.Reason != "ip_anonymous_vpn" {
		t.Fatalf("live: %+v", d)
	}
	engine.WaitShadow()
	reg := prometheus.NewRegistry()
	reg.MustRegister(shadowMetrics(engine))
	if got := gatherCounters(t, reg); got["portcullis_policy_shadow_differences_total{ip_anonymous_vpn,login,ok}"] != 1 ||
		got["portcullis_policy_shadow_decisions_total{evaluated}"] != 1 {
		t.Fatalf("metrics %v", got)
	}

	writeTestFile(t, cfgFile, []byte(base))
	hup <- syscall.SIGHUP
	deadline := time.Now().Add(10 * time.Second)
	for engine.ShadowStats().Revision != "" {
		if time.Now().After(deadline) {
			t.Fatal("shadow still on after SIGHUP")
		}
		time.Sleep(10 * time.Millisecond)
	}
	engine.Decide(t.Context(), vpn)
	if got := engine.ShadowStats().Evaluated; got != 1 {
		t.Fatalf("%d evaluated after shadow off, want 1", got)
	}
	cancel()
	<-done
}

// gatherCounters reads every counter in reg as name{label values, in the
// order of the label names}.
func gatherCounters(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			got[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return got
}
