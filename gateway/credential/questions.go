package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Question is a challenge question. ID is stable: it is what sealed answers
// are keyed by, so a question's ID is never reused for a different text.
type Question struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

const (
	// MinAnswers is how many questions a person must answer.
	MinAnswers = 3
	// MinAnswerLen is the shortest answer, in characters after
	// NormalizeAnswer.
	MinAnswerLen = 3
	// MaxAnswerLen bounds a typed answer, in bytes, so a huge body never
	// reaches normalisation or argon2id.
	MaxAnswerLen = 256

	sealedAnswersVersion = 1
)

var (
	// ErrUnknownQuestion reports a question ID that is not in Questions.
	ErrUnknownQuestion = errors.New("unknown challenge question")
	// ErrTooFewAnswers reports fewer than MinAnswers answers.
	ErrTooFewAnswers = fmt.Errorf("answer at least %d challenge questions", MinAnswers)
	// ErrAnswerTooShort reports an answer shorter than MinAnswerLen.
	ErrAnswerTooShort = fmt.Errorf("a challenge answer has at least %d characters", MinAnswerLen)
	// ErrAnswerTooLong reports an answer longer than MaxAnswerLen.
	ErrAnswerTooLong = errors.New("challenge answer too long")
	// ErrDuplicateAnswer reports two questions given the same answer.
	ErrDuplicateAnswer = errors.New("each challenge question needs a different answer")
	// ErrSealedAnswers reports a stored answers blob that cannot be read.
	ErrSealedAnswers = errors.New("malformed sealed challenge answers")
)

// Questions returns the challenge questions a person can choose from, in
// the order to show them. Each call returns a fresh slice.
func Questions() []Question {
	return []Question{
		{ID: "first_pet", Text: "What was the name of your first pet?"},
		{ID: "elementary_school", Text: "What was the name of your elementary school?"},
		{ID: "birth_city", Text: "In what city were you born?"},
		{ID: "first_car", Text: "What was the make and model of your first car?"},
		{ID: "childhood_street", Text: "What was the name of the street you grew up on?"},
		{ID: "childhood_friend", Text: "What is the first name of your childhood best friend?"},
		{ID: "oldest_cousin", Text: "What is the first name of your oldest cousin?"},
		{ID: "first_job", Text: "What was the name of the company where you had your first job?"},
		{ID: "father_middle_name", Text: "What is your father's middle name?"},
		{ID: "partner_met_city", Text: "In what city did you meet your spouse or partner?"},
	}
}

func knownQuestion(id string) bool {
	return slices.ContainsFunc(Questions(), func(q Question) bool { return q.ID == id })
}

// NormalizeAnswer is the form answers are hashed and compared in, so that
// "Mr. Whiskers", "mr whiskers" and "ＭＲ　ＷＨＩＳＫＥＲＳ" are one answer:
// Unicode NFKC, case folded, everything but letters (with their combining
// marks), digits and spaces dropped, runs of white space collapsed to one
// space, trimmed.
func NormalizeAnswer(s string) string {
	s = norm.NFKC.String(s)
	// A Caser is stateful: one per call. x/text folds Cherokee letters to
	// the other case rather than to one case (golang/go#46101), so lower
	// what it returns to make both forms agree.
	s = strings.ToLower(cases.Fold().String(s))
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.IsLetter(r), unicode.IsNumber(r), unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	s = strings.Join(strings.Fields(b.String()), " ")
	// Dropping a character can leave a base letter next to a combining
	// mark it was kept apart from; compose them again.
	return norm.NFKC.String(s)
}

// sealedAnswers is the stored form: per question ID, the argon2id hash of
// the normalised answer.
type sealedAnswers struct {
	Version int               `json:"v"`
	Answers map[string]string `json:"answers"`
}

