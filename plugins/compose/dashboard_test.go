package compose

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// descRecorder is a prometheus.Registerer that keeps the names of the
// metrics registered with it.
type descRecorder map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r[m[1]] = true
		}
	}
	return nil
}

func (r descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		r.Register(c)
	}
}

func (r descRecorder) Unregister(prometheus.Collector) bool { return false }

// Every query of the Grafana dashboard in deploy/ names a metric the gateway
// exports (or Prometheus's own up), so a renamed metric cannot leave a panel
// silently empty; and every panel has a query.
func TestGrafanaDashboardUsesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/portcullis.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&dash); err != nil || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: %v (uid %q, %d panels)", err, dash.UID, len(dash.Panels))
	}
	exported := descRecorder{"up": true}
	newPolicyMetrics(exported)
	newCountingSender(nil, exported)
	instrument(exported, nil)
	upstreamMetrics(exported)
	exported.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		shadowMetrics(nil), decisionLogDrops(nil), geoipReloads(nil))
	metric := regexp.MustCompile(`\b(portcullis_[a-z_]+|process_[a-z_]+|go_[a-z_]+|up)\b`)
	var used []string
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			names := metric.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, q.Expr)
			}
			for _, n := range names {
				base := n
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(n, suffix); ok && exported[b] {
						base = b
					}
				}
				if !exported[base] {
					t.Errorf("panel %q: %s is not a metric the gateway exports", p.Title, n)
				}
				used = append(used, base)
			}
		}
	}
	// The metrics operators alert on each have a panel.
	for _, want := range []string{"portcullis_logins_total", "portcullis_lockouts_total", "portcullis_step_ups_total",
		"portcullis_messages_sent_total", "portcullis_code_sends_refused_total", "portcullis_message_delivery_failures_total",
		"portcullis_policy_evaluation_seconds", "portcullis_policy_reloads_total", "portcullis_decision_log_dropped_total",
		"portcullis_upstream_duration_seconds"} {
		if !slices.Contains(used, want) {
			t.Errorf("no panel shows %s", want)
		}
	}
}
