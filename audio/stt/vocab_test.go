package stt

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Where is my ORDER?", []string{"where", "is", "my", "order"}},
		{"I'd like 42 items", []string{"i'd", "like", "four", "two", "items"}},
		{"  'quoted'  ", []string{"quoted"}},
		{"café au lait", []string{"caf", "au", "lait"}},
		{"", nil},
		{"!!!", nil},
	}
	for _, tt := range tests {
		if got := normalize(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseDict(t *testing.T) {
	lex, err := parseDict(strings.NewReader(";;; comment\nhello HH AH L OW\nhello(2) HH EH L OW\n\nworld W ER L D\n"), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(lex["hello"]) != 2 || len(lex["world"]) != 1 {
		t.Fatalf("got %v", lex)
	}
	for _, bad := range []string{"hello\n", "hello XX\n", "hello HH\x00 AH\n"} {
		if _, err := parseDict(strings.NewReader(bad), 1<<10); !errors.Is(err, errDictSyntax) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
	if _, err := parseDict(strings.NewReader(strings.Repeat("a AH\n", 100)), 10); err == nil {
		t.Error("no error over the size cap")
	}
}

func FuzzParseDict(f *testing.F) {
	f.Add([]byte("hello HH AH L OW\nhello(2) HH EH L OW\n"))
	f.Add([]byte(";;; x\n\nword(3) AA\n"))
	f.Add([]byte("(2) AA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lex, err := parseDict(strings.NewReader(string(data)), 1<<16)
		if err != nil {
			return
		}
		for w, prons := range lex {
			if w == "" || len(prons) == 0 {
				t.Fatalf("empty entry %q", w)
			}
			for _, p := range prons {
				for _, ph := range p {
					if !phoneSet[ph] {
						t.Fatalf("unknown phone %q kept", ph)
					}
				}
			}
		}
	})
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Where is my order?", "I'd 42", "''", "ñ", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, w := range normalize(s) {
			if w == "" || strings.Trim(w, "'") != w {
				t.Fatalf("bad word %q from %q", w, s)
			}
			for _, r := range w {
				if (r < 'a' || r > 'z') && r != '\'' {
					t.Fatalf("bad rune %q in %q", r, w)
				}
			}
		}
	})
}

// The language model is a proper distribution: for a history, the
// probabilities of all words (seen or backed off) sum to one.
func TestNgramNormalised(t *testing.T) {
	sents := [][]string{{"where", "is", "my", "order"}, {"track", "my", "order"}, {"where", "is", "my", "refund"}}
	vocab := []string{"where", "is", "my", "order", "track", "refund", "hello"}
	m := trainNgram(sents, vocab, defaultTuning().lm.discount, nil, 0)
	words := append(slices.Clone(vocab), "</s>")
	p := func(u, v, w string) float64 {
		if lp, ok := m.tri[[3]string{u, v, w}]; ok {
			return math.Pow(10, lp)
		}
		if lp, ok := m.bi[[2]string{v, w}]; ok {
			return math.Pow(10, m.bbo[[2]string{u, v}]) * math.Pow(10, lp)
		}
		return math.Pow(10, m.bbo[[2]string{u, v}]) * math.Pow(10, m.ubo[v]) * math.Pow(10, m.uni[w])
	}
	for _, h := range [][2]string{{"<s>", "where"}, {"is", "my"}, {"my", "order"}, {"hello", "my"}} {
		var sum float64
		for _, w := range words {
			sum += p(h[0], h[1], w)
		}
		if math.Abs(sum-1) > 1e-3 {
			t.Errorf("history %v: probabilities sum to %v", h, sum)
		}
	}
}

func TestBuildVocab(t *testing.T) {
	lex := lexicon{}
	for _, e := range []struct{ w, p string }{
		{"where", "W EH R"}, {"is", "IH Z"}, {"my", "M AY"}, {"order", "AO R D ER"}, {"pay", "P EY"},
	} {
		lex[e.w] = [][]string{strings.Fields(e.p)}
	}
	root := t.TempDir()
	v := Vocabulary{Key: "biz/1 v3", Phrases: []string{"Where is my order?", "pay by UPI", "naïve"}}
	// Concurrent first builds agree and leave one directory.
	var wg sync.WaitGroup
	res := make([]vocabFiles, 4)
	errs := make([]error, 4)
	for i := range res {
		wg.Go(func() { res[i], errs[i] = buildVocab(root, v, lex, defaultTuning(), nil) })
	}
	wg.Wait()
	for i := range res {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if res[i].Dir != res[0].Dir {
			t.Fatal("builds disagree")
		}
	}
	files := res[0]
	if strings.ContainsAny(filepath.Base(files.Dir), "/ ") {
		t.Errorf("unsafe dir name %q", files.Dir)
	}
	dict, err := os.ReadFile(files.Dict)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"where W EH R\n", "upi Y UW P IY AY\n", garbagePrefix + "aa AA\n"} {
		if !strings.Contains(string(dict), want) {
			t.Errorf("dictionary lacks %q", want)
		}
	}
	gram, _ := os.ReadFile(files.Grammar)
	if !strings.Contains(string(gram), "where is my order") || !strings.Contains(string(gram), "public <utterance>") {
		t.Errorf("grammar:\n%s", gram)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("%d entries in the vocabulary root, want 1 (temporary dirs removed)", len(entries))
	}
	// Changing a phrase builds elsewhere, even with the same key.
	v2 := Vocabulary{Key: v.Key, Phrases: []string{"where is my order"}}
	f2, err := buildVocab(root, v2, lex, defaultTuning(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f2.Dir == files.Dir {
		t.Error("changed phrases reused the old build")
	}
}

// A closed vocabulary is its phrases alone: no carrier word joins the
// dictionary, the grammar accepts only the phrases, and it builds apart
// from the open vocabulary of the same phrases.
func TestBuildVocabClosed(t *testing.T) {
	lex := lexicon{}
	for _, e := range []struct{ w, p string }{
		{"yes", "Y EH S"}, {"no", "N OW"}, {"please", "P L IY Z"}, {"tell", "T EH L"}, {"me", "M IY"},
	} {
		lex[e.w] = [][]string{strings.Fields(e.p)}
	}
	root := t.TempDir()
	closed := Vocabulary{Key: "yesno", Phrases: []string{"yes", "yes please", "no"}, Closed: true}
	files, err := buildVocab(root, closed, lex, defaultTuning(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for w := range files.Words {
		got = append(got, w)
	}
	sort.Strings(got)
	if strings.Join(got, " ") != "no please yes" {
		t.Errorf("closed vocabulary words %q, want no please yes", got)
	}
	dict, _ := os.ReadFile(files.Dict)
	if strings.Contains(string(dict), "tell ") || !strings.Contains(string(dict), garbagePrefix+"aa AA\n") {
		t.Errorf("closed dictionary (carriers out, garbage model in):\n%s", dict)
	}
	gram, _ := os.ReadFile(files.Grammar)
	if want := "public <utterance> = ( no | yes | yes please );"; !strings.Contains(string(gram), want) {
		t.Errorf("closed grammar:\n%s\nwant %q", gram, want)
	}
	open := closed
	open.Closed = false
	f2, err := buildVocab(root, open, lex, defaultTuning(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f2.Dir == files.Dir {
		t.Error("open and closed vocabularies share a build")
	}
	if !f2.Words["tell"] {
		t.Error("open vocabulary lacks the carrier word tell")
	}
}
