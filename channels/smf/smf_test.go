package smf_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

func TestFit(t *testing.T) {
	qr := func(titles ...string) []smf.QuickReply {
		var out []smf.QuickReply
		for _, s := range titles {
			out = append(out, smf.QuickReply{Title: s, Payload: s})
		}
		return out
	}
	tests := []struct {
		name   string
		limits smf.Limits
		in     smf.Message
		want   smf.Message
	}{
		{"plain text untouched", smf.Messenger, smf.Message{Text: "hello"}, smf.Message{Text: "hello"}},
		{"quick replies kept where supported", smf.Messenger, smf.Message{Text: "Pick", QuickReplies: qr("Orders", "Returns")},
			smf.Message{Text: "Pick", QuickReplies: qr("Orders", "Returns")}},
		{"quick replies listed where not supported", smf.Twilio, smf.Message{Text: "Pick", QuickReplies: qr("Orders", "Returns")},
			smf.Message{Text: "Pick\n\n1. Orders\n2. Returns"}},
		{"buttons listed where not supported", smf.Jio, smf.Message{Text: "See", Buttons: []smf.Button{{Type: smf.ButtonURL, Title: "Stores", URL: "https://x.example/s"}, {Type: smf.ButtonPostback, Title: "Help", Payload: "help"}}},
			smf.Message{Text: "See\n\n1. Stores: https://x.example/s\n2. Help"}},
		{"count and title cut", smf.WhatsAppInteractive, smf.Message{Text: "Pick", QuickReplies: qr("one", "two", "three", "four", "a title much longer than twenty")},
			smf.Message{Text: "Pick", QuickReplies: qr("one", "two", "three")}},
		{"title cut at 20 runes", smf.Messenger, smf.Message{Text: "x", QuickReplies: []smf.QuickReply{{Title: "ééééééééééééééééééééééé", Payload: "p"}}},
			smf.Message{Text: "x", QuickReplies: []smf.QuickReply{{Title: "ééééééééééééééééééé…", Payload: "p"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.limits.Fit(tt.in)
			if got.Text != tt.want.Text || len(got.QuickReplies) != len(tt.want.QuickReplies) || len(got.Buttons) != len(tt.want.Buttons) {
				t.Fatalf("Fit = %+v, want %+v", got, tt.want)
			}
			for i := range got.QuickReplies {
				if got.QuickReplies[i] != tt.want.QuickReplies[i] {
					t.Fatalf("quick reply %d = %+v, want %+v", i, got.QuickReplies[i], tt.want.QuickReplies[i])
				}
			}
		})
	}
}

func TestTruncateNeverSplitsARune(t *testing.T) {
	for _, s := range []string{strings.Repeat("🙂", 3000), strings.Repeat("aé", 1500), "नमस्ते दुनिया " + strings.Repeat("x", 3000)} {
		for _, max := range []int{1, 2, 20, 1024, 1600, 2000} {
			got := smf.Truncate(s, max)
			if !utf8.ValidString(got) || utf8.RuneCountInString(got) > max {
				t.Fatalf("Truncate(%.10q, %d) = %d runes, valid %v", s, max, utf8.RuneCountInString(got), utf8.ValidString(got))
			}
		}
	}
	if smf.Truncate("short", 10) != "short" || smf.Truncate("anything", 0) != "anything" {
		t.Fatal("Truncate changed text within the limit")
	}
}

func TestFromStoredAndOutbox(t *testing.T) {
	m := smf.FromStored(&ivr.Message{Text: "Hi", QuickReplies: []string{"Orders", " ", "Returns"}})
	if m.Text != "Hi" || len(m.QuickReplies) != 2 || m.QuickReplies[1] != (smf.QuickReply{Title: "Returns", Payload: "Returns"}) {
		t.Fatalf("FromStored = %+v", m)
	}
	var om outbox.Message
	om.Message.Body.Text = "Hi"
	om.Message.Body.Data.QuickReplies = []string{"Orders"}
	if got := smf.FromOutbox(om); got.Text != "Hi" || len(got.QuickReplies) != 1 {
		t.Fatalf("FromOutbox = %+v", got)
	}
}
