package compose

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/geoip"
	"github.com/portcullis/portcullis/policies"
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

// The policy metrics count each decision by point, result and reason, and
// the sign-in views: a VPN refusal, a fifth wrong password that locks, a
// sign-in that needs a step-up, one from a registered device, a code the
// policy will not send to a VoIP number.
func TestPolicyDecisionsAreCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	engine, _, err := NewPolicyEngine(t.Context(), config.Policies{}, slog.New(slog.DiscardHandler), newPolicyMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vpn_login", "fifth_wrong_password", "new_device_login_password",
		"registered_device_login_password", "voip_send_code", "clean_login"} {
		raw, err := os.ReadFile(filepath.Join("../../testdata/policies", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var in policies.Input
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		engine.Decide(t.Context(), in)
	}
	wantMetrics(t, gatherCounters(t, reg), map[string]float64{
		"portcullis_policy_decisions_total{login,ip_anonymous_vpn,deny}": 1,
		"portcullis_policy_decisions_total{login,ok,allow}":              1,
		"portcullis_logins_total{denied,ip_anonymous_vpn}":               1,
		"portcullis_logins_total{denied,bad_credentials}":                1,
		"portcullis_logins_total{step_up_required,step_up_required}":     1,
		"portcullis_logins_total{signed_in,ok}":                          1,
		"portcullis_lockouts_total{}":                                    1,
		"portcullis_code_sends_refused_total{phone_voip}":                1,
		"portcullis_policy_reloads_total{ok}":                            0,
		"portcullis_policy_evaluation_seconds{login}":                    2,
		"portcullis_policy_evaluation_seconds{login_password}":           3,
		"portcullis_policy_evaluation_seconds{send_code}":                1,
	})
}

// wantMetrics checks the metrics of want in got (gatherCounters).
func wantMetrics(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for metric, w := range want {
		if got[metric] != w {
			t.Errorf("%s = %v, want %v", metric, got[metric], w)
		}
	}
}

// Every message handed to a provider is counted by channel and purpose, and
// one it refuses as a delivery failure.
func TestMessagesAreCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newCountingSender(notify.Router{notify.SMS: senderFunc(func(context.Context, notify.Message) error { return nil }),
		notify.Voice: senderFunc(func(context.Context, notify.Message) error { return errors.New("provider down") })}, reg)
	s.Send(t.Context(), notify.Message{Channel: notify.SMS, Purpose: notify.PurposeLogin})
	s.Send(t.Context(), notify.Message{Channel: notify.SMS, Purpose: notify.PurposeNotice})
	if err := s.Send(t.Context(), notify.Message{Channel: notify.Voice, Purpose: notify.PurposeLogin}); err == nil {
		t.Error("a failed send was reported as sent")
	}
	s.Send(t.Context(), notify.Message{Channel: "pigeon", Purpose: "whatever"})
	wantMetrics(t, gatherCounters(t, reg), map[string]float64{
		"portcullis_messages_sent_total{sms,login}":         1,
		"portcullis_messages_sent_total{sms,notice}":        1,
		"portcullis_message_delivery_failures_total{voice}": 1,
		"portcullis_message_delivery_failures_total{other}": 1,
		"portcullis_messages_sent_total{voice,login}":       0,
	})
}

type senderFunc func(context.Context, notify.Message) error

func (f senderFunc) Send(ctx context.Context, m notify.Message) error { return f(ctx, m) }

// Upstream responses are timed by route and status, an unreachable
// upstream as "error", whose series exists from the start.
func TestUpstreamResponsesAreTimed(t *testing.T) {
	reg := prometheus.NewRegistry()
	observer := upstreamMetrics(reg)
	savings, loans := observer("savings"), observer("carloans")
	savings(200, time.Millisecond)
	savings(200, time.Millisecond)
	savings(0, time.Second)
	loans(503, time.Millisecond)
	wantMetrics(t, gatherCounters(t, reg), map[string]float64{
		"portcullis_upstream_duration_seconds{200,savings}":    2,
		"portcullis_upstream_duration_seconds{error,savings}":  1,
		"portcullis_upstream_duration_seconds{503,carloans}":   1,
		"portcullis_upstream_duration_seconds{error,carloans}": 0,
	})
}
