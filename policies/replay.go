package policies

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"
)

// DefaultMaxReplayLine is the longest decision log line Replay reads
// unless ReplayConfig.MaxLineSize says otherwise. Real lines are a few
// kilobytes; a longer one is reported as unparseable and skipped.
const DefaultMaxReplayLine = 1 << 20

// maxReplayProblems is how many unparseable lines a report names; the
// rest are only counted.
const maxReplayProblems = 20

// maxReplayExamples is how many decision IDs a change row gives.
const maxReplayExamples = 3

// replayBatch is how many lines travel to a worker together.
const replayBatch = 64

// ReplayGCPercent is the garbage collector's target (debug.SetGCPercent)
// for a process that does nothing but replay, as `portcullis policy
// replay` is. A replay's live heap is small and bounded (a few batches of
// lines and the engines), so at the default of 100 the collector runs
// every few megabytes of the allocations every decision makes, and took a
// quarter of a replay's CPU time; at 300 it runs a third as often, and the
// peak heap (about four times the live heap) stays flat in the log's size
// and well inside BenchmarkReplay's bound.
const ReplayGCPercent = 300

// ReplayConfig configures Replay.
type ReplayConfig struct {
	// Candidate is the policy under review: every logged input is decided
	// with it anew. Required. With the engine's access cache (the
	// default), access lines are decided the way the gateway decides them,
	// route_decision cached by its facts and the session's time limits
	// applied to each line; most of a log is access lines, and their facts
	// repeat.
	Candidate *Engine
	// Baseline is the policy the log is compared against: each input is
	// decided with it too, and a line whose logged result the baseline
	// does not give again is a baseline mismatch (the log came from
	// another revision, or the input lost something to redaction), kept
	// out of the changes. Required.
	Baseline *Engine
	// Workers is how many lines are decided at once; 0 means GOMAXPROCS.
	Workers int
	// MaxLineSize bounds one line in bytes; 0 means DefaultMaxReplayLine.
	MaxLineSize int
	// Progress, when set, is called from the reading goroutine about every
	// few thousand lines with the number of lines read so far.
	Progress func(lines int64)
}

// ReplaySource is one decision log to replay: its name, used in problems
// as NAME:LINE, and its contents.
type ReplaySource struct {
	Name string
	R    io.Reader
}

// ReplayReport is what a replay found. Read = Unchanged + Changed +
// BaselineMismatches + Unparseable + Shadow.
type ReplayReport struct {
	// BaselineRevision and CandidateRevision are the two policies' revisions.
	BaselineRevision  string `json:"baseline_revision"`
	CandidateRevision string `json:"candidate_revision"`
	// Read counts the non-blank lines read.
	Read int64 `json:"read"`
	// Unchanged counts the lines the candidate decides as logged.
	Unchanged int64 `json:"unchanged"`
	// Changed counts the lines the candidate decides otherwise.
	Changed int64 `json:"changed"`
	// BaselineMismatches counts the lines the baseline itself no longer
	// decides as logged; they are neither changed nor unchanged.
	BaselineMismatches int64 `json:"baseline_mismatches"`
	// Unparseable counts the lines that are not decision log lines of
	// format DecisionLogFormat, or are longer than the maximum.
	Unparseable int64 `json:"unparseable"`
	// Shadow counts the lines shadow evaluation wrote (a candidate's
	// decisions, never enforced), which are not decided again.
	Shadow int64 `json:"shadow"`
	// Changes groups the changed lines, sorted by point, old reason, new
	// reason and fields.
	Changes []ReplayChange `json:"changes"`
	// Mismatches groups the baseline mismatches the same way, logged
	// result against the baseline's.
	Mismatches []ReplayChange `json:"baseline_mismatch_details"`
	// Problems names the first unparseable lines, as NAME:LINE: what.
	Problems []string `json:"problems"`
}

// ReplayChange is one group of lines whose result changed the same way.
type ReplayChange struct {
	Point     Point  `json:"point"`
	OldReason string `json:"old_reason"`
	NewReason string `json:"new_reason"`
	// Fields names the parts of the result that differ: allow, reason,
	// step_up, lock, notify.
	Fields []string `json:"fields"`
	Count  int64    `json:"count"`
	// First and Last are the earliest and latest logged timestamps.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Examples are the decision IDs of the group's first lines in the
	// logs' order, at most three.
	Examples []string `json:"examples"`
}

