package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	for _, name := range logFiles(logs) {
		newest, err := userDecisionsIn(ctx, name, userID, limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("policies: user decisions: %w", err)
		}
		if out = append(out, newest...); len(out) == limit {
			break
		}
	}
	return out, nil
}

// userDecisionsIn returns the newest n decisions about userID in the file
// name, newest first.
func userDecisionsIn(ctx context.Context, name, userID string, n int) ([]LoggedDecision, error) {
	want, err := json.Marshal(userID)
	if err != nil {
		return nil, err
	}
	want = append([]byte(`"user_id":`), want...)
	ring := make([]LoggedDecision, 0, n) // the newest n so far, oldest at next
	next := 0
	err = scanLog(ctx, name, want, func(raw []byte, lineNo int) (bool, error) {
		var head struct {
			Portcullis struct {
				UserID string          `json:"user_id"`
				Shadow json.RawMessage `json:"shadow"`
			} `json:"portcullis"`
		}
		if json.Unmarshal(raw, &head) != nil || head.Portcullis.UserID != userID || head.Portcullis.Shadow != nil {
			return false, nil // the ID in another field, a shadow line, or not JSON
		}
		d, err := loggedDecision(raw)
		if err != nil {
			return true, fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		d.File, d.Line = name, lineNo
		if len(ring) < n {
			ring = append(ring, d)
		} else {
			ring[next] = d
			next = (next + 1) % n
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	out := append(ring[next:], ring[:next]...)
	slices.Reverse(out)
	return out, nil
}
