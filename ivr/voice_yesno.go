package ivr

import (
	"slices"
	"strings"
	"unicode"

	"github.com/koelvoice/koel/audio/stt"
)

// The yes/no grammar of a confirmation: a small, closed set of phrasings
// (Indian English included), matched on whole words.

var (
	yesWords = map[string]bool{
		"yes": true, "yeah": true, "yah": true, "ya": true, "yep": true, "yup": true, "yess": true,
		"sure": true, "correct": true, "right": true, "ok": true, "okay": true, "okey": true,
		"haan": true, "han": true, "ha": true, "ji": true, "exactly": true, "absolutely": true,
		"definitely": true, "affirmative": true, "please": true,
	}
	noWords = map[string]bool{
		"no": true, "nope": true, "nah": true, "not": true, "wrong": true, "nahi": true, "nahin": true,
		"na": true, "never": true, "incorrect": true, "dont": true, "don't": true, "cancel": true,
	}
	// fillers may surround a yes or a no without changing it.
	fillers = map[string]bool{
		"um": true, "uh": true, "er": true, "hmm": true, "oh": true, "well": true, "i": true, "it": true,
		"is": true, "that": true, "thats": true, "that's": true, "its": true, "it's": true, "do": true,
		"want": true, "to": true, "know": true, "thanks": true, "thank": true, "you": true, "sir": true,
		"madam": true, "maam": true, "the": true, "a": true, "very": true, "much": true, "of": true,
		"course": true, "really": true, "go": true, "ahead": true, "tell": true, "me": true, "say": true, "yes,": true,
	}
)

// maxYesNoWords bounds an utterance read as a yes or a no: longer speech
// is a question.
const maxYesNoWords = 8

// YesNo reads a transcript as the answer to a confirmation: [AnswerYes],
// [AnswerNo], or "" when it is neither (a question, something unclear, or
// both a yes and a no).
func YesNo(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && r != '\''
	})
	if len(words) == 0 || len(words) > maxYesNoWords {
		return ""
	}
	yes, no := false, false
	for _, w := range words {
		switch {
		case noWords[w]:
			no = true
		case yesWords[w]:
			yes = true
		case fillers[w]:
		default:
			return ""
		}
	}
	switch {
	case yes && !no:
		return AnswerYes
	case no && !yes:
		return AnswerNo
	}
	return ""
}

// YesNoMinConfidence is the recogniser confidence a yes or a no of the
// yes/no pass needs, under the open pass's minimum: in the closed
// vocabulary flite slt's "yes" scores 0.34 (its "no" 1.0), and questions
// decoded with it scored at most 0.35 and read as neither.
const YesNoMinConfidence = 0.3

// yesNoPhrases are what a caller may answer to a confirmation, for the
// recogniser's yes/no pass: each reads as a yes or a no ([YesNo]). They
// were written from common telephone phrasing, not from the voice corpus,
// and are single words and repeats on purpose: with "no thank you" in the
// list flite rms's yes came back as "no" (0.28) and awb's as "you"; without
// it, "yes" at 1.0 and "no" at 0.30.
var yesNoPhrases = []string{
	"yes", "yeah", "yep", "yup", "yes please", "yes yes", "sure", "correct", "right", "okay",
	"absolutely", "exactly", "no", "nope", "no no", "wrong", "cancel",
}

// yesNoVocabularyKey names the yes/no vocabulary; change it with the
// phrases.
const yesNoVocabularyKey = "koel-yesno-v2"

// YesNoVocabulary is the closed vocabulary of the recogniser's yes/no pass
// in the confirming state: yes, no and cancel phrasings only. Speech that is
// none of them (a new question) comes back empty or under the recogniser's
// minimum confidence.
func YesNoVocabulary() stt.Vocabulary {
	return stt.Vocabulary{Key: yesNoVocabularyKey, Phrases: slices.Clone(yesNoPhrases), Closed: true}
}
