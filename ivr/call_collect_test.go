package ivr

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestCallCollect covers every transition of a value collection: the
// answer that asks for a value, keys, no keys, speech after the tone, and
// the failures.
func TestCallCollect(t *testing.T) {
	listening := Call{SID: "sid1", Turn: 4, Failures: 1, State: CallStateListening, Repair: CallRepair{Misses: 1}}
	collecting := Call{SID: "sid1", Turn: 4, State: CallStateCollecting}
	collectingAfterTone := Call{SID: "sid1", Turn: 5, State: CallStateCollecting}
	ask := []string{"To track your order, please tell me your order number."}
	prompt := Menu{Prompt: ask[0] + " " + CollectKeysHint, MaxDigits: 8, Timeout: CollectTimeout, Terminator: "#"}
	orderReply := []string{"Your order 1042 is out for delivery."}
	withFailures := func(c Call, n int) Call { c.Failures = n; return c }
	pendingAsk := &PendingAnswer{Reply: ask, Node: "order_status", Topic: "order status", Confidence: 0.5, CollectDigits: 8}
	confirming := Call{SID: "sid1", Turn: 5, State: CallStateConfirming, Repair: CallRepair{Pending: pendingAsk}}

	type want struct {
		state    CallState
		turn     int
		failures int
		misses   int
		band     string
		outcome  string
		pending  *PendingAnswer
		actions  []CallAction
	}
	tests := []struct {
		name string
		call Call
		ev   CallEvent
		s    ConnectionSettings
		want want
	}{
		{
			name: "an answer asking for a value plays inside a key collection",
			call: listening,
			ev:   Recorded{Reply: ask, Confidence: 0.9, Node: "order_status", Topic: "order status", CollectDigits: 8},
			s:    testVoice,
			want: want{state: CallStateCollecting, turn: 4, band: UnderstandingAnswered, actions: []CallAction{prompt}},
		},
		{
			name: "a confident (replayed) answer asking for a value collects too",
			call: listening,
			ev:   Recorded{Reply: []string{"  ", ask[0]}, Confident: true, CollectDigits: 8},
			s:    testVoice,
			want: want{state: CallStateCollecting, turn: 4, band: UnderstandingAnswered, actions: []CallAction{prompt}},
		},
		{
			name: "the keys are capped",
			call: listening,
			ev:   Recorded{Reply: ask, Confident: true, CollectDigits: 500},
			s:    testVoice,
			want: want{state: CallStateCollecting, turn: 4, band: UnderstandingAnswered, actions: []CallAction{
				Menu{Prompt: prompt.Prompt, MaxDigits: MaxCollectKeys, Timeout: CollectTimeout, Terminator: "#"}}},
		},
		{
			name: "a middling answer asking for a value is confirmed first, holding the collection",
			call: listening,
			ev:   Recorded{Reply: ask, Confidence: 0.5, Node: "order_status", Topic: "order status", CollectDigits: 8},
			s:    testVoice,
			want: want{state: CallStateConfirming, turn: 5, band: UnderstandingConfirm, misses: 1, pending: pendingAsk, actions: []CallAction{
				Say{"Do you want to know about order status? Say yes or no."}, listenAt(5)}},
		},
		{
			name: "a yes to it collects the value",
			call: confirming,
			ev:   Recorded{Answer: AnswerYes},
			s:    testVoice,
			want: want{state: CallStateCollecting, turn: 5, band: UnderstandingConfirmed, actions: []CallAction{prompt}},
		},
		{
			name: "key 1 for yes collects the value",
			call: confirming,
			ev:   DTMF{Digits: "1"},
			s:    testVoice,
			want: want{state: CallStateCollecting, turn: 5, band: UnderstandingConfirmed, actions: []CallAction{prompt}},
		},
		{
			name: "a handoff answer never collects",
			call: listening,
			ev:   Recorded{Reply: []string{"Connecting you."}, Confident: true, Handoff: true, CollectDigits: 8},
			s:    testVoice,
			want: want{state: CallStateTransferring, turn: 4, band: UnderstandingAnswered, actions: []CallAction{
				Say{"Connecting you."}, Transfer{Number: "09876543210", CallerID: "918065740671"}}},
		},
		{
			name: "keyed value: the API's answer is spoken and the call listens",
			call: withFailures(collecting, 1),
			ev:   Collected{Digits: "1042", Reply: orderReply, Node: "order_status#api"},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, band: UnderstandingAnswered, actions: []CallAction{Say{orderReply[0]}, listenAt(5)}},
		},
		{
			name: "keyed unknown value: the not-found reply is spoken",
			call: collecting,
			ev:   Collected{Digits: "9999", Reply: []string{"I could not find that order"}},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, band: UnderstandingAnswered, actions: []CallAction{Say{"I could not find that order"}, listenAt(5)}},
		},
		{
			name: "a failed lookup speaks the break message and counts a failure",
			call: collecting,
			ev:   Collected{Digits: "5000", FailReason: FailBot},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, failures: 1, band: UnderstandingFailed, actions: []CallAction{Say{"Sorry, something went wrong."}, listenAt(5)}},
		},
		{
			name: "the last allowed failed lookup hangs up",
			call: withFailures(collecting, 2),
			ev:   Collected{Digits: "5000", FailReason: FailBotTimeout},
			s:    testVoice,
			want: want{state: CallStateHangingUp, turn: 4, failures: 3, band: UnderstandingFailed, outcome: OutcomeFailed, actions: []CallAction{
				Say{"Sorry, something went wrong."}, Say{"Bye now."}, HangUp{}}},
		},
		{
			name: "an agent owning the conversation: a keyed value transfers, saying so",
			call: collecting,
			ev:   Collected{Digits: "1042", Handoff: true},
			s:    testVoice,
			want: want{state: CallStateTransferring, turn: 4, band: UnderstandingAnswered, actions: []CallAction{
				Say{TransferMessage}, Transfer{Number: "09876543210", CallerID: "918065740671"}}},
		},
		{
			name: "no keys: the value is asked for in speech, still collecting, no failure",
			call: withFailures(collecting, 1),
			ev:   DTMF{},
			s:    testVoice,
			want: want{state: CallStateCollecting, turn: 5, failures: 1, actions: []CallAction{Say{CollectSayMessage}, listenAt(5)}},
		},
		{
			name: "only the terminator counts as no keys",
			call: collecting,
			ev:   DTMF{Digits: "#"},
			s:    testVoice,
			want: want{state: CallStateCollecting, turn: 5, actions: []CallAction{Say{CollectSayMessage}, listenAt(5)}},
		},
		{
			name: "the value said after the tone is answered",
			call: collectingAfterTone,
			ev:   Recorded{Reply: orderReply, Confidence: 1, Node: "order_status#api"},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 6, band: UnderstandingAnswered, actions: []CallAction{Say{orderReply[0]}, listenAt(6)}},
		},
		{
			name: "a failed lookup of the said value speaks the break message",
			call: collectingAfterTone,
			ev:   Recorded{FailReason: FailBot},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 6, failures: 1, band: UnderstandingFailed, actions: []CallAction{Say{"Sorry, something went wrong."}, listenAt(6)}},
		},
		{
			name: "nothing said after the tone re-prompts as any silence does",
			call: collectingAfterTone,
			ev:   Recorded{NoSpeech: true},
			s:    testVoiceNoAgent,
			want: want{state: CallStateListening, turn: 6, failures: 1, misses: 1, band: UnderstandingNoSpeech, actions: []CallAction{Say{"Please say that again."}, listenAt(6)}},
		},
		{
			name: "keys nobody looked up are keys while listening: 0 transfers",
			call: collecting,
			ev:   DTMF{Digits: "0"},
			s:    testVoice,
			want: want{state: CallStateTransferring, turn: 4, actions: []CallAction{
				Say{TransferMessage}, Transfer{Number: "09876543210", CallerID: "918065740671"}}},
		},
		{
			name: "a held recording while collecting holds",
			call: collectingAfterTone,
			ev:   Busy{RecordingURL: "http://rec/1.wav"},
			s:    testVoice,
			want: want{state: CallStateCollecting, turn: 5, actions: []CallAction{Say{HoldMessage}}},
		},
		{
			name: "a topic choice makes no sense while collecting",
			call: collecting,
			ev:   TopicChosen{Topic: MenuTopic{Node: "x"}, Reply: []string{"x"}},
			s:    testVoice,
			want: want{state: CallStateCollecting, turn: 4},
		},
		{
			name: "a Collected event outside a collection makes no sense",
			call: listening,
			ev:   Collected{Digits: "1042", Reply: orderReply},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 4, failures: 1, misses: 1},
		},
		{
			name: "hang-up while collecting ends the call",
			call: collecting,
			ev:   CallerHungUp{},
			s:    testVoice,
			want: want{state: CallStateEnded, turn: 4, outcome: OutcomeCallerHangup},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.call
			got, actions := tt.call.Step(tt.ev, tt.s)
			if diff := cmp.Diff(before, tt.call); diff != "" {
				t.Fatalf("Step modified its receiver (-before +after):\n%s", diff)
			}
			gotWant := want{state: got.State, turn: got.Turn, failures: got.Failures, misses: got.Repair.Misses,
				band: got.Repair.Band, outcome: got.Outcome, pending: got.Repair.Pending, actions: actions}
			if diff := cmp.Diff(tt.want, gotWant, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("Step(%T%+v) (-want +got):\n%s", tt.ev, tt.ev, diff)
			}
		})
	}
}

