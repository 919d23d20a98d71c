package policies

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ErrDecisionNotFound is Why's error when no line of the decision logs has
// the decision ID.
var ErrDecisionNotFound = errors.New("no decision with that ID in the decision logs")

// maxRotatedLogs bounds how many rotated predecessors of a log Why looks
// for (NAME.1 ... NAME.N): far more than any decision_log_max_files.
const maxRotatedLogs = 1000

// WhyReport answers "why was this decision made?" for one line of a
// decision log: what the line recorded, and the same input decided and
// explained with the policy of today.
type WhyReport struct {
	Logged LoggedDecision `json:"logged"`
	// Now is the logged input decided again with the engine Why was given,
	// at the logged time, with the chain of rules that decide it.
	Now Explanation `json:"now"`
	// SameResult is whether Now reaches the logged result (allow, reason,
	// step_up, lock, notify); Differences names the fields that differ.
	SameResult  bool     `json:"same_result"`
	Differences []string `json:"differences,omitempty"`
	// SameRevision is whether the policy revision that decided then is the
	// one that decided now.
	SameRevision bool `json:"same_revision"`
}

// LoggedDecision is a decision as its decision log line records it.
type LoggedDecision struct {
	// File and Line locate the line.
	File string `json:"file"`
	Line int    `json:"line"`
	// DecisionID, Time, Point and Revision are the line's decision_id,
	// timestamp, portcullis.point and bundles.portcullis.revision.
	DecisionID string    `json:"decision_id"`
	Time       time.Time `json:"time"`
	Point      Point     `json:"point"`
	Revision   string    `json:"revision"`
	// UserID is the profile the decision was about (portcullis.user_id),
	// "" when the gateway knew none.
	UserID string `json:"user_id,omitempty"`
	// Result is the logged result: allow, reason and, when set, step_up,
	// lock and notify.
	Result Decision `json:"result"`
	// Input is the logged input, redacted as the log redacts it, with now
	// set to the line's timestamp if it was missing.
	Input Input `json:"input"`
	// ShadowOf is set on a line written by shadow evaluation: the decision
	// is the candidate's, never enforced, and ShadowOf is the ID of the live
	// decision it differed from.
	ShadowOf string `json:"shadow_of,omitempty"`
}

// Why finds the decision id in the decision logs and explains it: each log
// path is searched, then its rotated predecessors (PATH.1, PATH.2, ... as
// the decision log's rotation names them, each plain or gzip-compressed,
// as PATH.N.gz), up to the first line with that decision_id. A file is
// read as gzip when it starts as one. The search streams: it holds one
// line at a time, and skips lines longer than DefaultMaxReplayLine.
//
// The logged input is then decided with e at its logged time and
// explained. Why returns ErrDecisionNotFound (wrapped) when no line has
// the ID, and an error when a log cannot be read or the line found is not
// a decision it can decide again.
func Why(ctx context.Context, logs []string, id string, e *Engine) (*WhyReport, error) {
	if id == "" {
		return nil, errors.New("policies: why: a decision ID is required")
	}
	if len(logs) == 0 {
		return nil, errors.New("policies: why: no decision log given")
	}
	if e == nil {
		return nil, errors.New("policies: why: a policy engine is required")
	}
	files := logFiles(logs)
	for _, name := range files {
		logged, found, err := findDecision(ctx, name, id)
		if err != nil {
			return nil, fmt.Errorf("policies: why: %w", err)
		}
		if found {
			return whyReport(ctx, logged, e)
		}
	}
	return nil, fmt.Errorf("policies: why %s: %w (%d files searched)", id, ErrDecisionNotFound, len(files))
}

// logFiles lists each log and its rotated predecessors (rotatedLogs),
// newest first, each file once (a log given twice, or given and found as a
// rotation, is read once).
func logFiles(logs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, log := range logs {
		for _, name := range rotatedLogs(log) {
			if clean := filepath.Clean(name); !seen[clean] {
				seen[clean] = true
				out = append(out, name)
			}
		}
	}
	return out
}

