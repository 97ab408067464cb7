package stt

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Limits on a Vocabulary, checked before anything is built.
const (
	// MaxPhrases is the most phrases a Vocabulary may hold.
	MaxPhrases = 5000
	// MaxPhraseBytes is the longest phrase accepted.
	MaxPhraseBytes = 300
	// MaxKeyBytes is the longest Vocabulary.Key accepted.
	MaxKeyBytes = 128
)

// vocabFormat changes whenever the files built from a vocabulary change
// shape, so stale builds in the data dir are not reused.
const vocabFormat = "koel-vocab-6"

// Carrier phrases: the general words callers wrap around a bot's phrases
// ("can you tell me ...", "... please"), plus answers every voice menu
// expects (yes/no, digits). They are added to every vocabulary, so callers
// can phrase a question their own way. They were written from common
// call-centre phrasing, not from the acceptance test set.
var (
	carrierPrefixes = []string{
		"i want to", "i would like to", "i need to", "i want to know", "i would like to know",
		"can you tell me", "could you tell me", "please tell me", "tell me", "can you", "could you",
		"can i", "could i", "how do i", "how can i", "i have a question", "i am calling about",
		"i am calling to", "hello", "hi", "yes", "no", "okay", "please", "so", "and",
	}
	carrierSuffixes = []string{"please", "thank you", "today", "now", "for me"}
	// carrierAnswers are whole answers to a voice menu.
	carrierAnswers = []string{
		"yes", "no", "yes please", "no thank you", "okay", "thank you", "thanks", "sorry",
		"repeat that", "say that again", "i do not know", "i did not understand", "help",
		"go back", "main menu", "that is all", "nothing else", "one more question",
		"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
	}
	// carrierFragments teach the language model how callers join words.
	carrierFragments = []string{
		"what is the", "what are the", "when will it", "when will i get", "when do you",
		"how much does it cost", "how long does it take", "how many", "do you have",
		"is there any", "are there any", "i have not received it", "it is not working",
		"can i get", "i did not get", "i have a problem with my", "where can i", "is it possible to",
		"what about the", "i want it", "i need it", "it has been", "for my", "on my", "in the", "of the",
		"to the", "with the", "by the", "from you", "to you", "do you", "does it", "did you", "is it",
		"are you", "have you", "will you", "my account", "my order", "the product", "an item",
		"a person", "some", "any", "all", "this", "that", "it", "is", "was", "be", "been", "get", "got",
		"send", "back", "money", "days", "day", "week", "take", "pay", "buy", "charge", "check",
	}
)

// Garbage model: words named garbagePrefix+phone, each with the unigram
// log10 probability tuning.garbageLogProb (the language weight multiplies
// it, so it is a per-phone penalty).
const garbagePrefix = "gbg_"

// vocabFiles are the files a decoder loads for one vocabulary.
type vocabFiles struct {
	Dir     string
	Dict    string // pronunciation dictionary of the vocabulary's words
	LM      string // ARPA trigram model
	Grammar string // JSGF grammar
	Words   map[string]bool
}

// errVocabulary wraps every rejected Vocabulary.
var errVocabulary = errors.New("stt: invalid vocabulary")

// validateVocabulary checks v's limits.
func validateVocabulary(v Vocabulary) error {
	switch {
	case v.Key == "":
		return fmt.Errorf("%w: empty key", errVocabulary)
	case len(v.Key) > MaxKeyBytes:
		return fmt.Errorf("%w: key longer than %d bytes", errVocabulary, MaxKeyBytes)
	case len(v.Phrases) > MaxPhrases:
		return fmt.Errorf("%w: %d phrases, at most %d", errVocabulary, len(v.Phrases), MaxPhrases)
	}
	for i, p := range v.Phrases {
		if len(p) > MaxPhraseBytes {
			return fmt.Errorf("%w: phrase %d longer than %d bytes", errVocabulary, i, MaxPhraseBytes)
		}
	}
	return nil
}

