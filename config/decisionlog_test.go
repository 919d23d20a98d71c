package config

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: refused
	}{
		{"4096", 4096},
		{"100MB", 100_000_000},
		{"100 MB", 100_000_000},
		{"64KiB", 64 << 10},
		{"1GiB", 1 << 30},
		{"2GB", 2_000_000_000},
		{"512B", 512},
		{"1KB", 1000},
		{"", 0},
		{"0", 0},
		{"-5MB", 0},
		{"1.5MB", 0},
		{"MB", 0},
		{"100mb", 0},
		{"10TB", 0},
		{"9223372036854775807GiB", 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("ParseSize(%q) = %d, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestDecisionLogRotationConfig(t *testing.T) {
	const base = "geoip: {allow_missing: true}\nroutes:\n  - {name: app, host: app.example, upstream: 'http://127.0.0.1:1'}\n"
	tests := []struct {
		name      string
		policies  string
		wantBytes int64
		wantFiles int
		problem   string
	}{
		{"off by default", "", 0, 5, ""},
		{"size and files", "policies: {decision_log: d.jsonl, decision_log_max_size: 100MB, decision_log_max_files: 3}\n", 100_000_000, 3, ""},
		{"size alone keeps five", "policies: {decision_log: d.jsonl, decision_log_max_size: 64KiB}\n", 64 << 10, 5, ""},
		{"bad size", "policies: {decision_log: d.jsonl, decision_log_max_size: lots}\n", 0, 0, `4:35: policies.decision_log_max_size: "lots" is not a size`},
		{"negative files", "policies: {decision_log: d.jsonl, decision_log_max_files: -1}\n", 0, 0, "policies.decision_log_max_files: -1 is not a positive number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(base + tc.policies))
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("error %v, want one containing %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := f.Policies.DecisionLogMaxBytes()
			if err != nil || n != tc.wantBytes || f.Policies.DecisionLogMaxFiles != tc.wantFiles {
				t.Fatalf("max bytes %d (%v), files %d; want %d, %d", n, err, f.Policies.DecisionLogMaxFiles, tc.wantBytes, tc.wantFiles)
			}
		})
	}
}
