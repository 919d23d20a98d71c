package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// decisionLogLine is the decision log's setting in gatewayConfig's file.
var decisionLogLine = regexp.MustCompile(`(?m)^  decision_log: .*$`)

// startEmbedded runs the gateway inside Caddy, as an operator who chose
// the Caddy module does: Portcullis's Caddy build, with the portcullis
// directive naming a copy of the first gateway's configuration (the same
// store, so the benchmark's session holds there; a decision log of its
// own), on the benchmark's certificate.
func (b *harness) startEmbedded(ctx context.Context, bin, cert, key string) (*target, error) {
	body, err := os.ReadFile(filepath.Join(b.dir, replicaName(0)+".yaml"))
	if err != nil {
		return nil, err
	}
	if !decisionLogLine.Match(body) {
		return nil, fmt.Errorf("caddy module: the gateway's configuration has no decision log line")
	}
	configPath := filepath.Join(b.dir, "caddy-module.yaml")
	body = decisionLogLine.ReplaceAll(body, []byte("  decision_log: "+filepath.Join(b.dir, "decisions-caddy-module.jsonl")))
	if err := os.WriteFile(configPath, body, 0o600); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cf := filepath.Join(b.dir, "Caddyfile.module")
	if err := os.WriteFile(cf, []byte(fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
}
https://%[1]s:%[2]s {
	tls %[3]s %[4]s
	portcullis %[5]s
}
`, host, portOf(addr), cert, key, configPath)), 0o600); err != nil {
		return nil, err
	}
	c, _, err := start(ctx, b.dir, "caddy-portcullis", false, bin, "run", "--config", cf, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, c)
	t := &target{Name: "portcullis-in-caddy", url: "https://" + host + ":" + portOf(addr) + "/", procs: []*proc{c},
		identified: true, headers: b.gateway.headers}
	if err := waitTarget(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}
