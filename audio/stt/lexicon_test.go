package stt

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testLexicon is a few entries of pocketsphinx's cmudict-en-us.dict.
const testLexicon = `pay P EY
pa P AA
phone F OW N
pho F OW
kol K OW L
kat K AE T
ka K AA
ta T AA
hal HH AE L
hall HH AO L
lo L OW
hi HH AY
ya Y AA
promo P R OW M OW
code K OW D
timing T AY M IH NG
warrant W AO R AH N T
ee IY
ins IH N Z
tal T AE L
box B AA K S
order AO R D ER
order(2) AO D ER
`

func TestLexiconPronounce(t *testing.T) {
	lex, err := parseDict(strings.NewReader(testLexicon), 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		word string
		want [][]string
	}{
		{"order", [][]string{{"AO", "R", "D", "ER"}, {"AO", "D", "ER"}}}, // the dictionary's, every one
		{"upi", [][]string{{"Y", "UW", "P", "IY", "AY"}}},                // short: an acronym, spelled
		{"emi", [][]string{{"IY", "EH", "M", "AY"}}},
		{"pwd", [][]string{{"P", "IY", "D", "AH", "B", "AH", "L", "Y", "UW", "D", "IY"}}}, // no vowel: spelled
		{"paytm", [][]string{{"P", "EY", "T", "IY", "EH", "M"}}},                          // pay T M, not P A Y T M
		{"kolkata", [][]string{{"K", "OW", "L", "K", "AA", "T", "AA"}}},                   // no letter spelled beats fewer pieces
		{"promocode", [][]string{{"P", "R", "OW", "M", "OW", "K", "OW", "D"}}},
		{"hallo", [][]string{{"HH", "AE", "L", "OW"}}}, // the repeated L at the join once
		{"hiya", [][]string{{"HH", "AY", "Y", "AA"}}},
		{"warrantee", [][]string{{"W", "AO", "R", "AH", "N", "T", "IY"}}},
		{"timings", [][]string{{"T", "AY", "M", "IH", "NG", "Z"}}},                              // plural of a dictionary word
		{"boxs", [][]string{{"B", "AA", "K", "S", "IH", "Z"}}},                                  // after a sibilant
		{"instalments", [][]string{{"IH", "N", "Z", "T", "AE", "L", "M", "AH", "N", "T", "S"}}}, // pieces, an ending, a plural
		{"phonepe", [][]string{{"F", "OW", "N", "P", "IY"}}},                                    // letters spelled where no piece fits (P, E: one IY)
		{"o'pay", [][]string{{"OW", "P", "EY"}}},                                                // apostrophes dropped
		{"naïve", nil},                                                                          // a letter outside a-z
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			got := lex.pronounce(tt.word)
			if !slices.EqualFunc(got, tt.want, slices.Equal[[]string]) {
				t.Errorf("pronounce(%q) = %q, want %q", tt.word, got, tt.want)
			}
		})
	}
}

// TestLexiconDemoWords pronounces the demo FAQ's words that the real
// dictionary lacks, when the model is installed.
func TestLexiconDemoWords(t *testing.T) {
	f, err := os.Open(filepath.Join(DefaultModelDir, "cmudict-en-us.dict"))
	if err != nil {
		t.Skip("pocketsphinx-en-us dictionary not installed (make test installs it)")
	}
	defer f.Close()
	lex, err := parseDict(f, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	for word, want := range map[string]string{
		"paytm":   "P EY T IY EH M",
		"phonepe": "F OW N P IY",
		"kolkata": "K OW K AA T AH", // "kolk" + "ata": two pieces beat three
		"upi":     "Y UW P IY AY",
		"timings": "T AY M IH NG Z",
	} {
		if len(lex[word]) > 0 {
			t.Errorf("%q is in the dictionary now: pick another word it lacks", word)
			continue
		}
		got := lex.pronounce(word)
		if len(got) != 1 || strings.Join(got[0], " ") != want {
			t.Errorf("pronounce(%q) = %q, want %q", word, got, want)
		}
	}
}
