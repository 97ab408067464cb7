package faq

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxQueryRunes caps how much of a user's text the matcher reads. FAQ
// questions are short; a longer text is cut here so a pasted essay costs no
// more than a sentence.
const maxQueryRunes = 512

// contractions expands the apostrophe-less forms that remain once
// punctuation is removed ("what's" becomes "whats"), so typed and
// transcribed text agree with the FAQ's own wording. The table is general
// English, not tied to any FAQ.
var contractions = map[string][]string{
	"whats": {"what", "is"}, "wheres": {"where", "is"}, "whens": {"when", "is"},
	"hows": {"how", "is"}, "whos": {"who", "is"}, "thats": {"that", "is"},
	"its": {"it", "is"}, "theres": {"there", "is"}, "heres": {"here", "is"},
	"im": {"i", "am"}, "ive": {"i", "have"}, "ill": {"i", "will"}, "id": {"i", "would"},
	"youre": {"you", "are"}, "youve": {"you", "have"}, "theyre": {"they", "are"},
	"dont": {"do", "not"}, "doesnt": {"does", "not"}, "didnt": {"did", "not"},
	"cant": {"can", "not"}, "cannot": {"can", "not"}, "wont": {"will", "not"},
	"isnt": {"is", "not"}, "arent": {"are", "not"}, "wasnt": {"was", "not"},
	"werent": {"were", "not"}, "hasnt": {"has", "not"}, "havent": {"have", "not"},
	"hadnt": {"had", "not"}, "couldnt": {"could", "not"}, "shouldnt": {"should", "not"},
	"wouldnt": {"would", "not"}, "lets": {"let", "us"},
	"wanna": {"want", "to"}, "gonna": {"going", "to"}, "gotta": {"got", "to"},
}

// stopWords are English function words and spoken fillers. They are kept
// (they still tell "where is my order" from "when will my order arrive") but
// weigh little, and when a user says one the FAQ never uses it does not count
// against the match the way an unknown content word does.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an the and or but if so then than to of in on at by for
		with from into onto about as up out off over under again
		i me my mine we us our you your yours he him his she her it its they them their
		this that these those there here
		am is are was were be been being do does did done have has had having
		can could will would shall should may might must
		not no yes ok okay please pls plz thanks thank just also very really
		um uhm umm uh uhh er erm hmm ah oh like well
		some any all one get got know want need would like tell let
		sir madam maam kindly actually basically exactly still yet already anymore ever even
		till until now
		`) {
		m[w] = true
	}
	return m
}()

// normalize turns text into lower-case word tokens: letters and digits are
// kept, apostrophes are dropped inside words, everything else separates
// words, and contractions are expanded. Invalid UTF-8 is treated as a
// separator. At most maxQueryRunes runes are read.
func normalize(text string) []string {
	var (
		tokens []string
		word   strings.Builder
		runes  int
	)
	flush := func() {
		if word.Len() == 0 {
			return
		}
		w := word.String()
		word.Reset()
		if exp, ok := contractions[w]; ok {
			tokens = append(tokens, exp...)
			return
		}
		tokens = append(tokens, w)
	}
	for i := 0; i < len(text) && runes < maxQueryRunes; runes++ {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			flush()
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			word.WriteRune(unicode.ToLower(r))
		case r == '\'' || r == '’' || r == '`':
			// "what's" -> "whats": the contraction table expands it.
		default:
			flush()
		}
	}
	flush()
	return tokens
}

// stem reduces an English word to a crude stem so that "orders", "ordered"
// and "ordering" meet. It is a deliberately small suffix stripper (plural,
// -ing, -ed, -ly, final -e, doubled final consonant), enough for short
// questions; words of four letters or fewer are left alone.
func stem(w string) string {
	if len(w) <= 4 || !isASCII(w) {
		return w
	}
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 5:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "ches"), strings.HasSuffix(w, "shes"), strings.HasSuffix(w, "xes"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") &&
		!strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		w = w[:len(w)-1]
	}
	switch {
	case strings.HasSuffix(w, "ing") && hasVowel(w[:len(w)-3]) && len(w) > 6:
		w = undouble(w[:len(w)-3])
	case strings.HasSuffix(w, "ed") && hasVowel(w[:len(w)-2]) && len(w) > 5:
		w = undouble(w[:len(w)-2])
	case strings.HasSuffix(w, "ly") && len(w) > 6:
		w = w[:len(w)-2]
	}
	if len(w) > 4 && strings.HasSuffix(w, "e") {
		w = w[:len(w)-1]
	}
	if strings.HasSuffix(w, "y") && len(w) > 4 {
		// "delivery"/"deliveries" and "delivered" should meet at "deliver".
		w = w[:len(w)-1]
	}
	return w
}

// undouble drops one letter of a doubled final consonant ("shipp" -> "ship").
func undouble(w string) string {
	n := len(w)
	if n >= 3 && w[n-1] == w[n-2] && !strings.ContainsRune("aeiouls", rune(w[n-1])) {
		return w[:n-1]
	}
	return w
}

func hasVowel(s string) bool { return strings.ContainsAny(s, "aeiouy") }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// speechText is the form of a phrase given to speech recognisers: the
// normalised words joined by single spaces, with contractions expanded
// ("i can't" -> "i can not") so every word is a dictionary word.
func speechText(s string) string {
	return strings.Join(normalize(s), " ")
}

// contrastive are the conjunctions after which a sentence says what
// matters ("i returned it but there is no refund").
var contrastive = map[string]bool{"but": true, "however": true, "though": true, "although": true}

// salutation is the greeting group's word ("hello", "hi", "hey", ...):
// opening a sentence of more than salutationWords words it is politeness,
// not the question.
const (
	salutation      = "hello"
	salutationWords = 4
)

// numberWords are the digit names a speech recogniser's vocabulary holds
// for menus and order numbers (see DefaultMenuWords). Telephone recognisers
// insert them into questions ("do you deliver to to nine" for "... to
// chennai"); an FAQ that never uses one gains nothing by counting it at the
// weight of an unknown content word, which sinks the match. A number word
// the FAQ lacks therefore weighs as a function word; one the FAQ uses
// ("one year warranty") is scored like any other word.
var numberWords = map[string]bool{
	"zero": true, "oh": true, "one": true, "two": true, "three": true, "four": true, "five": true,
	"six": true, "seven": true, "eight": true, "nine": true, "ten": true,
}
