package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// decisionLogFlush is how long a decision line may wait in memory before
// it reaches the file.
const decisionLogFlush = 200 * time.Millisecond

// bufferedLog is the decision log file behind a buffer, flushed every
// decisionLogFlush and on close: one write per batch of decisions rather
// than one system call on every proxied request. A line is on disk at
// most decisionLogFlush after its decision, or when the buffer fills.
//
// With a maximum size, a line that would take the file past it first
// rotates the file: NAME becomes NAME.1, NAME.1 becomes NAME.2 and so on,
// keeping maxFiles of them, and a new NAME is opened. Each Write is one
// whole line written under the lock, so no line is split across files.
type bufferedLog struct {
	path     string
	maxSize  int64 // 0: never rotate
	maxFiles int

	mu      sync.Mutex
	w       *bufio.Writer
	f       *os.File // nil after a rotation failed to reopen; Write retries
	written int64    // bytes in f, buffered ones included
	closed  bool
	logger  *slog.Logger
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// openDecisionLog opens (creating it 0600, whatever the umask) the
// decision log at path for appending, rotated past maxSize bytes (0:
// never) keeping maxFiles old files.
func openDecisionLog(path string, maxSize int64, maxFiles int, logger *slog.Logger) (*bufferedLog, error) {
	b := &bufferedLog{path: path, maxSize: maxSize, maxFiles: max(maxFiles, 1), logger: logger,
		w: bufio.NewWriterSize(nil, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	if err := b.open(); err != nil {
		return nil, err
	}
	go func() {
		defer close(b.done)
		t := time.NewTicker(decisionLogFlush)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b, nil
}

// open opens b.path for appending with mode 0600 and points the buffer at
// it. The caller holds mu, or owns b alone.
func (b *bufferedLog) open() error {
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
	b.w.Reset(f)
	return nil
}

// rotate moves the full file aside and opens a new one. The caller holds
// mu.
func (b *bufferedLog) rotate() error {
	if err := b.w.Flush(); err != nil {
		return fmt.Errorf("decision log: rotate: %w", err)
	}
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

// Write buffers p, which is one or more whole lines, rotating first when
// p would take the file past its maximum size.
func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, fmt.Errorf("decision log: %w", os.ErrClosed)
	}
	if b.f == nil {
		// A rotation failed half-way: start the file again.
		if err := b.open(); err != nil {
			return 0, err
		}
	}
	if b.maxSize > 0 && b.written > 0 && b.written+int64(len(p)) > b.maxSize {
		if err := b.rotate(); err != nil {
			b.logger.Error("decision log rotation failed", "path", b.path, "error", err)
			if b.f == nil {
				if err := b.open(); err != nil {
					return 0, err
				}
			}
		}
	}
	n, err := b.w.Write(p)
	b.written += int64(n)
	return n, err
}

func (b *bufferedLog) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w.Buffered() == 0 {
		return
	}
	if err := b.w.Flush(); err != nil {
		b.logger.Error("decision log write failed", "error", err)
	}
}

// Close writes what is buffered and closes the file.
func (b *bufferedLog) Close() error {
	var err error
	b.once.Do(func() {
		close(b.stop)
		<-b.done
		b.flush()
		b.mu.Lock()
		defer b.mu.Unlock()
		b.closed = true
		if b.f != nil {
			err = b.f.Close()
			b.f = nil
		}
	})
	return err
}
