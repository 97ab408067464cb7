// Package voiceeval measures how well koel understands spoken callers: a
// corpus of questions about the demo FAQ phrased the way callers phrase
// them, off-topic speech and answers to a confirmation, rendered at run time
// with several Debian synthesizers through the telephone path (8 kHz, G.711
// µ-law, a line-noise variant) and sent to a real koel stack (SQLite store,
// FAQ bot on the demo FAQ, pocketsphinx) as KooKoo Record events over
// loopback HTTP.
//
// The corpus (corpus.tsv) was written before any tuning and carries a fixed
// tune/test split: levers are chosen on the tune split only, and the figures
// quoted in README come from the test split.
package voiceeval

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"strings"
)

//go:embed corpus.tsv
var corpusTSV []byte

// Kind is what an utterance of the corpus is.
type Kind string

// Kinds of utterances.
const (
	// KindQuestion is a question one FAQ node answers; Expect names it.
	KindQuestion Kind = "question"
	// KindOffTopic is speech no FAQ node answers; the bot must not answer
	// it from the FAQ.
	KindOffTopic Kind = "offtopic"
	// KindAnswer is an answer to a confirmation; Expect is yes, no or
	// cancel.
	KindAnswer Kind = "answer"
)

// Splits of the corpus.
const (
	SplitTune = "tune"
	SplitTest = "test"
	// SplitAll selects both splits.
	SplitAll = "all"
)

// Answers a KindAnswer utterance may expect.
const (
	AnswerYes    = "yes"
	AnswerNo     = "no"
	AnswerCancel = "cancel"
)

// Item is one utterance of the corpus.
type Item struct {
	// Line is the line number in corpus.tsv, a stable id.
	Line  int
	Split string
	Kind  Kind
	// Expect is the FAQ node for a question, "-" for off-topic speech and
	// yes, no or cancel for an answer.
	Expect string
	// Text is what the caller says.
	Text string
}

// Corpus returns the embedded corpus, validated.
func Corpus() ([]Item, error) { return parseCorpus(corpusTSV) }

// Select returns the items of split (SplitAll for every item).
func Select(items []Item, split string) []Item {
	var out []Item
	for _, it := range items {
		if split == SplitAll || it.Split == split {
			out = append(out, it)
		}
	}
	return out
}

// maxCorpusLine caps one corpus line.
const maxCorpusLine = 1024

// parseCorpus reads the TSV format of corpus.tsv: comment lines start with
// '#', the first other line is the header "split kind expect text".
func parseCorpus(data []byte) ([]Item, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, maxCorpusLine), maxCorpusLine)
	var (
		items  []Item
		header bool
		seen   = map[string]int{}
	)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("voiceeval: corpus line %d: %d fields, want 4 (split, kind, expect, text)", n, len(f))
		}
		if !header {
			if strings.Join(f, " ") != "split kind expect text" {
				return nil, fmt.Errorf("voiceeval: corpus line %d: header %q, want split kind expect text", n, line)
			}
			header = true
			continue
		}
		it := Item{Line: n, Split: f[0], Kind: Kind(f[1]), Expect: f[2], Text: strings.TrimSpace(f[3])}
		if err := validItem(it); err != nil {
			return nil, fmt.Errorf("voiceeval: corpus line %d: %w", n, err)
		}
		if prev, dup := seen[it.Text]; dup {
			return nil, fmt.Errorf("voiceeval: corpus line %d: %q repeats line %d", n, it.Text, prev)
		}
		seen[it.Text] = n
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("voiceeval: corpus: %w", err)
	}
	if !header {
		return nil, fmt.Errorf("voiceeval: corpus has no header")
	}
	return items, nil
}

func validItem(it Item) error {
	if it.Split != SplitTune && it.Split != SplitTest {
		return fmt.Errorf("split %q, want tune or test", it.Split)
	}
	if it.Text == "" {
		return fmt.Errorf("empty text")
	}
	switch it.Kind {
	case KindQuestion:
		if it.Expect == "" || it.Expect == "-" {
			return fmt.Errorf("question without an expected node")
		}
	case KindOffTopic:
		if it.Expect != "-" {
			return fmt.Errorf("off-topic utterance expects %q, want -", it.Expect)
		}
	case KindAnswer:
		if it.Expect != AnswerYes && it.Expect != AnswerNo && it.Expect != AnswerCancel {
			return fmt.Errorf("answer expects %q, want yes, no or cancel", it.Expect)
		}
	default:
		return fmt.Errorf("kind %q, want question, offtopic or answer", it.Kind)
	}
	return nil
}
