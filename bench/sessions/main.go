// Command sessions measures the memory the session path holds with many
// stored sessions: it stores -stored sessions in a SQLite file in a
// temporary folder, builds the session manager on it, reads the first
// -active sessions at random through Manager.ByID (as requests would) for
// -duration, and reports the rate and the process's resident memory
// (VmRSS, VmHWM) and Go heap.
//
//	go run ./bench/sessions -stored 1000000 -active 100000
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/bench"
)

func main() {
	stored := flag.Int("stored", 1000000, "sessions in the store")
	active := flag.Int("active", 100000, "sessions read (the first of the stored), each of its own user")
	duration := flag.Duration("duration", 20*time.Second, "how long to read the active sessions")
	workers := flag.Int("workers", 4*runtime.GOMAXPROCS(0), "goroutines reading at once")
	cacheSize := flag.Int("cache", 0, "session cache size (0: the default, negative: none)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long in all")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the reading phase")
	flag.Parse()
	if *active < 1 || *active > *stored || *duration <= 0 {
		log.Fatalf("want 1 <= -active <= -stored and a positive -duration")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rep, err := run(ctx, config{stored: *stored, active: *active, duration: *duration, workers: *workers,
		cacheSize: *cacheSize, cpuprofile: *cpuprofile})
	if err != nil {
		log.Fatal(err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			log.Fatal(err)
		}
		return
	}
	rep.print()
}

type config struct {
	stored, active, workers, cacheSize int
	duration                           time.Duration
	cpuprofile                         string
}

// memory is the process's memory at one moment, in MiB.
type memory struct {
	VmRSS, VmHWM              float64 // resident now, and at most since the last reset
	RssAnon, RssFile, RssShm  float64 // VmRSS by kind
	GoTotal, GoHeap, HeapGoal float64 // all memory the Go runtime maps; live and unswept heap objects; the GC's goal
}

type report struct {
	Stored, Active, Workers, CacheSize int
	GOMAXPROCS                         int
	LoadSeconds                        float64
	DBFileMiB                          float64
	AfterLoad                          memory  // after loading, before the manager
	Serving                            memory  // at the end of the reading phase
	PeakLoading                        float64 // VmHWM over loading
	Reads                              int64
	ReadsPerSecond                     float64
	CPUMicrosPerRead                   float64
	LoadAvgBefore, LoadAvgAfter        string
}

func run(ctx context.Context, cfg config) (*report, error) {
	rep := &report{Stored: cfg.stored, Active: cfg.active, Workers: cfg.workers, CacheSize: cfg.cacheSize,
		GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAvgBefore: bench.LoadAvg()}
	dir, err := os.MkdirTemp("", "portcullis-sessions-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	start := time.Now()
	s, err := bench.LoadSessions(ctx, dir, cfg.stored, cfg.active, func(n int) {
		if n%200000 == 0 {
			fmt.Fprintf(os.Stderr, "stored %d sessions in %s\n", n, time.Since(start).Round(time.Second))
		}
	})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rep.LoadSeconds = time.Since(start).Seconds()
	rep.DBFileMiB = fileMiB(filepath.Join(dir, "portcullis.db")) + fileMiB(filepath.Join(dir, "portcullis.db-wal"))

	// The IDs the requests name, as raw bytes: the cookie's hash, which
	// Current hex-encodes per request as TokenID does.
	ids := make([][32]byte, cfg.active)
	for n := range ids {
		if _, err := hex.Decode(ids[n][:], []byte(bench.SessionID(n))); err != nil {
			return nil, err
		}
	}
	runtime.GC()
	rep.AfterLoad = readMemory()
	rep.PeakLoading = rep.AfterLoad.VmHWM
	resetPeak()

	m := s.Manager(cfg.cacheSize)
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var (
		reads   atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	readCtx, stop := context.WithTimeout(ctx, cfg.duration)
	defer stop()
	cpu0 := cpuSeconds()
	begin := time.Now()
	for w := range cfg.workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 0x5e55))
			for readCtx.Err() == nil {
				n := rng.IntN(cfg.active)
				if err := s.ReadSession(ctx, m, hex.EncodeToString(ids[n][:]), n); err != nil {
					errOnce.Do(func() { first = err })
					stop()
					return
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gave up: %w", err)
	}
	rep.Reads = reads.Load()
	rep.ReadsPerSecond = float64(rep.Reads) / elapsed.Seconds()
	rep.CPUMicrosPerRead = (cpuSeconds() - cpu0) / float64(rep.Reads) * 1e6
	rep.Serving = readMemory()
	if err := m.Flush(ctx); err != nil {
		return nil, err
	}
	runtime.KeepAlive(ids)
	rep.LoadAvgAfter = bench.LoadAvg()
	return rep, nil
}

func (r *report) print() {
	fmt.Printf("%d sessions stored (%.0f MiB file) in %.1f s; %d active, read by %d goroutines, session cache %s, GOMAXPROCS %d\n",
		r.Stored, r.DBFileMiB, r.LoadSeconds, r.Active, r.Workers, cacheName(r.CacheSize), r.GOMAXPROCS)
	fmt.Printf("reads: %d, %.0f/s, %.1f µs CPU each\n", r.Reads, r.ReadsPerSecond, r.CPUMicrosPerRead)
	for _, row := range []struct {
		name string
		m    memory
	}{{"after load", r.AfterLoad}, {"serving", r.Serving}} {
		m := row.m
		fmt.Printf("%-10s VmRSS %6.1f MiB (anon %.1f, file %.1f, shmem %.1f)  VmHWM %6.1f MiB  Go total %.1f, heap objects %.1f, heap goal %.1f MiB\n",
			row.name, m.VmRSS, m.RssAnon, m.RssFile, m.RssShm, m.VmHWM, m.GoTotal, m.GoHeap, m.HeapGoal)
	}
	fmt.Printf("peak while loading: VmHWM %.1f MiB (the serving VmHWM counts from after the load)\n", r.PeakLoading)
	fmt.Printf("load average: %s -> %s\n", r.LoadAvgBefore, r.LoadAvgAfter)
}

func cacheName(n int) string {
	switch {
	case n == 0:
		return "default"
	case n < 0:
		return "off"
	}
	return strconv.Itoa(n)
}

// readMemory reads /proc/self/status and the Go runtime's metrics.
func readMemory() memory {
	var m memory
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				continue
			}
			mib := kb / 1024
			switch f[0] {
			case "VmRSS:":
				m.VmRSS = mib
			case "VmHWM:":
				m.VmHWM = mib
			case "RssAnon:":
				m.RssAnon = mib
			case "RssFile:":
				m.RssFile = mib
			case "RssShmem:":
				m.RssShm = mib
			}
		}
	}
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/goal:bytes"},
	}
	metrics.Read(samples)
	mib := func(s metrics.Sample) float64 {
		if s.Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return float64(s.Value.Uint64()) / (1 << 20)
	}
	m.GoTotal, m.GoHeap, m.HeapGoal = mib(samples[0]), mib(samples[1]), mib(samples[2])
	return m
}

// resetPeak resets VmHWM to the current VmRSS (Linux: clear_refs 5).
func resetPeak() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func fileMiB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

// cpuSeconds is the process's CPU time, user and system, from /proc.
func cpuSeconds() float64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks; USER_HZ is 100 on Linux
}