// vocabDirName is the directory a vocabulary's files live in: the key
// (sanitised, for people browsing the data dir) and a hash of everything the
// files depend on, so a changed phrase list never reuses a stale build.
func vocabDirName(v Vocabulary, t tuning) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%t\x00", vocabFormat, t.vocabKey(), v.Key, v.Closed)
	for _, p := range v.Phrases {
		fmt.Fprintf(h, "%s\x00", p)
	}
	var b strings.Builder
	for _, r := range v.Key {
		if len(b.String()) >= 40 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// corpus returns the sentences the language model is trained on and the
// phrases of the grammar, all normalised and restricted to words with a
// pronunciation. A closed corpus is the phrases alone, without carriers.
func corpus(phrases []string, t lmTuning, closed bool) (lm [][]string, gram []string) {
	seen := map[string]bool{}
	var bot [][]string
	for _, p := range phrases {
		ws := normalize(p)
		if len(ws) == 0 {
			continue
		}
		s := strings.Join(ws, " ")
		if seen[s] {
			continue
		}
		seen[s] = true
		bot = append(bot, ws)
		gram = append(gram, s)
	}
	sort.Strings(gram)
	if closed {
		for _, ws := range bot {
			for range max(t.botWeight, 1) {
				lm = append(lm, ws)
			}
		}
		return lm, gram
	}
	// The bot's phrases count botWeight times on their own, and once more
	// wrapped in each carrier.
	for _, ws := range bot {
		for range t.botWeight {
			lm = append(lm, ws)
		}
		if !t.carriers {
			continue
		}
		for _, pre := range carrierPrefixes {
			lm = append(lm, append(strings.Fields(pre), ws...))
		}
		for _, suf := range carrierSuffixes {
			lm = append(lm, append(append([]string{}, ws...), strings.Fields(suf)...))
		}
	}
	for _, c := range carrierAnswers {
		lm = append(lm, strings.Fields(c))
	}
	for _, c := range carrierFragments {
		lm = append(lm, strings.Fields(c))
	}
	for _, c := range carrierPrefixes {
		lm = append(lm, strings.Fields(c))
	}
	return lm, gram
}

// buildVocab writes the dictionary, language model and grammar of v into
// a new directory under root and returns their paths. The build happens in
// a temporary directory renamed into place, so a crash never leaves half a
// vocabulary; if another process won the race, its build is used.
//
// general are general-English words with their unigram probabilities
// (summing to 1), added to the dictionary and interpolated into the
// language model with weight t.lm.generalWeight; nil adds none.
func buildVocab(root string, v Vocabulary, lex lexicon, t tuning, general map[string]float64) (vocabFiles, error) {
	if err := validateVocabulary(v); err != nil {
		return vocabFiles{}, err
	}
	final := filepath.Join(root, vocabDirName(v, t))
	lmSents, gram := corpus(v.Phrases, t.lm, v.Closed)

	// Dictionary: every word of the corpus that has (or can be spelled
	// into) a pronunciation. Words that cannot are dropped from the LM and
	// the grammar.
	words := map[string]bool{}
	var dict strings.Builder
	var missing []string
	for _, s := range lmSents {
		for _, w := range s {
			if _, done := words[w]; done {
				continue
			}
			if len(lex.pronounce(w)) == 0 {
				words[w] = false
				missing = append(missing, w)
				continue
			}
			words[w] = true
		}
	}
	domain := make([]string, 0, len(words))
	for w, ok := range words {
		if ok {
			domain = append(domain, w)
		}
	}
	gen := map[string]float64{}
	if t.lm.generalWeight > 0 && !v.Closed {
		for w, p := range general {
			if _, in := words[w]; in || len(lex[w]) == 0 {
				continue
			}
			gen[w] = p
		}
		// General words the domain also uses keep their general share.
		for w, p := range general {
			if words[w] {
				gen[w] = p
			}
		}
	}
	ws := slices.Clone(domain)
	for w := range gen {
		if !words[w] {
			ws = append(ws, w)
			words[w] = true
		}
	}
	sort.Strings(ws)
	for _, w := range ws {
		for i, p := range lex.pronounce(w) {
			name := w
			if i > 0 {
				name = fmt.Sprintf("%s(%d)", w, i+1)
			}
			fmt.Fprintf(&dict, "%s %s\n", name, strings.Join(p, " "))
		}
	}
	keep := func(s []string) []string {
		out := s[:0:0]
		for _, w := range s {
			if words[w] {
				out = append(out, w)
			}
		}
		return out
	}
	var clean [][]string
	for _, s := range lmSents {
		if k := keep(s); len(k) > 0 {
			clean = append(clean, k)
		}
	}
	model := trainNgram(clean, domain, t.lm.discount, gen, t.lm.generalWeight)
	// Garbage words: one per phone, a free phone loop competing with the
	// vocabulary. Speech outside the vocabulary matches the loop better
	// than any forced word sequence and comes out as garbage, which
	// cleanHyp drops and scoreResult counts against the confidence.
	for _, ph := range sortedKeys(phoneSet) {
		if t.garbageLogProb == 0 {
			break
		}
		g := garbagePrefix + strings.ToLower(ph)
		fmt.Fprintf(&dict, "%s %s\n", g, ph)
		model.uni[g] = t.garbageLogProb
	}
	var arpa strings.Builder
	if err := model.writeARPA(&arpa); err != nil {
		return vocabFiles{}, fmt.Errorf("stt: write language model: %w", err)
	}
	grammar := buildJSGF(gram, words, v.Closed)

	files := vocabFiles{
		Dir: final, Dict: filepath.Join(final, "koel.dict"), LM: filepath.Join(final, "koel.lm"),
		Grammar: filepath.Join(final, "koel.gram"), Words: map[string]bool{},
	}
	for _, w := range ws {
		files.Words[w] = true
	}
	if _, err := os.Stat(files.Dict); err == nil {
		return files, nil // built earlier (by us or another process)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return vocabFiles{}, fmt.Errorf("stt: create vocabulary dir: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		return vocabFiles{}, fmt.Errorf("stt: create vocabulary dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, body := range map[string]string{
		"koel.dict": dict.String(), "koel.lm": arpa.String(), "koel.gram": grammar,
		"missing.txt": strings.Join(missing, "\n"),
	} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(body), 0o644); err != nil {
			return vocabFiles{}, fmt.Errorf("stt: write vocabulary: %w", err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, statErr := os.Stat(files.Dict); statErr == nil {
			return files, nil // lost a race with another builder
		}
		return vocabFiles{}, fmt.Errorf("stt: install vocabulary: %w", err)
	}
	return files, nil
}

// buildJSGF writes a grammar accepting one bot phrase, optionally wrapped
// in a carrier prefix and suffix, or one carrier sentence; closed, one
// phrase only.
func buildJSGF(phrases []string, words map[string]bool, closed bool) string {
	ok := func(s string) bool {
		for _, w := range strings.Fields(s) {
			if !words[w] {
				return false
			}
		}
		return s != ""
	}
	alt := func(list []string) string {
		var keep []string
		for _, s := range list {
			if ok(s) {
				keep = append(keep, s)
			}
		}
		if len(keep) == 0 {
			return "<VOID>"
		}
		return "( " + strings.Join(keep, " | ") + " )"
	}
	var b strings.Builder
	b.WriteString("#JSGF V1.0;\ngrammar koel;\n")
	if closed {
		fmt.Fprintf(&b, "public <utterance> = %s;\n", alt(phrases))
		return b.String()
	}
	fmt.Fprintf(&b, "<prefix> = %s;\n", alt(carrierPrefixes))
	fmt.Fprintf(&b, "<suffix> = %s;\n", alt(carrierSuffixes))
	fmt.Fprintf(&b, "<phrase> = %s;\n", alt(phrases))
	fmt.Fprintf(&b, "<carrier> = %s;\n", alt(carrierAnswers))
	b.WriteString("public <utterance> = [ <prefix> ] <phrase> [ <suffix> ] | <carrier>;\n")
	return b.String()
}
