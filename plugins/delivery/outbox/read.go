package outbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNoMessage is Last's answer when no message matches.
var ErrNoMessage = errors.New("outbox: no matching message")

// Filter selects messages; an empty field matches any value.
type Filter struct {
	// UserID is the profile the message is about.
	UserID string
	// Purpose is what the message is for (notify.PurposeLogin, ...).
	Purpose string
	// Channel is notify.SMS, notify.Voice or notify.Email.
	Channel string
	// To is the destination.
	To string
}

// Match reports whether r is selected by f.
func (f Filter) Match(r Record) bool {
	return (f.UserID == "" || r.UserID == f.UserID) &&
		(f.Purpose == "" || r.Purpose == f.Purpose) &&
		(f.Channel == "" || r.Channel == f.Channel) &&
		(f.To == "" || r.To == f.To)
}

// Messages reads every message in the outbox file at path, oldest first. A
// last line without its newline is being written and is left out.
func Messages(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer f.Close()
	return Read(f)
}

// Read reads outbox lines from r, oldest first, as Messages does.
func Read(r io.Reader) ([]Record, error) {
	var out []Record
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// Whatever is left has no newline yet: a write in progress.
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("outbox: read: %w", err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("outbox: line %d: %w", n, err)
		}
		out = append(out, rec)
	}
}

// Last is the newest message in the outbox file at path that f selects, or
// ErrNoMessage. Tests and the demo read a code with it:
//
//	rec, err := outbox.Last(path, outbox.Filter{UserID: id, Purpose: notify.PurposeLogin})
func Last(path string, f Filter) (Record, error) {
	recs, err := Messages(path)
	if err != nil {
		return Record{}, err
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if f.Match(recs[i]) {
			return recs[i], nil
		}
	}
	return Record{}, ErrNoMessage
}
