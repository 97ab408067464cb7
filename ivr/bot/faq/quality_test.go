package faq

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/demo/demofaq"
)

// labelled is one test sentence with the node it should select ("" for
// off-topic text that must fall back).
type labelled struct {
	text, node string
}

func loadDemoFAQ(t testing.TB) []ivr.FAQNode {
	t.Helper()
	nodes, err := ParseCSV(bytes.NewReader(demofaq.CSV()), 0)
	if err != nil {
		t.Fatalf("ParseCSV(demo-faq.csv): %v", err)
	}
	return nodes
}

func loadQualityData(t testing.TB) (paraphrases, offTopic []labelled) {
	t.Helper()
	return loadLabelled(t, "testdata/paraphrases.csv", "testdata/offtopic.txt")
}

func loadLabelled(t testing.TB, paraFile, offFile string) (paraphrases, offTopic []labelled) {
	t.Helper()
	f, err := os.Open(paraFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[1:] {
		paraphrases = append(paraphrases, labelled{text: r[1], node: r[0]})
	}
	g, err := os.Open(offFile)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sc := bufio.NewScanner(g)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			offTopic = append(offTopic, labelled{text: line})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return paraphrases, offTopic
}

// TestMatcherQuality is the acceptance test of the matcher: top-1 accuracy on
// paraphrases of the demo questions and fallback on off-topic text, both at
// least 90 % at the default threshold.
func TestMatcherQuality(t *testing.T) {
	nodes := loadDemoFAQ(t)
	paraphrases, offTopic := loadQualityData(t)
	if len(paraphrases) < 60 || len(offTopic) < 30 {
		t.Fatalf("test data too small: %d paraphrases, %d off-topic", len(paraphrases), len(offTopic))
	}
	// The paraphrases must not be the FAQ's own user-says.
	own := map[string]string{}
	for _, n := range nodes {
		for _, u := range n.UserSays {
			own[speechText(u)] = n.Name
		}
	}
	known := map[string]bool{}
	for _, n := range nodes {
		known[n.Name] = true
	}
	for _, p := range paraphrases {
		if node, ok := own[speechText(p.text)]; ok {
			t.Errorf("paraphrase %q is a user-says of node %s", p.text, node)
		}
		if !known[p.node] {
			t.Errorf("paraphrase %q expects unknown node %q", p.text, p.node)
		}
	}

	m := NewMatcher(nodes, MatcherOptions{})
	top1, accepted, rejected := evaluate(t, m, paraphrases, offTopic)
	top1Rate := float64(top1) / float64(len(paraphrases))
	acceptRate := float64(accepted) / float64(len(paraphrases))
	rejectRate := float64(rejected) / float64(len(offTopic))
	t.Logf("top-1 %d/%d (%.1f %%), top-1 and above threshold %d/%d (%.1f %%), off-topic fallback %d/%d (%.1f %%)",
		top1, len(paraphrases), 100*top1Rate, accepted, len(paraphrases), 100*acceptRate,
		rejected, len(offTopic), 100*rejectRate)
	if top1Rate < 0.90 {
		t.Errorf("top-1 accuracy %.1f %%, want >= 90 %%", 100*top1Rate)
	}
	if rejectRate < 0.90 {
		t.Errorf("off-topic fallback %.1f %%, want >= 90 %%", 100*rejectRate)
	}

	// The sweep documents how the threshold trades the two rates.
	var sweep strings.Builder
	for _, th := range []float64{0.25, 0.30, 0.35, 0.40, DefaultThreshold, 0.45, 0.50, 0.55} {
		mt := NewMatcher(nodes, MatcherOptions{Threshold: th})
		acc, rej := 0, 0
		for _, p := range paraphrases {
			if got := mt.Match(p.text); got.OK && got.Node.Name == p.node {
				acc++
			}
		}
		for _, o := range offTopic {
			if !mt.Match(o.text).OK {
				rej++
			}
		}
		fmt.Fprintf(&sweep, "\n  threshold %.2f: answered right %5.1f %%, off-topic fallback %5.1f %%",
			th, 100*float64(acc)/float64(len(paraphrases)), 100*float64(rej)/float64(len(offTopic)))
	}
	t.Logf("threshold sweep:%s", sweep.String())
}

// evaluate runs the matcher over labelled data and returns how many
// paraphrases got the right node first, how many of those were above the
// threshold, and how many off-topic texts fell back.
func evaluate(t *testing.T, m *Matcher, paraphrases, offTopic []labelled) (top1, answered, rejected int) {
	t.Helper()
	for _, p := range paraphrases {
		got := m.Match(p.text)
		name := "<none>"
		if got.Node != nil {
			name = got.Node.Name
		}
		if name == p.node {
			top1++
			if got.OK {
				answered++
			}
		}
		if name != p.node || !got.OK {
			t.Logf("miss: %-60q want %-16s got %-16s score %.3f", p.text, p.node, name, got.Score)
		}
	}
	for _, o := range offTopic {
		got := m.Match(o.text)
		if !got.OK {
			rejected++
			continue
		}
		t.Logf("off-topic accepted: %-45q -> %-16s score %.3f", o.text, got.Node.Name, got.Score)
	}
	return top1, answered, rejected
}

// TestMatcherQualityHoldout measures the matcher on a second set of
// paraphrases and off-topic texts written after the matcher's constants and
// lexicon were chosen on the first set, and never used to tune it. Its bar is
// lower: it reports how well the method generalises.
func TestMatcherQualityHoldout(t *testing.T) {
	nodes := loadDemoFAQ(t)
	paraphrases, offTopic := loadLabelled(t, "testdata/holdout-paraphrases.csv", "testdata/holdout-offtopic.txt")
	m := NewMatcher(nodes, MatcherOptions{})
	top1, answered, rejected := evaluate(t, m, paraphrases, offTopic)
	t.Logf("holdout: top-1 %d/%d (%.1f %%), answered right %d/%d (%.1f %%), off-topic fallback %d/%d (%.1f %%)",
		top1, len(paraphrases), pct(top1, len(paraphrases)), answered, len(paraphrases), pct(answered, len(paraphrases)),
		rejected, len(offTopic), pct(rejected, len(offTopic)))
	// A regression guard one utterance below the top-1 figure reported in
	// the Matcher doc (52/62).
	if pct(top1, len(paraphrases)) < 82 || pct(rejected, len(offTopic)) < 75 {
		t.Errorf("holdout quality fell below 82 %% top-1 or 75 %% off-topic fallback")
	}
}

func pct(n, d int) float64 { return 100 * float64(n) / float64(d) }
