package stt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
)

// maxDictLineBytes caps one line of a pronunciation dictionary.
const maxDictLineBytes = 4096

// lexicon maps a word to its pronunciations (each a list of phones).
type lexicon map[string][][]string

// phoneSet is the phone inventory of the en-us acoustic model. Dictionary
// entries using other phones are rejected, because the decoder refuses a
// dictionary with unknown phones.
var phoneSet = map[string]bool{
	"AA": true, "AE": true, "AH": true, "AO": true, "AW": true, "AY": true, "B": true, "CH": true,
	"D": true, "DH": true, "EH": true, "ER": true, "EY": true, "F": true, "G": true, "HH": true,
	"IH": true, "IY": true, "JH": true, "K": true, "L": true, "M": true, "N": true, "NG": true,
	"OW": true, "OY": true, "P": true, "R": true, "S": true, "SH": true, "T": true, "TH": true,
	"UH": true, "UW": true, "V": true, "W": true, "Y": true, "Z": true, "ZH": true,
}

// errDictSyntax reports a malformed pronunciation dictionary line.
var errDictSyntax = errors.New("stt: malformed dictionary line")

// parseDict reads a CMU-style pronunciation dictionary ("word PH PH ...",
// alternates as "word(2) ..."), at most maxBytes of it. Comment lines (";;;")
// and blank lines are skipped; any other malformed line is an error naming
// its line number.
func parseDict(r io.Reader, maxBytes int64) (lexicon, error) {
	lr := &io.LimitedReader{R: r, N: maxBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 256), maxDictLineBytes)
	lex := lexicon{}
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, ";;;") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%w %d: no phones", errDictSyntax, line)
		}
		word := fields[0]
		if i := strings.IndexByte(word, '('); i > 0 && strings.HasSuffix(word, ")") {
			word = word[:i]
		}
		if word == "" || !validUTF8Word(word) {
			return nil, fmt.Errorf("%w %d: bad word", errDictSyntax, line)
		}
		phones := make([]string, 0, len(fields)-1)
		for _, p := range fields[1:] {
			if !phoneSet[p] {
				return nil, fmt.Errorf("%w %d: unknown phone %q", errDictSyntax, line, p)
			}
			phones = append(phones, p)
		}
		lex[word] = append(lex[word], phones)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("stt: read dictionary: %w", err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("stt: dictionary larger than %d bytes", maxBytes)
	}
	return lex, nil
}

