package kookoo

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseResponseTolerant(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		want     Response
		warnings []string
	}{
		{
			name: "PHP addRecord('filename2','wav','120')",
			doc: `<?xml version="1.0" encoding="UTF-8"?>
<response><playtext lang="EN" speed="2" quality="best">Please record your message after beep </playtext><record silence="wav" maxduration="120" termchar="#">filename2</record></response>`,
			want: Response{Verbs: []Verb{
				PlayText{Text: "Please record your message after beep", Lang: "EN", Speed: 2, Quality: "best"},
				Record{Name: "filename2", MaxDuration: 120 * time.Second, TermChar: "#"},
			}},
			warnings: []string{`<record> silence="wav" is not an integer; KooKoo's default 4 is used`},
		},
		{
			name: "non-numeric maxduration, out-of-range speed, odd-case values",
			doc:  `<Response filler="YES"><PlayText Speed="12">hi</PlayText><Record Format="WAV" maxDuration="2m" SILENCE="3">n</Record></Response>`,
			want: Response{Filler: true, Verbs: []Verb{
				PlayText{Text: "hi"},
				Record{Name: "n", Format: "wav", Silence: 3 * time.Second},
			}},
			warnings: []string{
				`<playtext> Speed="12" is over 9; KooKoo's default 2 is used`,
				`<record> maxDuration="2m" is not an integer; KooKoo's default 60 is used`,
			},
		},
		{
			name: "unknown attribute ignored, documented ones silent",
			doc:  `<response><conference caller_id="" record="true" version="1" timeout="-1" colour="red">1234</conference></response>`,
			want: Response{Verbs: []Verb{Conference{Name: "1234", Record: true}}},
			warnings: []string{
				`<conference> colour="red" is not a KooKoo attribute of this tag; ignored`,
			},
		},
		{
			name: "bad booleans, enums and keys",
			doc:  `<response><collectdtmf l="x" t="##" o="soon"><playtext>pin</playtext></collectdtmf><dial record="maybe" moh="loud" timeout="30">99999999</dial></response>`,
			want: Response{Verbs: []Verb{
				CollectDTMF{Prompts: []Verb{PlayText{Text: "pin"}}},
				Dial{Number: "99999999", Timeout: 30 * time.Second},
			}},
			warnings: []string{
				`<collectdtmf> l="x" is not an integer; KooKoo's default none (keys until t or o) is used`,
				`<collectdtmf> o="soon" is not an integer; KooKoo's default 4000 is used`,
				`<collectdtmf> t="##" is not one keypad key; KooKoo's default none is used`,
				`<dial> record="maybe" is not a boolean; KooKoo's default false is used`,
				`<dial> moh="loud" is not one of default, ring, normal; KooKoo's default default is used`,
			},
		},
		{
			name: "stray text and tags are skipped",
			doc:  `<response>oops<playtext>a <b>bold</b> word</playtext><collectdtmf>x<record>r</record></collectdtmf></response><extra/>`,
			want: Response{Verbs: []Verb{
				PlayText{Text: "a bold word"},
				CollectDTMF{},
			}},
			warnings: []string{
				"<response> holds text outside any tag; ignored",
				"<playtext> holds <b>; its text is read, the tag; ignored",
				"<collectdtmf> holds text outside <playtext> or <playaudio>; ignored",
				"<collectdtmf> cannot hold <record>, which; ignored",
				"<response> is followed by <extra>, which; ignored",
			},
		},
		{
			name:     "empty body read as <response/>",
			doc:      "\n   \n\t",
			want:     Response{},
			warnings: []string{"<response> is missing: the body is empty; read as <response/>"},
		},
		{
			name: "empty response, no warnings",
			doc:  `<?xml version="1.0" encoding="UTF-8"?>` + "\n<response/>\n",
			want: Response{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns, err := ParseResponseTolerant([]byte(tt.doc))
			if err != nil {
				t.Fatalf("ParseResponseTolerant: %v", err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("response (-want +got):\n%s", d)
			}
			var texts []string
			for _, w := range warns {
				texts = append(texts, w.String())
			}
			if d := cmp.Diff(tt.warnings, texts); d != "" {
				t.Errorf("warnings (-want +got):\n%s", d)
			}
			// Strict reading refuses what needed a warning, but for
			// unknown attributes (dropped silently, as before).
			if _, err := ParseResponse([]byte(tt.doc)); err == nil && len(warns) > 0 && tt.name != "unknown attribute ignored, documented ones silent" {
				t.Errorf("strict ParseResponse accepted a document that needed warnings")
			}
		})
	}
}

func TestParseResponseTolerantStillFails(t *testing.T) {
	for _, tt := range []struct {
		doc  string
		want error
	}{
		{"<response><playtext>hi</response>", ErrMalformedResponse},
		{"<html><body>Fatal error</body></html>", ErrMalformedResponse},
		{"PHP Warning: undefined index", ErrMalformedResponse},
		{"<response>", ErrMalformedResponse},
	} {
		if _, _, err := ParseResponseTolerant([]byte(tt.doc)); !errors.Is(err, tt.want) {
			t.Errorf("ParseResponseTolerant(%q) error = %v, want %v", tt.doc, err, tt.want)
		}
	}
}

// FuzzParseResponseTolerant checks that tolerant reading never panics,
// accepts everything strict reading accepts, and gives a Response that
// renders to a document strict reading accepts.
func FuzzParseResponseTolerant(f *testing.F) {
	f.Add(`<response><record silence="wav" maxduration="120">f</record></response>`)
	f.Add(`<Response filler="yes"><PlayText speed="x">a<b>c</b></PlayText></Response><x/>`)
	f.Add(`<response><collectdtmf l="1" t="#" o="4000"><playtext>p</playtext>t<dial/></collectdtmf></response>`)
	f.Add(`<response><conference version="1" timeout="-1">1234</conference><gotourl clean_params="false">http://a/b</gotourl></response>`)
	f.Fuzz(func(t *testing.T, doc string) {
		resp, warns, err := ParseResponseTolerant([]byte(doc))
		if _, serr := ParseResponse([]byte(doc)); serr == nil && err != nil {
			t.Fatalf("strict accepted %q, tolerant failed: %v", doc, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, ErrEmptyResponse) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(warns) > maxWarnings {
			t.Fatalf("%d warnings, cap %d", len(warns), maxWarnings)
		}
		for _, w := range warns {
			if w.Tag == "" || w.Problem == "" || w.String() == "" {
				t.Fatalf("incomplete warning %+v", w)
			}
		}
		if _, err := ParseResponse(resp.Render()); err != nil {
			t.Fatalf("Render of the tolerant reading of %q does not parse: %v", doc, err)
		}
	})
}
