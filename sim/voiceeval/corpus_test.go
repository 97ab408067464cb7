package voiceeval

import (
	"bytes"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
)

// TestCorpus checks the corpus against the requirements: at least
// 150 questions, 50 off-topic utterances and 30 answers, every question
// labelled with a node of the demo FAQ and none a copy of its user-says, the
// four reported questions in the test split, and both splits holding every
// kind.
func TestCorpus(t *testing.T) {
	items, err := Corpus()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := faq.ParseCSV(bytes.NewReader(demo.FAQ()), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	says := map[string]bool{}
	for _, n := range nodes {
		known[n.Name] = true
		for _, u := range n.UserSays {
			says[strings.ToLower(u)] = true
		}
	}
	count := map[Kind]int{}
	perSplit := map[string]map[Kind]int{SplitTune: {}, SplitTest: {}}
	perNode := map[string]int{}
	for _, it := range items {
		count[it.Kind]++
		perSplit[it.Split][it.Kind]++
		if it.Kind == KindQuestion {
			if !known[it.Expect] {
				t.Errorf("line %d: unknown node %q", it.Line, it.Expect)
			}
			if says[it.Text] {
				t.Errorf("line %d: %q copies a user_says of the FAQ", it.Line, it.Text)
			}
			perNode[it.Expect]++
		}
	}
	for k, min := range map[Kind]int{KindQuestion: 150, KindOffTopic: 50, KindAnswer: 30} {
		if count[k] < min {
			t.Errorf("%d %s utterances, want at least %d", count[k], k, min)
		}
		for split, c := range perSplit {
			if c[k] < min/4 {
				t.Errorf("%s split has %d %s utterances", split, c[k], k)
			}
		}
	}
	for n := range known {
		if perNode[n] < 5 {
			t.Errorf("node %s has %d questions, want at least 5", n, perNode[n])
		}
	}
	test := map[string]bool{}
	for _, it := range Select(items, SplitTest) {
		test[it.Text] = true
	}
	for _, q := range []string{"when are you open on sunday", "do you deliver to chennai", "my phone screen is broken what do i do", "can i pay with paytm"} {
		if !test[q] {
			t.Errorf("%q is not in the test split", q)
		}
	}
	if share := float64(perSplit[SplitTest][KindQuestion]) / float64(count[KindQuestion]); share < 0.35 || share > 0.45 {
		t.Errorf("test split holds %.0f%% of the questions, want about 40%%", 100*share)
	}
}

func TestParseCorpusErrors(t *testing.T) {
	const head = "split\tkind\texpect\ttext\n"
	for _, tc := range []struct{ name, in, want string }{
		{"no header", "tune\tquestion\thours\tx\n", "header"},
		{"empty", "# only a comment\n", "no header"},
		{"fields", head + "tune\tquestion\thours\n", "3 fields"},
		{"split", head + "dev\tquestion\thours\tx\n", "split"},
		{"kind", head + "tune\tstatement\thours\tx\n", "kind"},
		{"question without node", head + "tune\tquestion\t-\tx\n", "expected node"},
		{"offtopic with node", head + "tune\tofftopic\thours\tx\n", "want -"},
		{"answer", head + "tune\tanswer\tmaybe\tx\n", "yes, no or cancel"},
		{"empty text", head + "tune\tquestion\thours\t \n", "empty text"},
		{"duplicate", head + "tune\tquestion\thours\tx\ntest\tquestion\thours\tx\n", "repeats"},
		{"long line", head + "tune\tquestion\thours\t" + strings.Repeat("a", 2000) + "\n", "token too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCorpus([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestAnswerOf(t *testing.T) {
	for in, want := range map[string]string{
		"yes": AnswerYes, "yes please": AnswerYes, "okay": AnswerYes, "no": AnswerNo, "no thank you": AnswerNo,
		"cancel": AnswerCancel, "no cancel it": AnswerCancel, "go back": AnswerCancel, "": "", "delivery charges": "",
	} {
		if got := AnswerOf(in); got != want {
			t.Errorf("AnswerOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"a b c", "a b c", 0}, {"a b c", "a c", 1}, {"a b", "a x b y", 2}, {"", "a b", 2}, {"a b", "", 2},
		{"where's my order", "wheres my order", 0},
	} {
		if got := editDistance(words(tc.a), words(tc.b)); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestParseReply(t *testing.T) {
	r, err := parseReply([]byte(`<response sid="1"><playtext quality="best">Delivery is free.</playtext><playtext>Do you want to know about delivery charges? Say yes or no.</playtext><record format="wav" silence="3" maxduration="10">x</record></response>`))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Record || r.Dial || r.Hangup || len(r.Texts) != 2 {
		t.Fatalf("reply %+v", r)
	}
	if got := confirmation(r); got != "delivery charges" {
		t.Errorf("confirmation = %q", got)
	}
	if got := confirmation(Reply{Texts: []string{"Do you want to talk to an agent? Say yes or no."}}); got != "talk to agent" {
		t.Errorf("agent confirmation = %q", got)
	}
	if _, err := parseReply([]byte(`<response><playtext>`)); err == nil {
		t.Error("truncated response parsed")
	}
	a, err := demoAnswers()
	if err != nil {
		t.Fatal(err)
	}
	if n := a.node(Reply{Texts: []string{"Delivery is free for orders above five hundred rupees. Below that we charge forty nine rupees."}}); n != "delivery_charges" {
		t.Errorf("node = %q", n)
	}
	if n := a.node(Reply{Texts: []string{"Sorry, I did not hear you."}}); n != "" {
		t.Errorf("re-prompt classified as %q", n)
	}
}

func TestTelephoneDeterministic(t *testing.T) {
	speech := Telephone(tone(), VariantClean, 1)
	if len(speech.Samples) != 8000+2400+4000 {
		t.Fatalf("%d samples", len(speech.Samples))
	}
	a := Telephone(tone(), VariantNoise, 7)
	b := Telephone(tone(), VariantNoise, 7)
	c := Telephone(tone(), VariantNoise, 8)
	if !equal(a.Samples, b.Samples) {
		t.Error("same seed, different noise")
	}
	if equal(a.Samples, c.Samples) {
		t.Error("different seeds, same noise")
	}
	if equal(a.Samples, speech.Samples) {
		t.Error("noise variant adds no noise")
	}
}

func TestParseSynths(t *testing.T) {
	s, err := ParseSynths("flite,espeak-ng/en-gb-x-rp")
	if err != nil || len(s) != 5 || s[4] != (Synth{EngineEspeak, "en-gb-x-rp"}) {
		t.Fatalf("ParseSynths = %v, %v", s, err)
	}
	for _, bad := range []string{"festival", "flite/", ""} {
		if _, err := ParseSynths(bad); err == nil {
			t.Errorf("ParseSynths(%q) accepted", bad)
		}
	}
}
