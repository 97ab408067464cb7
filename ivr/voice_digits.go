package ivr

import (
	"slices"
	"strings"
	"unicode"

	"github.com/koelvoice/koel/audio/stt"
)

// digitWords are the words a caller says for digits, for the recogniser's
// digits pass while a value is collected.
var digitWords = []string{"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

// digitsVocabularyKey names the digits vocabulary; change it with the words.
const digitsVocabularyKey = "koel-digits-v1"

// DigitsVocabulary is the closed vocabulary of the recogniser's digits pass
// in the collecting state: every digit word alone and every pair, so that
// the language model built from it allows a sequence of any length.
func DigitsVocabulary() stt.Vocabulary {
	phrases := make([]string, 0, len(digitWords)*(len(digitWords)+1))
	for _, a := range digitWords {
		phrases = append(phrases, a)
		for _, b := range digitWords {
			phrases = append(phrases, a+" "+b)
		}
	}
	return stt.Vocabulary{Key: digitsVocabularyKey, Phrases: phrases, Closed: true}
}

// CountDigits counts the digits text holds, written ("1042" is four) or
// as digit words ("one zero four two"). Words that only sound like digits
// ("for", "to") do not count.
func CountDigits(text string) int {
	n := 0
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if slices.Contains(digitWords, w) {
			n++
			continue
		}
		for _, r := range w {
			if unicode.IsDigit(r) {
				n++
			}
		}
	}
	return n
}
