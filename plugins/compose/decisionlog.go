package compose

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DecisionLogFlush is how long a decision line may wait in memory before
// it is handed to the file.
const DecisionLogFlush = 200 * time.Millisecond

const (
	// decisionLogBatch is the size at which a batch of lines is handed to
	// the writer without waiting for the next flush.
	decisionLogBatch = 64 << 10
	// decisionLogQueue bounds the batches waiting for the writer: at most
	// this many times decisionLogBatch bytes (16 MiB) are held while the
	// disk is slow. Past it, batches are dropped and counted.
	decisionLogQueue = 256
	// decisionLogDropWarning is how often, at most, dropped lines are
	// reported in the log.
	decisionLogDropWarning = 10 * time.Second
)

// DecisionLog is the decision log file, written off the request path. A
// decision appends its line to an in-memory batch under a lock held for a
// copy, never for a system call; a writer goroutine takes batches as they
// fill (decisionLogBatch) or every DecisionLogFlush and writes them to the
// file. A line is therefore handed to the file within DecisionLogFlush of
// its decision. The queue of batches is bounded: when the disk cannot keep
// up, a full batch that finds the queue full is dropped, its lines counted
// (Dropped) and reported with a warning, and no request ever waits for the
// disk.
//
// With a maximum size, a line that would take the file past it first
// rotates the file: NAME becomes NAME.1, NAME.1 becomes NAME.2 and so on,
// keeping maxFiles of them, and a new NAME is opened. Batches are split
// only between lines, so no line is split across files and no file
// exceeds the maximum unless a single line does.
type DecisionLog struct {
	path     string
	maxSize  int64 // 0: never rotate
	maxFiles int
	logger   *slog.Logger

	mu     sync.Mutex
	batch  []byte // lines not yet handed to the writer
	last   []byte // the batch left at Close, for the writer's last write
	closed bool

	queue   chan []byte // batches for the writer
	free    chan []byte // written batches, for reuse
	dropped atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	// Owned by the writer goroutine.
	f        *os.File // nil when it could not be (re)opened; the next write retries
	written  int64    // bytes in f
	reported uint64   // dropped lines already warned about
	warned   time.Time

	// beforeWrite, when set, runs before every write to the file (tests
	// stall the writer with it).
	beforeWrite func()
}

// openDecisionLog opens (creating it 0600, whatever the umask) the
// decision log at path for appending, rotated past maxSize bytes (0:
// never) keeping maxFiles old files.
func openDecisionLog(path string, maxSize int64, maxFiles int, logger *slog.Logger) (*DecisionLog, error) {
	b := newDecisionLog(path, maxSize, maxFiles, logger)
	return b, b.start()
}