// rotatedLogs lists log and those of its rotated predecessors that exist,
// newest first, stopping at the first number with neither a plain nor a
// compressed file. log itself is always listed, so that a missing file is
// reported.
func rotatedLogs(log string) []string {
	out := []string{log}
	for n := 1; n <= maxRotatedLogs; n++ {
		found := false
		for _, name := range []string{log + "." + strconv.Itoa(n), log + "." + strconv.Itoa(n) + ".gz"} {
			if info, err := os.Stat(name); err == nil && info.Mode().IsRegular() {
				out = append(out, name)
				found = true
			}
		}
		if !found {
			break
		}
	}
	return out
}

// findDecision streams name, plain or gzip, for the line whose
// decision_id is id.
func findDecision(ctx context.Context, name, id string) (logged LoggedDecision, found bool, err error) {
	err = scanLog(ctx, name, []byte(id), func(raw []byte, lineNo int) (bool, error) {
		var head struct {
			DecisionID string `json:"decision_id"`
		}
		if json.Unmarshal(raw, &head) != nil || head.DecisionID != id {
			return false, nil // the ID in another field, or a line that is not JSON
		}
		if logged, err = loggedDecision(raw); err != nil {
			return true, fmt.Errorf("%s:%d: decision %s: %w", name, lineNo, id, err)
		}
		logged.File, logged.Line, found = name, lineNo, true
		return true, nil
	})
	return logged, found, err
}

// scanLog streams the decision log file name, plain or gzip, and calls f
// with each line that contains want (and is not longer than
// DefaultMaxReplayLine) and its line number, until f says it is done or
// fails. It holds one line at a time.
func scanLog(ctx context.Context, name string, want []byte, f func(raw []byte, lineNo int) (done bool, err error)) error {
	file, err := os.Open(name)
	if err != nil {
		return err
	}
	defer file.Close()
	r, err := decompressed(file)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		if lineNo%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		raw, tooLong, err := readLine(br, DefaultMaxReplayLine)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		if tooLong || !bytes.Contains(raw, want) {
			continue
		}
		if done, err := f(raw, lineNo); done || err != nil {
			return err
		}
	}
}

// decompressed reads f through gzip when it starts with gzip's magic
// number.
func decompressed(f *os.File) (io.Reader, error) {
	br := bufio.NewReader(f)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}

// loggedDecision reads the line of a decision, with the checks replay
// makes of every line.
func loggedDecision(raw []byte) (LoggedDecision, error) {
	l, ts, err := parseReplayLine(raw)
	if err != nil {
		return LoggedDecision{}, err
	}
	var extra struct {
		Bundles    loggedBundles `json:"bundles"`
		Portcullis struct {
			UserID string        `json:"user_id"`
			Shadow *loggedShadow `json:"shadow"`
		} `json:"portcullis"`
	}
	if err := json.Unmarshal(raw, &extra); err != nil {
		return LoggedDecision{}, fmt.Errorf("not JSON: %w", err)
	}
	r := l.Result
	out := LoggedDecision{
		DecisionID: l.DecisionID,
		Time:       ts,
		Point:      l.Portcullis.Point,
		Revision:   extra.Bundles.Portcullis.Revision,
		UserID:     extra.Portcullis.UserID,
		Result:     Decision{Allow: r.Allow, Reason: r.Reason, StepUp: r.StepUp, Lock: r.Lock, Notify: r.Notify},
		Input:      *l.Input,
	}
	if sh := extra.Portcullis.Shadow; sh != nil {
		out.ShadowOf = sh.LiveDecisionID
	}
	return out, nil
}

func whyReport(ctx context.Context, logged LoggedDecision, e *Engine) (*WhyReport, error) {
	x, err := e.ExplainInput(ctx, logged.Input)
	if err != nil {
		return nil, fmt.Errorf("policies: why %s: %w", logged.DecisionID, err)
	}
	diff := resultDiff(resultOf(logged.Result), resultOf(x.Decision))
	return &WhyReport{
		Logged:       logged,
		Now:          x,
		SameResult:   len(diff) == 0,
		Differences:  diff,
		SameRevision: logged.Revision == x.Decision.Revision,
	}, nil
}
