package ivr

import "testing"

func TestRecordEndReason(t *testing.T) {
	for _, tc := range []struct{ status, want string }{
		{"silence", "silence"},
		{" Silence ", "silence"},
		{"dtmf", "dtmf"},
		{"hangup", "hangup"},
		{"no_input", "no_input"},
		{"max_duration", "max_duration"},
		{"maxtime", "max_duration"},
		{"barge_in:silence:heard_ms=420", "barge_in"},
		{"", "other"},
		{"unknown", "other"},
		{"9704665032", "other"}, // never a free-form label value
	} {
		if got := recordEndReason(tc.status); got != tc.want {
			t.Errorf("recordEndReason(%q) = %q, want %q", tc.status, got, tc.want)
		}
	}
}