// TestCallCollectInvariants: from the collecting state every event ends
// its actions with exactly one input action, the turn grows only with a
// recording, and failures at the limit hang up.
func TestCallCollectInvariants(t *testing.T) {
	events := []CallEvent{
		Collected{Digits: "1", Reply: []string{"a"}}, Collected{Digits: "1", FailReason: FailBot}, Collected{Handoff: true},
		Recorded{Confident: true, Reply: []string{"a"}, CollectDigits: 4}, Recorded{NoSpeech: true}, Recorded{FailReason: FailSTT},
		DTMF{}, DTMF{Digits: "0"}, DTMF{Digits: "42#"}, Busy{RecordingURL: "u"}, CallerHungUp{}, Disconnected{},
	}
	for _, s := range []ConnectionSettings{testVoice, testVoiceNoAgent, {}} {
		for failures := range 4 {
			for _, ev := range events {
				c := Call{SID: "s", State: CallStateCollecting, Turn: 3, Failures: failures}
				got, actions := c.Step(ev, s)
				inputs := 0
				for i, a := range actions {
					if _, ok := a.(Say); ok {
						continue
					}
					inputs++
					if i != len(actions)-1 {
						t.Errorf("%T: input action %T not last in %v", ev, a, actions)
					}
				}
				if _, busy := ev.(Busy); !busy && got.Live() && inputs != 1 {
					t.Errorf("%T%+v: %d input actions in %v", ev, ev, inputs, actions)
				}
				var listens bool
				if len(actions) > 0 {
					_, listens = actions[len(actions)-1].(Listen)
				}
				if listens != (got.Turn == c.Turn+1) {
					t.Errorf("%T: turn %d→%d with actions %v", ev, c.Turn, got.Turn, actions)
				}
				if got.Failures > c.Failures && got.Failures >= VoiceSettings(s).MaxFailures && got.State != CallStateHangingUp {
					t.Errorf("%T: failures reached %d and the call goes on", ev, got.Failures)
				}
				if len(actions) > 0 {
					if menu, isMenu := actions[len(actions)-1].(Menu); isMenu && got.State == CallStateCollecting &&
						(menu.Terminator != "#" || menu.Timeout != 6*time.Second || menu.MaxDigits < 1) {
						t.Errorf("%T: collection %+v", ev, menu)
					}
				}
			}
		}
	}
}