func newDecisionLog(path string, maxSize int64, maxFiles int, logger *slog.Logger) *DecisionLog {
	return &DecisionLog{path: path, maxSize: maxSize, maxFiles: max(maxFiles, 1), logger: logger,
		queue: make(chan []byte, decisionLogQueue), free: make(chan []byte, 8),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// start opens the file and starts the writer.
func (b *DecisionLog) start() error {
	if err := b.open(); err != nil {
		return err
	}
	go b.run()
	return nil
}

// run is the writer goroutine.
func (b *DecisionLog) run() {
	defer close(b.done)
	t := time.NewTicker(DecisionLogFlush)
	defer t.Stop()
	for {
		select {
		case p := <-b.queue:
			b.write(p)
		case <-t.C:
			b.mu.Lock()
			b.handOff()
			b.mu.Unlock()
			b.reportDrops(false)
		case <-b.stop:
			for {
				select {
				case p := <-b.queue:
					b.write(p)
					continue
				default:
				}
				break
			}
			b.write(b.last)
			b.reportDrops(true)
			return
		}
	}
}

// handOff queues the current batch for the writer, or, when the queue is
// full, drops it and counts its lines. The caller holds mu.
func (b *DecisionLog) handOff() {
	if len(b.batch) == 0 {
		return
	}
	select {
	case b.queue <- b.batch:
		select {
		case p := <-b.free:
			b.batch = p[:0]
		default:
			b.batch = make([]byte, 0, decisionLogBatch+decisionLogBatch/4)
		}
	default:
		b.dropped.Add(uint64(bytes.Count(b.batch, []byte{'\n'})))
		b.batch = b.batch[:0]
	}
}

// Write appends p, which is one or more whole lines, to the batch. It
// never waits for the file; it fails only after Close.
func (b *DecisionLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, fmt.Errorf("decision log: %w", os.ErrClosed)
	}
	b.batch = append(b.batch, p...)
	if len(b.batch) >= decisionLogBatch {
		b.handOff()
	}
	return len(p), nil
}

// Dropped is the number of lines dropped because the writer could not keep
// up.
func (b *DecisionLog) Dropped() uint64 {
	if b == nil {
		return 0
	}
	return b.dropped.Load()
}

// reportDrops warns of lines dropped since the last warning, at most every
// decisionLogDropWarning unless final.
func (b *DecisionLog) reportDrops(final bool) {
	n := b.dropped.Load()
	if n == b.reported || (!final && time.Since(b.warned) < decisionLogDropWarning) {
		return
	}
	b.logger.Warn("decision log lines dropped: the log file cannot keep up", "path", b.path,
		"dropped", n-b.reported, "dropped_total", n)
	b.reported, b.warned = n, time.Now()
}

// write writes the lines of p to the file, rotating between lines, and
// recycles p. Lines that cannot be written are counted as dropped.
func (b *DecisionLog) write(p []byte) {
	if b.beforeWrite != nil {
		b.beforeWrite()
	}
	buf := p
	for len(p) > 0 {
		if b.f == nil {
			// A rotation failed half-way: start the file again.
			if err := b.open(); err != nil {
				b.lose(p, err)
				break
			}
		}
		n := len(p)
		if b.maxSize > 0 && b.written+int64(n) > b.maxSize {
			room := max(min(b.maxSize-b.written, int64(n)), 0)
			n = bytes.LastIndexByte(p[:room], '\n') + 1
			if n == 0 {
				if b.written > 0 {
					err := b.rotate()
					if err == nil {
						continue
					}
					// Keep the lines rather than the maximum: write on
					// past it and try rotating again at the next line.
					b.logger.Error("decision log rotation failed", "path", b.path, "error", err)
					if b.f == nil {
						if err := b.open(); err != nil {
							b.lose(p, err)
							break
						}
					}
				}
				// One line longer than the room left: alone in its file,
				// or past the maximum of a file that could not rotate.
				if n = bytes.IndexByte(p, '\n') + 1; n == 0 {
					n = len(p)
				}
			}
		}
		w, err := b.f.Write(p[:n])
		b.written += int64(w)
		if err != nil {
			b.lose(p[w:], err)
			break
		}
		p = p[n:]
	}
	if cap(buf) <= 2*decisionLogBatch {
		select {
		case b.free <- buf[:0]:
		default:
		}
	}
}

// lose counts the lines of p, which could not be written because of err,
// as dropped.
func (b *DecisionLog) lose(p []byte, err error) {
	b.logger.Error("decision log write failed", "path", b.path, "error", err)
	b.dropped.Add(uint64(bytes.Count(p, []byte{'\n'})))
}

// open opens b.path for appending with mode 0600. The caller is the
// writer goroutine, or owns b alone.
func (b *DecisionLog) open() error {
	f, err := os.OpenFile(b.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		// The umask only ever removes bits, but an existing file keeps
		// whatever mode it had: make it private either way.
		err = f.Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("decision log: %w", err)
	}
	b.f, b.written = f, fi.Size()
	return nil
}

// rotate moves the full file aside and opens a new one. The caller is the
// writer goroutine.
func (b *DecisionLog) rotate() error {
	err := b.f.Close()
	b.f = nil
	if err != nil {
		return fmt.Errorf("decision log: rotate: %w", err)
	}
	for i := b.maxFiles - 1; i >= 1; i-- {
		err := os.Rename(fmt.Sprintf("%s.%d", b.path, i), fmt.Sprintf("%s.%d", b.path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("decision log: rotate: %w", err)
		}
	}
	if err := os.Rename(b.path, b.path+".1"); err != nil {
		return fmt.Errorf("decision log: rotate: %w", err)
	}
	return b.open()
}

// Close writes every line written before it and closes the file. Lines
// written after Close are refused. Closing a nil log does nothing.
func (b *DecisionLog) Close() error {
	if b == nil {
		return nil
	}
	var err error
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.last, b.batch = b.batch, nil
		b.mu.Unlock()
		close(b.stop)
		<-b.done
		if b.f != nil {
			err = b.f.Close()
			b.f = nil
		}
	})
	return err
}
