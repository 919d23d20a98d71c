package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleReport(store string, replicas int) *report {
	run := func(target string, cpu, front time.Duration) runResult {
		return runResult{Round: 1, Target: target, wrkResult: wrkResult{Requests: 1000, RPS: 1000, P50: time.Millisecond, P99: 2 * time.Millisecond},
			CPUPerRequest: cpu, FrontCPUPerRequest: front, UpstreamCPUPerRequest: 10 * time.Microsecond}
	}
	return &report{Machine: "m", Store: store, Replicas: replicas, Conns: 64, Threads: 2, Duration: 3 * time.Second,
		Runs: []runResult{run("bare", 50*time.Microsecond, 0), run("portcullis", 120*time.Microsecond, 30*time.Microsecond)}}
}

func TestReportNamesTheStoreAndReplicas(t *testing.T) {
	var one strings.Builder
	sampleReport(storeSQLite, 1).print(&one)
	if !strings.Contains(one.String(), "gateway: store sqlite, 1 replica\n") || strings.Contains(one.String(), "front") {
		t.Errorf("single gateway's report:\n%s", one.String())
	}
	if !strings.Contains(one.String(), "| 1 | portcullis | 1000 | 1.00ms | 2.00ms | 120.0 µs | 10.0 µs | 0 |  |\n") {
		t.Errorf("single gateway's row changed:\n%s", one.String())
	}

	var two strings.Builder
	sampleReport(storePostgresRedis, 2).print(&two)
	out := two.String()
	for _, want := range []string{
		"gateway: store postgres-redis, 2 replicas behind a round-robin TCP front",
		"| proxy CPU/req | front CPU/req | upstream CPU/req |",
		"| 1 | bare | 1000 | 1.00ms | 2.00ms | 50.0 µs | – | 10.0 µs | 0 |  |\n",
		"| 1 | portcullis | 1000 | 1.00ms | 2.00ms | 120.0 µs | 30.0 µs | 10.0 µs | 0 |  |\n",
		"2 replicas together",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("replicas' report lacks %q:\n%s", want, out)
		}
	}
}

func TestSumOverAddsEveryReplicaAndFailsOnAnyError(t *testing.T) {
	a, b := &proc{name: "a"}, &proc{name: "b"}
	cpu := map[*proc]time.Duration{a: 3 * time.Second, b: 4 * time.Second}
	got, err := sumOver([]*proc{a, b}, func(p *proc) (time.Duration, error) { return cpu[p], nil })
	if err != nil || got != 7*time.Second {
		t.Errorf("sumOver = %v, %v; want 7s", got, err)
	}
	gone := errors.New("no such process")
	n, err := sumOver([]*proc{a, b}, func(p *proc) (int64, error) {
		if p == b {
			return 0, gone
		}
		return 5, nil
	})
	if !errors.Is(err, gone) || n != 0 {
		t.Errorf("sumOver = %d, %v; want 0 and the error", n, err)
	}
}