// SealAnswers checks a person's chosen answers, keyed by question ID, and
// returns the blob to store: a JSON object with the argon2id hash of each
// normalised answer, hashed with h so its concurrency bound applies. It
// refuses unknown questions, fewer than MinAnswers answers, answers shorter
// than MinAnswerLen and two questions with the same answer; every check is
// made before any hashing. The errors wrap the Err values above and name no
// answer, so their text can be shown.
func SealAnswers(ctx context.Context, h *Hasher, answers map[string]string) ([]byte, error) {
	if len(answers) < MinAnswers {
		return nil, fmt.Errorf("challenge answers: %w", ErrTooFewAnswers)
	}
	ids := make([]string, 0, len(answers))
	for id := range answers {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the same input always reports the same problem
	normalized := make(map[string]string, len(answers))
	seen := make(map[string]string, len(answers))
	for _, id := range ids {
		if !knownQuestion(id) {
			return nil, fmt.Errorf("challenge answers: %w: %q", ErrUnknownQuestion, id)
		}
		if len(answers[id]) > MaxAnswerLen {
			return nil, fmt.Errorf("challenge answers: %s: %w", id, ErrAnswerTooLong)
		}
		a := NormalizeAnswer(answers[id])
		if utf8.RuneCountInString(a) < MinAnswerLen {
			return nil, fmt.Errorf("challenge answers: %s: %w", id, ErrAnswerTooShort)
		}
		if other, dup := seen[a]; dup {
			return nil, fmt.Errorf("challenge answers: %s and %s: %w", other, id, ErrDuplicateAnswer)
		}
		seen[a] = id
		normalized[id] = a
	}
	out := sealedAnswers{Version: sealedAnswersVersion, Answers: make(map[string]string, len(normalized))}
	for _, id := range ids {
		hash, err := h.Hash(ctx, normalized[id])
		if err != nil {
			return nil, fmt.Errorf("challenge answers: %w", err)
		}
		out.Answers[id] = hash
	}
	blob, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("challenge answers: %w", err)
	}
	return blob, nil
}

func parseSealedAnswers(sealed []byte) (sealedAnswers, error) {
	var s sealedAnswers
	if err := json.Unmarshal(sealed, &s); err != nil {
		return s, fmt.Errorf("%w: %w", ErrSealedAnswers, err)
	}
	if s.Version != sealedAnswersVersion {
		return s, fmt.Errorf("%w: version %d", ErrSealedAnswers, s.Version)
	}
	return s, nil
}

// CheckAnswer reports whether answer is the sealed answer to questionID.
// A question that is not in Questions is ErrUnknownQuestion; one that is
// known but was not answered is false after a dummy argon2id run, so the
// time taken does not tell which questions a person chose.
func CheckAnswer(ctx context.Context, h *Hasher, sealed []byte, questionID, answer string) (bool, error) {
	if !knownQuestion(questionID) {
		return false, fmt.Errorf("challenge answer: %w: %q", ErrUnknownQuestion, questionID)
	}
	s, err := parseSealedAnswers(sealed)
	if err != nil {
		return false, fmt.Errorf("challenge answer: %w", err)
	}
	if len(answer) > MaxAnswerLen {
		return false, nil
	}
	// A missing entry is "", which Verify checks against its dummy hash
	// and always reports false.
	ok, err := h.Verify(ctx, s.Answers[questionID], NormalizeAnswer(answer))
	if err != nil {
		return false, fmt.Errorf("challenge answer: %w", err)
	}
	return ok, nil
}

// AskedQuestion picks, uniformly with randomness from pick, one of the
// questions answered in sealed that is still in Questions.
func AskedQuestion(sealed []byte, pick io.Reader) (questionID string, err error) {
	s, err := parseSealedAnswers(sealed)
	if err != nil {
		return "", fmt.Errorf("challenge question: %w", err)
	}
	var ids []string
	for _, q := range Questions() {
		if s.Answers[q.ID] != "" {
			ids = append(ids, q.ID)
		}
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("challenge question: %w: no answered question", ErrSealedAnswers)
	}
	i, err := randUint32n(pick, uint32(len(ids)))
	if err != nil {
		return "", fmt.Errorf("challenge question: %w", err)
	}
	return ids[i], nil
}
