package compose

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/policies"
)

// applyShadow turns the engine's shadow evaluation on, changes it or turns
// it off, as c says.
func applyShadow(ctx context.Context, engine *policies.Engine, c config.Policies) error {
	if c.ShadowDir == "" && c.ShadowBundle == "" {
		return engine.SetShadow(ctx, nil)
	}
	if c.ShadowDir != "" {
		return engine.SetShadow(ctx, &policies.Shadow{Dir: c.ShadowDir})
	}
	// The shadow bundle is verified with the same key as the live one.
	pc, err := PolicySource(config.Policies{Bundle: c.ShadowBundle, BundlePublicKey: c.BundlePublicKey,
		BundleKeyID: c.BundleKeyID, BundleUnsigned: c.BundleUnsigned})
	if err != nil {
		return err
	}
	return engine.SetShadow(ctx, &policies.Shadow{Bundle: pc.Bundle})
}

// runShadow keeps the shadow evaluation as the configuration file says:
// it reloads the shadow policies every second while shadow is on, and on
// SIGHUP (a value on hup) calls onHUP (the customer directory re-reads its
// file or token), then re-reads the file's policies.shadow_dir and
// shadow_bundle and turns shadow on, off or to another candidate. Nothing
// else in the file is applied without a restart; a file that does not load
// changes nothing.
func runShadow(ctx context.Context, engine *policies.Engine, cfg *config.File, logger *slog.Logger, hup <-chan os.Signal, onHUP func()) {
	current := cfg.Policies
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_ = engine.ReloadShadow(ctx) // a failure is logged by the engine
		case <-hup:
			if onHUP != nil {
				onHUP()
			}
			if cfg.Source == "" {
				continue
			}
			next, err := config.Load(cfg.Source)
			if err != nil {
				logger.Error("configuration reload failed; shadow policies unchanged", "error", err)
				continue
			}
			p := next.Policies
			if p.ShadowDir == current.ShadowDir && p.ShadowBundle == current.ShadowBundle {
				logger.Info("configuration re-read; shadow policies unchanged")
				continue
			}
			if err := applyShadow(ctx, engine, p); err != nil {
				logger.Error("shadow policies not changed", "error", err)
				continue
			}
			current = p
		}
	}
}

// shadowMetrics exports the engine's shadow evaluation counters.
func shadowMetrics(engine *policies.Engine) prometheus.Collector {
	decisions := prometheus.NewDesc("portcullis_policy_shadow_decisions_total",
		"Decisions offered to the shadow policy, by result: evaluated, dropped (queue full) or failed.", []string{"result"}, nil)
	diffs := prometheus.NewDesc("portcullis_policy_shadow_differences_total",
		"Decisions the shadow policy would have made differently, by point and the live and shadow reasons.",
		[]string{"point", "live_reason", "shadow_reason"}, nil)
	return collectorFunc{descs: []*prometheus.Desc{decisions, diffs}, collect: func(ch chan<- prometheus.Metric) {
		st := engine.ShadowStats()
		ch <- prometheus.MustNewConstMetric(decisions, prometheus.CounterValue, float64(st.Evaluated), "evaluated")
		ch <- prometheus.MustNewConstMetric(decisions, prometheus.CounterValue, float64(st.Dropped), "dropped")
		ch <- prometheus.MustNewConstMetric(decisions, prometheus.CounterValue, float64(st.Failed), "failed")
		for d, n := range st.Differences {
			ch <- prometheus.MustNewConstMetric(diffs, prometheus.CounterValue, float64(n), string(d.Point), d.LiveReason, d.ShadowReason)
		}
	}}
}
