package policies

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// MaxUserDecisions bounds how many decisions UserDecisions returns.
const MaxUserDecisions = 1000

// UserDecisions returns the newest decisions about the profile userID in
// the decision logs (portcullis.user_id), newest first, at most limit of
// them (1 to MaxUserDecisions). Each log is read with its rotated
// predecessors as Why reads them, newest file first; lines of the shadow
// policy, which decided nothing, are left out. It streams, holding at most
// limit decisions. A log that does not exist is an error, as in Why.
func UserDecisions(ctx context.Context, logs []string, userID string, limit int) ([]LoggedDecision, error) {
	switch {
	case userID == "":
		return nil, errors.New("policies: user decisions: a user ID is required")
	case len(logs) == 0:
		return nil, errors.New("policies: user decisions: no decision log given")
	case limit < 1 || limit > MaxUserDecisions:
		return nil, fmt.Errorf("policies: user decisions: limit %d is not between 1 and %d", limit, MaxUserDecisions)
	}
	var out []LoggedDecision
	seen := map[string]bool{}
	for _, log := range logs {
		for _, name := range rotatedLogs(log) {
			clean := filepath.Clean(name)
			if seen[clean] {
				continue
			}
			seen[clean] = true
			newest, err := userDecisionsIn(ctx, name, userID, limit-len(out))
			if err != nil {
				return nil, fmt.Errorf("policies: user decisions: %w", err)
			}
			out = append(out, newest...)
			if len(out) == limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// userDecisionsIn returns the newest n decisions about userID in the file
// name, newest first.
func userDecisionsIn(ctx context.Context, name, userID string, n int) ([]LoggedDecision, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := decompressed(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	want, err := json.Marshal(userID)
	if err != nil {
		return nil, err
	}
	want = append([]byte(`"user_id":`), want...)
	ring := make([]LoggedDecision, 0, n) // the newest n so far, oldest at next
	next := 0
	for lineNo := 1; ; lineNo++ {
		if lineNo%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		raw, tooLong, err := readLine(br, DefaultMaxReplayLine)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		if tooLong || !bytes.Contains(raw, want) {
			continue
		}
		var head struct {
			Portcullis struct {
				UserID string          `json:"user_id"`
				Shadow json.RawMessage `json:"shadow"`
			} `json:"portcullis"`
		}
		if json.Unmarshal(raw, &head) != nil || head.Portcullis.UserID != userID || head.Portcullis.Shadow != nil {
			continue // the ID in another field, a shadow line, or not JSON
		}
		d, err := loggedDecision(raw)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		d.File, d.Line = name, lineNo
		if len(ring) < n {
			ring = append(ring, d)
			continue
		}
		ring[next] = d
		next = (next + 1) % n
	}
	out := append(ring[next:], ring[:next]...)
	slices.Reverse(out)
	return out, nil
}
