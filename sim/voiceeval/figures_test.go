package voiceeval

import (
	"math"
	"testing"
)

// TestFigures checks the per-group figures on hand-made outcomes, in
// particular that a confirmation of the right topic whose spoken yes was
// not heard counts for "within one (key 1)" but not for "within one", and
// shows in YesHeard: a build without the yes/no pass (yes heard 0 %) must
// not look like one whose confirmations name the wrong topic.
func TestFigures(t *testing.T) {
	q := func(expect string) Item { return Item{Text: "q " + expect, Kind: KindQuestion, Expect: expect} }
	off := Item{Text: "the weather", Kind: KindOffTopic}
	tests := []struct {
		name string
		out  []Outcome
		want Figures
	}{
		{
			name: "answered, confirmed and heard, confirmed and not heard, wrong",
			out: []Outcome{
				{Item: q("opening_hours"), Answered: "opening_hours"},
				{Item: q("delivery_time"), Confirmed: "delivery time", Final: "delivery_time"},
				{Item: q("refund_status"), Confirmed: "refund status"},
				{Item: q("warranty"), Answered: "repair"},
				{Item: off},
				{Item: off, Confirmed: "offers"},
				{Item: off, Answered: "offers"},
			},
			want: Figures{Questions: 4, OffTopic: 3, FirstRight: 0.25, WithinOne: 0.5, WithinOneKey: 0.75, YesHeard: 0.5,
				Confirmations: 3.0 / 7, ConfidentlyWrong: 0.25, OffTopicRejected: 2.0 / 3},
		},
		{
			name: "a spoken no taken as a yes",
			out: []Outcome{
				{Item: q("emi"), Confirmed: "offers", Final: "offers"},
				{Item: q("invoice"), Confirmed: "warranty"},
				{Item: off, Confirmed: "offers", Final: "offers"},
				{Item: off, Confirmed: "greeting"},
			},
			want: Figures{Questions: 2, OffTopic: 2, Confirmations: 1, NoTakenAsYes: 0.5, OffTopicRejected: 1},
		},
		{
			name: "confirmations of the wrong topic: no yes to hear",
			out: []Outcome{
				{Item: q("emi"), Confirmed: "offers"},
				{Item: q("invoice"), Confirmed: "unknown"},
			},
			want: Figures{Questions: 2, Confirmations: 1},
		},
		{
			name: "every spoken yes lost",
			out: []Outcome{
				{Item: q("emi"), Confirmed: "emi"},
				{Item: q("invoice"), Confirmed: "invoice"},
			},
			want: Figures{Questions: 2, WithinOneKey: 1, Confirmations: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := figures("x", tt.out, func(Outcome) bool { return true })
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"questions", float64(got.Questions), float64(tt.want.Questions)},
				{"offtopic", float64(got.OffTopic), float64(tt.want.OffTopic)},
				{"first", got.FirstRight, tt.want.FirstRight},
				{"within one", got.WithinOne, tt.want.WithinOne},
				{"within one (key)", got.WithinOneKey, tt.want.WithinOneKey},
				{"yes heard", got.YesHeard, tt.want.YesHeard},
				{"no taken as yes", got.NoTakenAsYes, tt.want.NoTakenAsYes},
				{"confirmations", got.Confirmations, tt.want.Confirmations},
				{"wrong", got.ConfidentlyWrong, tt.want.ConfidentlyWrong},
				{"off-topic rejected", got.OffTopicRejected, tt.want.OffTopicRejected},
			} {
				if math.Abs(c.got-c.want) > 1e-9 {
					t.Errorf("%s = %.4f, want %.4f", c.name, c.got, c.want)
				}
			}
		})
	}
}
