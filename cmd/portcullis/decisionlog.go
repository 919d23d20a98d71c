package main

import (
	"bufio"
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
type bufferedLog struct {
	mu     sync.Mutex
	w      *bufio.Writer
	f      *os.File
	logger *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newBufferedLog(f *os.File, logger *slog.Logger) *bufferedLog {
	b := &bufferedLog{w: bufio.NewWriterSize(f, 64<<10), f: f, logger: logger,
		stop: make(chan struct{}), done: make(chan struct{})}
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
	return b
}

func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
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
		err = b.f.Close()
	})
	return err
}