// Replay reads decision logs in the order given and decides every logged
// input again with the baseline and the candidate policies, on Workers
// goroutines. It holds no more than a few batches of lines at once,
// whatever the logs' size, and its report does not depend on how the
// work was scheduled. Each input is decided at its logged time (its now,
// or the line's timestamp when now is missing), never the clock's.
//
// An unparseable or over-long line is counted and named in the report;
// a read error, or ctx ending, ends the replay with an error.
func Replay(ctx context.Context, cfg ReplayConfig, sources ...ReplaySource) (*ReplayReport, error) {
	if cfg.Candidate == nil || cfg.Baseline == nil {
		return nil, errors.New("replay: a candidate and a baseline policy are required")
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	maxLine := cfg.MaxLineSize
	if maxLine <= 0 {
		maxLine = DefaultMaxReplayLine
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	batches := make(chan *lineBatch, workers)
	free := sync.Pool{New: func() any { return &lineBatch{} }}
	tallies := make([]*replayTally, workers)
	var wg sync.WaitGroup
	for i := range tallies {
		t := newReplayTally(maxLine)
		tallies[i] = t
		wg.Go(func() {
			for b := range batches {
				for j := range b.n {
					t.add(ctx, cfg, &b.lines[j])
				}
				b.reset()
				free.Put(b)
			}
		})
	}

	var read int64
	readErr := func() error {
		defer close(batches)
		b := free.Get().(*lineBatch)
		send := func() bool {
			select {
			case batches <- b:
				b = free.Get().(*lineBatch)
				return true
			case <-ctx.Done():
				return false
			}
		}
		var seq uint64
		for _, src := range sources {
			br := bufio.NewReaderSize(src.R, 64<<10)
			var lineNo int
			for {
				raw, tooLong, err := readLine(br, maxLine)
				if err == io.EOF {
					break
				}
				if err != nil {
					return fmt.Errorf("replay: %s:%d: %w", src.Name, lineNo+1, err)
				}
				lineNo++
				if !tooLong && len(bytes.TrimSpace(raw)) == 0 {
					continue
				}
				seq++
				read++
				b.add(src.Name, lineNo, seq, raw, tooLong)
				if b.n == replayBatch && !send() {
					return ctx.Err()
				}
				if cfg.Progress != nil && read%4096 == 0 {
					cfg.Progress(read)
				}
			}
		}
		if b.n > 0 && !send() {
			return ctx.Err()
		}
		return nil
	}()
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if cfg.Progress != nil {
		cfg.Progress(read)
	}
	r := mergeTallies(tallies)
	r.Read = read
	r.BaselineRevision = cfg.Baseline.Revision()
	r.CandidateRevision = cfg.Candidate.Revision()
	return r, nil
}

// readLine reads one line without its line ending. A line longer than max
// bytes is read to its end and thrown away: tooLong is true and line
// empty. At the end of the input it returns io.EOF, after a last line
// that has no newline.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	var buf []byte
	started := false
	for {
		frag, err := br.ReadSlice('\n')
		started = started || len(frag) > 0
		if !tooLong {
			if len(buf)+len(bytes.TrimRight(frag, "\r\n")) > max {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, frag...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && started:
			return bytes.TrimRight(buf, "\r\n"), tooLong, nil
		case err != nil:
			return nil, false, err
		}
		return bytes.TrimRight(buf, "\r\n"), tooLong, nil
	}
}

// lineBatch carries up to replayBatch lines to a worker, their bytes in
// one buffer reused from batch to batch.
type lineBatch struct {
	buf   []byte
	lines [replayBatch]replayItem
	n     int
}

type replayItem struct {
	file    string
	line    int
	seq     uint64
	start   int
	end     int
	tooLong bool
	batch   *lineBatch
}

func (b *lineBatch) add(file string, line int, seq uint64, raw []byte, tooLong bool) {
	start := len(b.buf)
	b.buf = append(b.buf, raw...)
	b.lines[b.n] = replayItem{file: file, line: line, seq: seq, start: start, end: len(b.buf), tooLong: tooLong, batch: b}
	b.n++
}

func (b *lineBatch) reset() {
	if cap(b.buf) > 4*replayBatch*8<<10 {
		b.buf = nil // one huge batch does not pin its memory
	}
	b.buf, b.n = b.buf[:0], 0
}

func (it *replayItem) bytes() []byte { return it.batch.buf[it.start:it.end] }

// replayedLine is the part of a decision log line a replay reads.
type replayedLine struct {
	DecisionID string        `json:"decision_id"`
	Input      *Input        `json:"input"`
	Result     *loggedResult `json:"result"`
	Timestamp  string        `json:"timestamp"`
	Portcullis struct {
		Format int             `json:"format"`
		Point  Point           `json:"point"`
		Shadow json.RawMessage `json:"shadow"`
	} `json:"portcullis"`
}

// parseReplayLine reads one line, or says why it is not a decision log
// line this replay can decide again.
func parseReplayLine(raw []byte) (replayedLine, time.Time, error) {
	var l replayedLine
	if err := json.Unmarshal(raw, &l); err != nil {
		return l, time.Time{}, fmt.Errorf("not JSON: %w", err)
	}
	switch {
	case l.Portcullis.Format != DecisionLogFormat:
		return l, time.Time{}, fmt.Errorf("portcullis.format is %d, not %d (a line of another version, or not Portcullis's)", l.Portcullis.Format, DecisionLogFormat)
	case l.Portcullis.Point == "":
		return l, time.Time{}, errors.New("no portcullis.point")
	case l.Input == nil:
		return l, time.Time{}, errors.New("no input")
	case l.Result == nil || l.Result.Reason == "":
		return l, time.Time{}, errors.New("no result")
	}
	ts, err := time.Parse(time.RFC3339Nano, l.Timestamp)
	if err != nil {
		return l, time.Time{}, fmt.Errorf("timestamp: %w", err)
	}
	l.Input.Point = l.Portcullis.Point
	if l.Input.Now == 0 {
		l.Input.Now = ts.Unix()
	}
	return l, ts, nil
}

// resultDiff names the fields in which two results differ.
func resultDiff(a, b loggedResult) []string {
	var out []string
	if a.Allow != b.Allow {
		out = append(out, "allow")
	}
	if a.Reason != b.Reason {
		out = append(out, "reason")
	}
	if !slices.Equal(a.StepUp, b.StepUp) {
		out = append(out, "step_up")
	}
	if a.Lock != b.Lock {
		out = append(out, "lock")
	}
	if !slices.Equal(a.Notify, b.Notify) {
		out = append(out, "notify")
	}
	return out
}

func resultOf(d Decision) loggedResult {
	return loggedResult{Allow: d.Allow, Reason: d.Reason, StepUp: d.StepUp, Lock: d.Lock, Notify: d.Notify}
}

// replayTally is one worker's share of the report, merged at the end.
type replayTally struct {
	maxLine                                             int
	unchanged, changed, mismatches, unparseable, shadow int64
	changes, mismatchGroups                             map[changeKey]*changeGroup
	problems                                            []replayProblem
	shared                                              sharedDocument // the line being decided
}

type changeKey struct {
	point     Point
	oldReason string
	newReason string
	fields    string
}

type changeGroup struct {
	key         changeKey
	fields      []string
	count       int64
	first, last time.Time
	examples    []example
}

type example struct {
	seq uint64
	id  string
}

type replayProblem struct {
	seq  uint64
	text string
}

func newReplayTally(maxLine int) *replayTally {
	return &replayTally{maxLine: maxLine, changes: map[changeKey]*changeGroup{}, mismatchGroups: map[changeKey]*changeGroup{}}
}

func (t *replayTally) add(ctx context.Context, cfg ReplayConfig, it *replayItem) {
	if it.tooLong {
		t.problem(it, fmt.Sprintf("line longer than %d bytes", t.maxLine))
		return
	}
	l, ts, err := parseReplayLine(it.bytes())
	if err != nil {
		t.problem(it, err.Error())
		return
	}
	if l.Portcullis.Shadow != nil {
		t.shadow++
		return
	}
	logged := *l.Result
	shared := &t.shared
	*shared = sharedDocument{}
	base := resultOf(cfg.Baseline.decide(ctx, *l.Input, shared))
	if diff := resultDiff(logged, base); diff != nil {
		t.mismatches++
		t.group(t.mismatchGroups, l, logged, base, diff, ts, it.seq)
		return
	}
	now := resultOf(cfg.Candidate.decide(ctx, *l.Input, shared))
	diff := resultDiff(logged, now)
	if diff == nil {
		t.unchanged++
		return
	}
	t.changed++
	t.group(t.changes, l, logged, now, diff, ts, it.seq)
}

func (t *replayTally) problem(it *replayItem, text string) {
	t.unparseable++
	p := replayProblem{seq: it.seq, text: fmt.Sprintf("%s:%d: %s", it.file, it.line, text)}
	// Keep the first maxReplayProblems by position in the logs.
	i, _ := slices.BinarySearchFunc(t.problems, p.seq, func(p replayProblem, s uint64) int { return cmp.Compare(p.seq, s) })
	if i < maxReplayProblems {
		t.problems = slices.Insert(t.problems, i, p)
		if len(t.problems) > maxReplayProblems {
			t.problems = t.problems[:maxReplayProblems]
		}
	}
}

func (t *replayTally) group(groups map[changeKey]*changeGroup, l replayedLine, old, now loggedResult, diff []string, ts time.Time, seq uint64) {
	key := changeKey{point: l.Portcullis.Point, oldReason: old.Reason, newReason: now.Reason, fields: fmt.Sprint(diff)}
	g, ok := groups[key]
	if !ok {
		g = &changeGroup{key: key, fields: diff, first: ts, last: ts}
		groups[key] = g
	}
	g.count++
	if ts.Before(g.first) {
		g.first = ts
	}
	if ts.After(g.last) {
		g.last = ts
	}
	g.addExample(example{seq: seq, id: l.DecisionID})
}

// addExample keeps the maxReplayExamples examples earliest in the logs, so
// the report is the same however the lines were shared out.
func (g *changeGroup) addExample(e example) {
	i, _ := slices.BinarySearchFunc(g.examples, e.seq, func(x example, s uint64) int { return cmp.Compare(x.seq, s) })
	if i >= maxReplayExamples {
		return
	}
	g.examples = slices.Insert(g.examples, i, e)
	if len(g.examples) > maxReplayExamples {
		g.examples = g.examples[:maxReplayExamples]
	}
}

func mergeTallies(ts []*replayTally) *ReplayReport {
	r := &ReplayReport{}
	changes := map[changeKey]*changeGroup{}
	mismatches := map[changeKey]*changeGroup{}
	var problems []replayProblem
	for _, t := range ts {
		r.Unchanged += t.unchanged
		r.Changed += t.changed
		r.BaselineMismatches += t.mismatches
		r.Unparseable += t.unparseable
		r.Shadow += t.shadow
		mergeGroups(changes, t.changes)
		mergeGroups(mismatches, t.mismatchGroups)
		problems = append(problems, t.problems...)
	}
	slices.SortFunc(problems, func(a, b replayProblem) int { return cmp.Compare(a.seq, b.seq) })
	for i, p := range problems {
		if i == maxReplayProblems {
			break
		}
		r.Problems = append(r.Problems, p.text)
	}
	r.Changes = sortedChanges(changes)
	r.Mismatches = sortedChanges(mismatches)
	return r
}

func mergeGroups(into, from map[changeKey]*changeGroup) {
	for k, g := range from {
		m, ok := into[k]
		if !ok {
			into[k] = g
			continue
		}
		m.count += g.count
		if g.first.Before(m.first) {
			m.first = g.first
		}
		if g.last.After(m.last) {
			m.last = g.last
		}
		for _, e := range g.examples {
			m.addExample(e)
		}
	}
}

func sortedChanges(groups map[changeKey]*changeGroup) []ReplayChange {
	out := make([]ReplayChange, 0, len(groups))
	for _, g := range groups {
		c := ReplayChange{Point: g.key.point, OldReason: g.key.oldReason, NewReason: g.key.newReason,
			Fields: g.fields, Count: g.count, First: g.first, Last: g.last}
		for _, e := range g.examples {
			c.Examples = append(c.Examples, e.id)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ReplayChange) int {
		return cmp.Or(cmp.Compare(a.Point, b.Point), cmp.Compare(a.OldReason, b.OldReason),
			cmp.Compare(a.NewReason, b.NewReason), slices.Compare(a.Fields, b.Fields))
	})
	return out
}
