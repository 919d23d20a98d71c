// Package outbox is a notify.Sender that delivers nothing: it appends every
// message as one JSON line to a file, so that the demo, tests and people
// developing the gateway can read the codes. It is not for production: the
// file holds live security codes.
//
// Each line is an object with the fields time (RFC 3339, UTC), channel, to,
// user_id, purpose, subject (email only) and text:
//
//	{"time":"2026-01-02T15:04:05.123Z","channel":"sms","to":"+447700900123","user_id":"u1","purpose":"login","text":"123456 is your …"}
//
// The file is created with mode 0600 whatever the umask, and an existing
// file that group or others can read or write is refused. Lines are
// written whole even under concurrency, and from several processes: one
// write per line to a file opened with O_APPEND. Messages and Last read
// the file back.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/plugins/delivery/internal/redact"
)

// Config configures the outbox.
type Config struct {
	// Path is the file messages are appended to; required. It is created
	// (mode 0600) when missing; its directory must exist.
	Path string
	// Logger receives one line per message written, without its text or
	// full destination; nil logs nothing. Set by the caller, not by YAML.
	Logger *slog.Logger
	// Now is the clock for each line's time; nil means time.Now. Set by
	// the caller, not by YAML.
	Now func() time.Time
}

// Sender appends messages to the outbox file. It is safe for concurrent
// use.
type Sender struct {
	path   string
	logger *slog.Logger
	now    func() time.Time
	mu     sync.Mutex // one writer at a time within this process
}

var _ notify.Sender = (*Sender)(nil)

// New checks cfg, creates the file if it is missing, and returns a sender
// writing to it. It refuses a file that group or others can read or write.
func New(cfg Config) (*Sender, error) {
	if cfg.Path == "" {
		return nil, errors.New("outbox: path is required")
	}
	s := &Sender{path: cfg.Path, logger: cfg.Logger, now: cfg.Now}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	f, err := s.open()
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return s, nil
}

// Record is one line of the outbox: a message and when it was written.
type Record struct {
	// Time is when the message was written, in UTC.
	Time time.Time `json:"time"`
	notify.Message
}

// line is what is written; Time is formatted here so that it is UTC
// whatever the clock's location.
type line struct {
	Time string `json:"time"`
	notify.Message
}

// Send appends m to the file as one line.
func (s *Sender) Send(ctx context.Context, m notify.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	b, err := json.Marshal(line{Time: s.now().UTC().Format(time.RFC3339Nano), Message: m})
	if err != nil {
		return fmt.Errorf("outbox: encode message: %w", err)
	}
	b = append(b, '\n')

	s.mu.Lock()
	defer s.mu.Unlock()
	// Opened for each message, so that a file removed or rotated while the
	// gateway runs is recreated (0600) rather than written to unseen, and
	// its mode is checked every time.
	f, err := s.open()
	if err != nil {
		return err
	}
	// One write: with O_APPEND the line lands whole at the end, even with
	// another process appending too.
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("outbox: write %s: %w", s.path, err)
	}
	s.logger.Info("message written to outbox", "channel", m.Channel, "to", redact.Destination(m.To),
		"user_id", m.UserID, "purpose", m.Purpose)
	return nil
}

// open opens the file for appending, creating it 0600 when missing, and
// refuses one that is not a regular file or that group or others can
// access.
func (s *Sender) open() (*os.File, error) {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		// Created here: the umask may have taken bits away (0400 under an
		// odd umask), so set the mode outright.
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("outbox: %w", err)
		}
		return f, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	f, err = os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	// Checked on the open file, not the path, so that what is checked is
	// what is written to.
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("outbox: %s is not a regular file", s.path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		f.Close()
		return nil, fmt.Errorf("outbox: %s has mode %04o: group or others can read or write it, and it holds security codes; fix it with `chmod 600 %s`",
			s.path, perm, s.path)
	}
	return f, nil
}