func validUTF8Word(w string) bool {
	for _, r := range w {
		if r == unicode.ReplacementChar || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// letterPhones spells a letter, for words the dictionary lacks (acronyms
// such as "emi", "gst", "upi" are said letter by letter).
var letterPhones = map[rune][]string{
	'a': {"EY"}, 'b': {"B", "IY"}, 'c': {"S", "IY"}, 'd': {"D", "IY"}, 'e': {"IY"},
	'f': {"EH", "F"}, 'g': {"JH", "IY"}, 'h': {"EY", "CH"}, 'i': {"AY"}, 'j': {"JH", "EY"},
	'k': {"K", "EY"}, 'l': {"EH", "L"}, 'm': {"EH", "M"}, 'n': {"EH", "N"}, 'o': {"OW"},
	'p': {"P", "IY"}, 'q': {"K", "Y", "UW"}, 'r': {"AA", "R"}, 's': {"EH", "S"}, 't': {"T", "IY"},
	'u': {"Y", "UW"}, 'v': {"V", "IY"}, 'w': {"D", "AH", "B", "AH", "L", "Y", "UW"},
	'x': {"EH", "K", "S"}, 'y': {"W", "AY"}, 'z': {"Z", "IY"},
}

// spell returns the letter-by-letter pronunciation of w, or nil if w has
// characters that cannot be spelled.
func spell(w string) []string {
	var out []string
	for _, r := range w {
		p, ok := letterPhones[r]
		if !ok {
			if r == '\'' {
				continue
			}
			return nil
		}
		out = append(out, p...)
	}
	return out
}

// maxSpelledLen is the longest word the dictionary lacks that is taken for
// an acronym and spelled letter by letter ("emi", "upi", "gst"); longer
// ones are pronounced from the dictionary's pieces (see [lexicon.guess]).
const maxSpelledLen = 3

// suffixPhones pronounce common English endings that are not dictionary
// words, for the pieces of a word the dictionary lacks ("instalment").
var suffixPhones = map[string][]string{
	"ment": {"M", "AH", "N", "T"}, "tion": {"SH", "AH", "N"}, "sion": {"ZH", "AH", "N"},
	"ing": {"IH", "NG"}, "ness": {"N", "AH", "S"}, "ful": {"F", "AH", "L"},
}

// pronounce returns w's pronunciations: the dictionary's, or one made for a
// word it lacks ([lexicon.guess]). nil means w cannot be pronounced.
func (lex lexicon) pronounce(w string) [][]string {
	if p := lex[w]; len(p) > 0 {
		return p
	}
	if g := lex.guess(w); g != nil {
		return [][]string{g}
	}
	return nil
}

// guess makes a pronunciation for a word the dictionary lacks, the way a
// caller reads it:
//
//   - a short word, or one without a vowel, is an acronym and is spelled
//     letter by letter ("upi", "gst", "pwd");
//   - a dictionary word with an "s" is its plural ("timings");
//   - anything else is read as a run of pieces: dictionary words of two
//     letters or more and common endings, with single letters spelled
//     where no piece fits. The run with the fewest spelled letters, then
//     the fewest pieces, wins: "paytm" is "pay" + "t" + "m" (P EY T IY EH
//     M, not P IY EY T IY EH M), "kolkata" "kol" + "ka" + "ta",
//     "promocode" "promo" + "code".
//
// It returns nil when w has a character that cannot be spelled.
func (lex lexicon) guess(w string) []string {
	w = strings.ReplaceAll(w, "'", "")
	if w == "" || spell(w) == nil {
		return nil
	}
	if len(w) <= maxSpelledLen || !strings.ContainsAny(w, "aeiouy") {
		return spell(w)
	}
	if stem, ok := strings.CutSuffix(w, "s"); ok && !strings.HasSuffix(stem, "s") {
		if p := lex.pronounce(stem); len(p) > 0 {
			return plural(p[0])
		}
	}
	// best[i] is the best reading of w[:i].
	type reading struct {
		spelled, pieces int
		phones          []string
		ok              bool
	}
	best := make([]reading, len(w)+1)
	best[0].ok = true
	for i := range len(w) {
		if !best[i].ok {
			continue
		}
		try := func(j, spelled int, phones []string) {
			r := reading{spelled: best[i].spelled + spelled, pieces: best[i].pieces + 1, ok: true}
			if b := best[j]; b.ok && (b.spelled < r.spelled || (b.spelled == r.spelled && b.pieces <= r.pieces)) {
				return
			}
			r.phones = join(best[i].phones, phones)
			best[j] = r
		}
		for j := len(w); j >= i+2; j-- {
			piece := w[i:j]
			if p := lex[piece]; len(p) > 0 {
				try(j, 0, p[0])
			} else if p, ok := suffixPhones[piece]; ok {
				try(j, 0, p)
			}
		}
		try(i+1, 1, letterPhones[rune(w[i])])
	}
	return best[len(w)].phones
}

// plural adds the plural ending to a pronunciation: IH Z after a sibilant,
// S after another voiceless consonant, else Z.
func plural(p []string) []string {
	out := slices.Clone(p)
	switch p[len(p)-1] {
	case "S", "Z", "SH", "ZH", "CH", "JH":
		return append(out, "IH", "Z")
	case "P", "T", "K", "F", "TH":
		return append(out, "S")
	}
	return append(out, "Z")
}

// join appends b's phones to a's, dropping b's first phone when it repeats
// a's last ("hal" + "lo" is HH AE L OW).
func join(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(out, a...)
	if len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[0] {
		b = b[1:]
	}
	return append(out, b...)
}

// digitWords names the digits, used to normalise numbers in phrases.
var digitWords = [...]string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

// normalize lower-cases s and splits it into words the recogniser can
// output: letters and inner apostrophes; digits become digit words; every
// other character separates words.
func normalize(s string) []string {
	var words []string
	var b strings.Builder
	flush := func() {
		w := strings.Trim(b.String(), "'")
		if w != "" {
			words = append(words, w)
		}
		b.Reset()
	}
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r == '\'':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			flush()
			words = append(words, digitWords[r-'0'])
		case unicode.IsLetter(r):
			// Letters outside a-z (accents, other scripts) have no
			// pronunciation in the en-us dictionary: drop them.
			continue
		default:
			flush()
		}
	}
	flush()
	return words
}
