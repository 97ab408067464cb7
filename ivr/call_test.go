package ivr

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	testVoice = ConnectionSettings{
		WelcomeMessage: "Welcome to the demo.",
		BreakMessage:   "Sorry, something went wrong.",
		GoodbyeMessage: "Bye now.",
		RepromptText:   "Please say that again.",
		SilencePeriod:  2,
		MaxRecordTime:  8,
		MaxFailures:    3,
		AgentNumber:    "09876543210",
		CallerID:       "918065740671",
	}
	testVoiceNoAgent = func() ConnectionSettings {
		s := testVoice
		s.AgentNumber = ""
		return s
	}()
)

func listenAt(turn int) Listen {
	return Listen{Name: fmt.Sprintf("sid1-%d", turn), Silence: 2 * time.Second, MaxDuration: 8 * time.Second}
}

func TestCallStep(t *testing.T) {
	base := Call{SID: "sid1", Turn: 4, Failures: 1, State: CallStateListening}
	in := func(st CallState) Call { c := base; c.State = st; return c }
	withFailures := func(c Call, n int) Call { c.Failures = n; return c }
	withOutcome := func(c Call, o string) Call { c.Outcome = o; return c }

	type want struct {
		state    CallState
		turn     int
		failures int
		outcome  string
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
			name: "new call welcomes and listens",
			call: Call{SID: "sid1"},
			ev:   CallStarted{},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 1, actions: []CallAction{Say{"Welcome to the demo."}, listenAt(1)}},
		},
		{
			name: "new call with empty settings uses the defaults",
			call: Call{SID: "sid1"},
			ev:   CallStarted{},
			s:    ConnectionSettings{},
			want: want{state: CallStateListening, turn: 1, actions: []CallAction{
				Say{DefaultWelcomeMessage},
				Listen{Name: "sid1-1", Silence: DefaultSilencePeriod * time.Second, MaxDuration: DefaultMaxRecordTime * time.Second},
			}},
		},
		{
			name: "absurd settings are clamped",
			call: Call{SID: "sid1"},
			ev:   CallStarted{},
			s:    ConnectionSettings{WelcomeMessage: "hi", SilencePeriod: 1000, MaxRecordTime: -5},
			want: want{state: CallStateListening, turn: 1, actions: []CallAction{
				Say{"hi"},
				Listen{Name: "sid1-1", Silence: MaxSilencePeriod * time.Second, MaxDuration: DefaultMaxRecordTime * time.Second},
			}},
		},
		{
			name: "reply is spoken and the call listens again; failures reset",
			call: base,
			ev:   Recorded{Confident: true, Reply: []string{"We open at nine.", "Anything else?"}},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, actions: []CallAction{Say{"We open at nine."}, Say{"Anything else?"}, listenAt(5)}},
		},
		{
			name: "blank reply messages are not spoken",
			call: base,
			ev:   Recorded{Confident: true, Reply: []string{"  ", "Yes."}},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, actions: []CallAction{Say{"Yes."}, listenAt(5)}},
		},
		{
			name: "suppressed reply (agent owns the conversation) just listens",
			call: base,
			ev:   Recorded{},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, actions: []CallAction{listenAt(5)}},
		},
		{
			name: "suppressed reply of a conversation an agent owns says it transfers",
			call: base,
			ev:   Recorded{Confident: true, Handoff: true},
			s:    testVoice,
			want: want{state: CallStateTransferring, turn: 4, actions: []CallAction{
				Say{TransferMessage}, Transfer{Number: "09876543210", CallerID: "918065740671"},
			}},
		},
		{
			name: "handoff transfers after the reply",
			call: base,
			ev:   Recorded{Confident: true, Reply: []string{"Connecting you."}, Handoff: true},
			s:    testVoice,
			want: want{state: CallStateTransferring, turn: 4, actions: []CallAction{
				Say{"Connecting you."}, Transfer{Number: "09876543210", CallerID: "918065740671"},
			}},
		},
		{
			name: "handoff without an agent number keeps the bot",
			call: base,
			ev:   Recorded{Confident: true, Reply: []string{"Connecting you."}, Handoff: true},
			s:    testVoiceNoAgent,
			want: want{state: CallStateListening, turn: 5, actions: []CallAction{Say{"Connecting you."}, Say{NoAgentMessage}, listenAt(5)}},
		},
		{
			name: "failure speaks the break message and listens",
			call: base,
			ev:   Recorded{FailReason: FailFetch},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, failures: 2, actions: []CallAction{Say{"Sorry, something went wrong."}, listenAt(5)}},
		},
		{
			name: "the last allowed failure says goodbye and hangs up",
			call: withFailures(base, 2),
			ev:   Recorded{FailReason: FailSTT},
			s:    testVoice,
			want: want{state: CallStateHangingUp, turn: 4, failures: 3, outcome: OutcomeFailed, actions: []CallAction{
				Say{"Sorry, something went wrong."}, Say{"Bye now."}, HangUp{},
			}},
		},
		{
			name: "no speech with an agent offers the menu",
			call: base,
			ev:   Recorded{NoSpeech: true},
			s:    testVoice,
			want: want{state: CallStateMenu, turn: 4, failures: 2, actions: []CallAction{
				Menu{Prompt: "Please say that again. " + MenuHint, MaxDigits: 1, Timeout: MenuTimeout},
			}},
		},
		{
			name: "no speech without an agent re-prompts and listens",
			call: base,
			ev:   Recorded{NoSpeech: true},
			s:    testVoiceNoAgent,
			want: want{state: CallStateListening, turn: 5, failures: 2, actions: []CallAction{Say{"Please say that again."}, listenAt(5)}},
		},
		{
			name: "the last allowed no-input hangs up",
			call: withFailures(in(CallStateMenu), 2),
			ev:   Recorded{NoSpeech: true},
			s:    testVoice,
			want: want{state: CallStateHangingUp, turn: 4, failures: 3, outcome: OutcomeNoInput, actions: []CallAction{Say{"Bye now."}, HangUp{}}},
		},
		{
			name: "max failures of one hangs up on the first no-input",
			call: withFailures(base, 0),
			ev:   Recorded{NoSpeech: true},
			s:    func() ConnectionSettings { s := testVoice; s.MaxFailures = 1; return s }(),
			want: want{state: CallStateHangingUp, turn: 4, failures: 1, outcome: OutcomeNoInput, actions: []CallAction{Say{"Bye now."}, HangUp{}}},
		},
		{
			name: "menu timeout asks to say it again and listens without counting a failure",
			call: in(CallStateMenu),
			ev:   DTMF{},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, failures: 1, actions: []CallAction{Say{SayAgainMessage}, listenAt(5)}},
		},
		{
			name: "agent digit in the menu transfers",
			call: in(CallStateMenu),
			ev:   DTMF{Digits: "0"},
			s:    testVoice,
			want: want{state: CallStateTransferring, turn: 4, failures: 1, actions: []CallAction{
				Say{TransferMessage}, Transfer{Number: "09876543210", CallerID: "918065740671"},
			}},
		},
		{
			name: "agent digit with a terminator transfers",
			call: in(CallStateMenu),
			ev:   DTMF{Digits: "0#"},
			s:    testVoice,
			want: want{state: CallStateTransferring, turn: 4, failures: 1, actions: []CallAction{
				Say{TransferMessage}, Transfer{Number: "09876543210", CallerID: "918065740671"},
			}},
		},
		{
			name: "agent digit while listening transfers",
			call: base,
			ev:   DTMF{Digits: "0"},
			s:    testVoice,
			want: want{state: CallStateTransferring, turn: 4, failures: 1, actions: []CallAction{
				Say{TransferMessage}, Transfer{Number: "09876543210", CallerID: "918065740671"},
			}},
		},
		{
			name: "agent digit without an agent number listens",
			call: in(CallStateMenu),
			ev:   DTMF{Digits: "0"},
			s:    testVoiceNoAgent,
			want: want{state: CallStateListening, turn: 5, failures: 1, actions: []CallAction{Say{NoAgentMessage}, listenAt(5)}},
		},
		{
			name: "other digits are not an option",
			call: in(CallStateMenu),
			ev:   DTMF{Digits: "7"},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, failures: 1, actions: []CallAction{Say{InvalidDigitMessage}, listenAt(5)}},
		},
		{
			name: "empty DTMF while listening (follow-up request) listens",
			call: base,
			ev:   DTMF{},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, failures: 1, actions: []CallAction{listenAt(5)}},
		},
		{
			name: "a recording in the menu state is handled",
			call: in(CallStateMenu),
			ev:   Recorded{Confident: true, Reply: []string{"Sure."}},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, actions: []CallAction{Say{"Sure."}, listenAt(5)}},
		},
		{
			name: "a recording for a call whose NewCall was missed is handled",
			call: Call{SID: "sid1"},
			ev:   Recorded{Confident: true, Reply: []string{"Sure."}},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 1, actions: []CallAction{Say{"Sure."}, listenAt(1)}},
		},
		{
			name: "answered transfer ends with a goodbye",
			call: in(CallStateTransferring),
			ev:   DialEnded{Answered: true},
			s:    testVoice,
			want: want{state: CallStateHangingUp, turn: 4, failures: 1, outcome: OutcomeTransferred, actions: []CallAction{Say{"Bye now."}, HangUp{}}},
		},
		{
			name: "unanswered transfer returns to the bot",
			call: in(CallStateTransferring),
			ev:   DialEnded{Answered: false},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, failures: 1, actions: []CallAction{Say{NoAgentMessage}, listenAt(5)}},
		},
		{
			name: "a request without an event during a transfer returns to the bot",
			call: in(CallStateTransferring),
			ev:   DTMF{},
			s:    testVoice,
			want: want{state: CallStateListening, turn: 5, failures: 1, actions: []CallAction{Say{NoAgentMessage}, listenAt(5)}},
		},
		{
			name: "caller hangs up while listening",
			call: base,
			ev:   CallerHungUp{},
			s:    testVoice,
			want: want{state: CallStateEnded, turn: 4, failures: 1, outcome: OutcomeCallerHangup},
		},
		{
			name: "caller hangs up while talking to the agent",
			call: in(CallStateTransferring),
			ev:   CallerHungUp{DialAnswered: true},
			s:    testVoice,
			want: want{state: CallStateEnded, turn: 4, failures: 1, outcome: OutcomeTransferred},
		},
		{
			name: "caller hangs up while the agent phone rings",
			call: in(CallStateTransferring),
			ev:   CallerHungUp{},
			s:    testVoice,
			want: want{state: CallStateEnded, turn: 4, failures: 1, outcome: OutcomeCallerHangup},
		},
		{
			name: "hang-up crossing our goodbye keeps our outcome",
			call: withOutcome(in(CallStateHangingUp), OutcomeNoInput),
			ev:   CallerHungUp{},
			s:    testVoice,
			want: want{state: CallStateEnded, turn: 4, failures: 1, outcome: OutcomeNoInput},
		},
		{
			name: "disconnect after our hang-up keeps the outcome",
			call: withOutcome(in(CallStateHangingUp), OutcomeTransferred),
			ev:   Disconnected{},
			s:    testVoice,
			want: want{state: CallStateEnded, turn: 4, failures: 1, outcome: OutcomeTransferred},
		},
		{
			name: "disconnect of a live call is a failure",
			call: base,
			ev:   Disconnected{},
			s:    testVoice,
			want: want{state: CallStateEnded, turn: 4, failures: 1, outcome: OutcomeFailed},
		},
		{
			name: "events while hanging up repeat the hang-up",
			call: withOutcome(in(CallStateHangingUp), OutcomeFailed),
			ev:   Recorded{Confident: true, Reply: []string{"late"}},
			s:    testVoice,
			want: want{state: CallStateHangingUp, turn: 4, failures: 1, outcome: OutcomeFailed, actions: []CallAction{HangUp{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.call
			got, actions := tt.call.Step(tt.ev, tt.s)
			if diff := cmp.Diff(before, tt.call); diff != "" {
				t.Fatalf("Step modified its receiver (-before +after):\n%s", diff)
			}
			gotWant := want{state: got.State, turn: got.Turn, failures: got.Failures, outcome: got.Outcome, actions: actions}
			if diff := cmp.Diff(tt.want, gotWant, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("Step(%T%+v) (-want +got):\n%s", tt.ev, tt.ev, diff)
			}
			if got.SID != tt.call.SID {
				t.Errorf("SID changed to %q", got.SID)
			}
		})
	}
}

// TestCallStepNoSenseEvents checks that every event that makes no sense in a
// state leaves the call exactly as it was and asks for nothing.
func TestCallStepNoSenseEvents(t *testing.T) {
	events := map[string]CallEvent{
		"CallStarted":  CallStarted{},
		"Recorded":     Recorded{Confident: true, Reply: []string{"x"}},
		"NoSpeech":     Recorded{NoSpeech: true},
		"Failed":       Recorded{FailReason: FailBot},
		"DTMF":         DTMF{Digits: "0"},
		"DTMFEmpty":    DTMF{},
		"DialAnswered": DialEnded{Answered: true},
		"DialMissed":   DialEnded{},
		"Hangup":       CallerHungUp{},
		"Disconnect":   Disconnected{},
	}
	noSense := map[CallState][]string{
		CallStateUnknown:      {"DialAnswered", "DialMissed"},
		CallStateListening:    {"CallStarted", "DialAnswered", "DialMissed"},
		CallStateMenu:         {"CallStarted", "DialAnswered", "DialMissed"},
		CallStateTransferring: {"CallStarted", "Recorded", "NoSpeech", "Failed"},
		CallStateHangingUp:    {"CallStarted"},
		CallStateEnded:        {"CallStarted", "Recorded", "NoSpeech", "Failed", "DTMF", "DTMFEmpty", "DialAnswered", "DialMissed", "Hangup", "Disconnect"},
	}
	for state, names := range noSense {
		for _, name := range names {
			t.Run(string(state)+"/"+name, func(t *testing.T) {
				c := Call{SID: "s", State: state, Turn: 2, Failures: 1, Outcome: "x", Version: 7}
				got, actions := c.Step(events[name], testVoice)
				if diff := cmp.Diff(c, got); diff != "" {
					t.Errorf("state changed (-want +got):\n%s", diff)
				}
				if len(actions) != 0 {
					t.Errorf("actions = %v, want none", actions)
				}
			})
		}
	}
}

// TestCallStepInvariants checks properties that hold for every state and
// event: the input action comes last and alone, a live call always gets
// something to do unless the event made no sense, and Turn only grows by one
// per new recording.
func TestCallStepInvariants(t *testing.T) {
	states := []CallState{CallStateUnknown, CallStateListening, CallStateMenu, CallStateTransferring, CallStateHangingUp, CallStateEnded}
	events := []CallEvent{
		CallStarted{}, Recorded{Confident: true, Reply: []string{"a"}}, Recorded{Confident: true, Reply: []string{"a"}, Handoff: true},
		Recorded{NoSpeech: true}, Recorded{FailReason: FailDecode}, DTMF{}, DTMF{Digits: "0"}, DTMF{Digits: "5"},
		DialEnded{Answered: true}, DialEnded{}, CallerHungUp{}, CallerHungUp{DialAnswered: true}, Disconnected{},
	}
	for _, s := range []ConnectionSettings{testVoice, testVoiceNoAgent, {}} {
		for _, st := range states {
			for failures := range 4 {
				for _, ev := range events {
					c := Call{SID: "s", State: st, Turn: 3, Failures: failures}
					got, actions := c.Step(ev, s)
					inputs := 0
					for i, a := range actions {
						if _, ok := a.(Say); ok {
							continue
						}
						inputs++
						if i != len(actions)-1 {
							t.Errorf("%s/%T: input action %T not last in %v", st, ev, a, actions)
						}
					}
					if inputs > 1 {
						t.Errorf("%s/%T: %d input actions", st, ev, inputs)
					}
					if len(actions) > 0 && inputs == 0 {
						t.Errorf("%s/%T: actions %v end without an input action", st, ev, actions)
					}
					if d := got.Turn - c.Turn; d != 0 && d != 1 {
						t.Errorf("%s/%T: turn moved by %d", st, ev, d)
					}
					var listens bool
					if len(actions) > 0 {
						_, listens = actions[len(actions)-1].(Listen)
					}
					if listens != (got.Turn == c.Turn+1) {
						t.Errorf("%s/%T: turn %d→%d with actions %v", st, ev, c.Turn, got.Turn, actions)
					}
					if c.Live() && got.State == CallStateEnded && got.Outcome == "" {
						t.Errorf("%s/%T: ended without an outcome", st, ev)
					}
					if got.Failures > c.Failures && got.Failures >= VoiceSettings(s).MaxFailures && got.State != CallStateHangingUp {
						t.Errorf("%s/%T: failures reached %d and the call goes on", st, ev, got.Failures)
					}
				}
			}
		}
	}
}

func TestVoiceSettings(t *testing.T) {
	tests := []struct {
		name string
		in   ConnectionSettings
		want ConnectionSettings
	}{
		{
			name: "zero gets defaults",
			in:   ConnectionSettings{},
			want: ConnectionSettings{
				WelcomeMessage: DefaultWelcomeMessage, BreakMessage: DefaultBreakMessage,
				GoodbyeMessage: DefaultGoodbyeMessage, RepromptText: DefaultRepromptMessage,
				SilencePeriod: DefaultSilencePeriod, MaxRecordTime: DefaultMaxRecordTime, MaxFailures: DefaultMaxFailures,
				AnswerConfidence: DefaultAnswerConfidence, ConfirmConfidence: DefaultConfirmConfidence,
			},
		},
		{
			name: "set values are kept, too large ones capped, blanks trimmed",
			in: ConnectionSettings{
				WelcomeMessage: "w", BreakMessage: "b", GoodbyeMessage: "g", RepromptText: " ",
				SilencePeriod: 2, MaxRecordTime: 999, MaxFailures: 99, AgentNumber: " 123 ", CallerID: "9 ",
			},
			want: ConnectionSettings{
				WelcomeMessage: "w", BreakMessage: "b", GoodbyeMessage: "g", RepromptText: DefaultRepromptMessage,
				SilencePeriod: 2, MaxRecordTime: MaxMaxRecordTime, MaxFailures: MaxMaxFailures, AgentNumber: "123", CallerID: "9",
				AnswerConfidence: DefaultAnswerConfidence, ConfirmConfidence: DefaultConfirmConfidence,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, VoiceSettings(tt.in)); diff != "" {
				t.Errorf("VoiceSettings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCallConversation walks a whole call through Step, the way the KooKoo
// app drives it.
func TestCallConversation(t *testing.T) {
	c := Call{SID: "sid1"}
	steps := []struct {
		ev        CallEvent
		wantState CallState
		wantLast  CallAction
	}{
		{CallStarted{}, CallStateListening, listenAt(1)},
		{Recorded{Confident: true, Reply: []string{"We open at nine."}}, CallStateListening, listenAt(2)},
		{Recorded{NoSpeech: true}, CallStateMenu, Menu{Prompt: "Please say that again. " + MenuHint, MaxDigits: 1, Timeout: MenuTimeout}},
		{DTMF{Digits: "0"}, CallStateTransferring, Transfer{Number: "09876543210", CallerID: "918065740671"}},
		{DialEnded{Answered: false}, CallStateListening, listenAt(3)},
		{Recorded{FailReason: FailFetch}, CallStateListening, listenAt(4)},
		{Recorded{Confident: true, Reply: []string{"Goodbye."}}, CallStateListening, listenAt(5)},
		{CallerHungUp{}, CallStateEnded, nil},
	}
	for i, st := range steps {
		var actions []CallAction
		c, actions = c.Step(st.ev, testVoice)
		if c.State != st.wantState {
			t.Fatalf("step %d (%T): state %q, want %q", i, st.ev, c.State, st.wantState)
		}
		var last CallAction
		if len(actions) > 0 {
			last = actions[len(actions)-1]
		}
		if diff := cmp.Diff(st.wantLast, last); diff != "" {
			t.Fatalf("step %d (%T): last action (-want +got):\n%s", i, st.ev, diff)
		}
	}
	if c.Outcome != OutcomeCallerHangup || c.Failures != 0 {
		t.Errorf("outcome %q failures %d, want caller_hangup and 0", c.Outcome, c.Failures)
	}
}

var testTopics = []MenuTopic{
	{Node: "opening_hours", Title: "opening hours"},
	{Node: "store_location", Title: "store location"},
	{Node: "payment_methods", Title: "payment methods"},
}

const testTopicMenu = " Press 1 for opening hours, 2 for store location, 3 for payment methods, or 0 for an agent."

// TestCallRepair covers every dialogue-repair transition of Step: the
// three confidence bands, no speech against not understood, the
// confirmation's yes, no, keys and new questions, and the topic menu.
func TestCallRepair(t *testing.T) {
	listening := Call{SID: "sid1", Turn: 4, State: CallStateListening}
	missed := listening
	missed.Repair.Misses = 1
	pending := &PendingAnswer{Reply: []string{"Delivery is free over 500 rupees."}, Node: "delivery_charges", Topic: "delivery charges", Confidence: 0.5}
	confirming := Call{SID: "sid1", Turn: 5, State: CallStateConfirming, Repair: CallRepair{Pending: pending}}
	confirmingMissed := confirming
	confirmingMissed.Repair.Misses = 1
	inTopics := Call{SID: "sid1", Turn: 5, State: CallStateTopics, Failures: 1, Repair: CallRepair{Misses: 2, Topics: testTopics}}
	answer := []string{"We open at nine."}

	type want struct {
		state    CallState
		band     string
		misses   int
		failures int
		pending  *PendingAnswer
		topics   []MenuTopic
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
			name: "confidence at the answer band is spoken",
			call: missed, ev: Recorded{Reply: answer, Confidence: 0.6, Node: "opening_hours", Topic: "opening hours"}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingAnswered, actions: []CallAction{Say{answer[0]}, listenAt(5)}},
		},
		{
			name: "confidence in the confirm band asks yes or no and holds the answer",
			call: listening, ev: Recorded{Reply: pending.Reply, Confidence: 0.5, Node: "delivery_charges", Topic: "delivery charges"}, s: testVoice,
			want: want{state: CallStateConfirming, band: UnderstandingConfirm, pending: pending,
				actions: []CallAction{Say{"Do you want to know about delivery charges? Say yes or no."}, listenAt(5)}},
		},
		{
			name: "a handoff in the confirm band asks about an agent",
			call: listening, ev: Recorded{Reply: []string{"Connecting you."}, Handoff: true, Confidence: 0.45, Node: "talk_to_agent", Topic: "talk to agent"}, s: testVoice,
			want: want{state: CallStateConfirming, band: UnderstandingConfirm,
				pending: &PendingAnswer{Reply: []string{"Connecting you."}, Node: "talk_to_agent", Topic: "talk to agent", Confidence: 0.45, Handoff: true},
				actions: []CallAction{Say{ConfirmAgentMessage}, listenAt(5)}},
		},
		{
			name: "an answer resting on one garbled word is confirmed, not spoken, at any confidence",
			call: listening, ev: Recorded{Reply: pending.Reply, Confidence: 0.95, Node: "delivery_charges", Topic: "delivery charges", Thin: true}, s: testVoice,
			want: want{state: CallStateConfirming, band: UnderstandingConfirm,
				pending: &PendingAnswer{Reply: pending.Reply, Node: "delivery_charges", Topic: "delivery charges", Confidence: 0.95},
				actions: []CallAction{Say{"Do you want to know about delivery charges? Say yes or no."}, listenAt(5)}},
		},
		{
			name: "a handoff resting on one garbled word asks about an agent",
			call: listening, ev: Recorded{Reply: []string{"Connecting you."}, Handoff: true, Confidence: 0.9, Node: "talk_to_agent", Topic: "talk to agent", Thin: true}, s: testVoice,
			want: want{state: CallStateConfirming, band: UnderstandingConfirm,
				pending: &PendingAnswer{Reply: []string{"Connecting you."}, Node: "talk_to_agent", Topic: "talk to agent", Confidence: 0.9, Handoff: true},
				actions: []CallAction{Say{ConfirmAgentMessage}, listenAt(5)}},
		},
		{
			name: "an answer resting on one garbled word without a topic asks again",
			call: listening, ev: Recorded{Reply: answer, Confidence: 0.95, Thin: true}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingReprompt, misses: 1, failures: 1, actions: []CallAction{Say{NotUnderstoodMessage}, listenAt(5)}},
		},
		{
			name: "a thin answer below the confirm band is not understood",
			call: listening, ev: Recorded{Reply: answer, Confidence: 0.3, Topic: "opening hours", Thin: true}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingReprompt, misses: 1, failures: 1, actions: []CallAction{Say{NotUnderstoodMessage}, listenAt(5)}},
		},
		{
			name: "a thin answer from a bot without confidences is spoken",
			call: listening, ev: Recorded{Reply: answer, Confident: true, Thin: true}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingAnswered, actions: []CallAction{Say{answer[0]}, listenAt(5)}},
		},
		{
			name: "the bands follow the connection's thresholds",
			call: listening, ev: Recorded{Reply: answer, Confidence: 0.5, Topic: "opening hours"},
			s:    func() ConnectionSettings { s := testVoice; s.AnswerConfidence = 0.5; return s }(),
			want: want{state: CallStateListening, band: UnderstandingAnswered, actions: []CallAction{Say{answer[0]}, listenAt(5)}},
		},
		{
			name: "a middling answer without a topic cannot be confirmed and is spoken",
			call: listening, ev: Recorded{Reply: answer, Confidence: 0.5}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingAnswered, actions: []CallAction{Say{answer[0]}, listenAt(5)}},
		},
		{
			name: "low confidence asks again in speech",
			call: listening, ev: Recorded{Reply: answer, Confidence: 0.3, Topic: "opening hours"}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingReprompt, misses: 1, failures: 1, actions: []CallAction{Say{NotUnderstoodMessage}, listenAt(5)}},
		},
		{
			name: "heard but not understood asks again in speech, not through keys",
			call: listening, ev: Recorded{NotUnderstood: true}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingReprompt, misses: 1, failures: 1, actions: []CallAction{Say{NotUnderstoodMessage}, listenAt(5)}},
		},
		{
			name: "no speech says nothing was heard",
			call: listening, ev: Recorded{NoSpeech: true, Topics: testTopics}, s: testVoiceNoAgent,
			want: want{state: CallStateListening, band: UnderstandingNoSpeech, misses: 1, failures: 1, actions: []CallAction{Say{"Please say that again."}, listenAt(5)}},
		},
		{
			name: "the second miss offers the topic menu",
			call: missed, ev: Recorded{NotUnderstood: true, Topics: testTopics}, s: testVoice,
			want: want{state: CallStateTopics, band: UnderstandingMenu, misses: 2, failures: 1, topics: testTopics,
				actions: []CallAction{Menu{Prompt: TopicMenuIntro + testTopicMenu, MaxDigits: 1, Timeout: TopicMenuTimeout}}},
		},
		{
			name: "the second miss by silence offers the topic menu",
			call: missed, ev: Recorded{NoSpeech: true, Topics: testTopics}, s: testVoice,
			want: want{state: CallStateTopics, band: UnderstandingMenu, misses: 2, failures: 1, topics: testTopics,
				actions: []CallAction{Menu{Prompt: TopicMenuNoSpeech + testTopicMenu, MaxDigits: 1, Timeout: TopicMenuTimeout}}},
		},
		{
			name: "the topic menu leaves out the agent without an agent number",
			call: missed, ev: Recorded{NotUnderstood: true, Topics: testTopics[:1]}, s: testVoiceNoAgent,
			want: want{state: CallStateTopics, band: UnderstandingMenu, misses: 2, failures: 1, topics: testTopics[:1],
				actions: []CallAction{Menu{Prompt: TopicMenuIntro + " Press 1 for opening hours.", MaxDigits: 1, Timeout: TopicMenuTimeout}}},
		},
		{
			name: "without topics the second miss asks again",
			call: missed, ev: Recorded{NotUnderstood: true}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingReprompt, misses: 2, failures: 1, actions: []CallAction{Say{NotUnderstoodMessage}, listenAt(5)}},
		},
		{
			name: "yes speaks the held answer",
			call: confirmingMissed, ev: Recorded{Answer: AnswerYes}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingConfirmed, actions: []CallAction{Say{pending.Reply[0]}, listenAt(6)}},
		},
		{
			name: "key 1 is a yes",
			call: confirming, ev: DTMF{Digits: "1"}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingConfirmed, actions: []CallAction{Say{pending.Reply[0]}, listenAt(6)}},
		},
		{
			name: "a confirmed handoff transfers",
			call: func() Call {
				c := confirming
				c.Repair.Pending = &PendingAnswer{Reply: []string{"Connecting you."}, Handoff: true}
				return c
			}(),
			ev: Recorded{Answer: AnswerYes}, s: testVoice,
			want: want{state: CallStateTransferring, band: UnderstandingConfirmed, actions: []CallAction{Say{"Connecting you."}, Transfer{Number: "09876543210", CallerID: "918065740671"}}},
		},
		{
			name: "no drops the answer and asks again",
			call: confirming, ev: Recorded{Answer: AnswerNo, Topics: testTopics}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingDeclined, misses: 1, actions: []CallAction{Say{DeclinedMessage}, listenAt(6)}},
		},
		{
			name: "key 2 is a no",
			call: confirming, ev: DTMF{Digits: "2"}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingDeclined, misses: 1, actions: []CallAction{Say{DeclinedMessage}, listenAt(6)}},
		},
		{
			name: "a no after a miss offers the topic menu",
			call: confirmingMissed, ev: Recorded{Answer: AnswerNo, Topics: testTopics}, s: testVoice,
			want: want{state: CallStateTopics, band: UnderstandingDeclined, misses: 2, topics: testTopics,
				actions: []CallAction{Menu{Prompt: TopicMenuDeclined + testTopicMenu, MaxDigits: 1, Timeout: TopicMenuTimeout}}},
		},
		{
			name: "a new confident question instead of yes or no is answered",
			call: confirming, ev: Recorded{Reply: answer, Confidence: 0.9, Topic: "opening hours"}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingAnswered, actions: []CallAction{Say{answer[0]}, listenAt(6)}},
		},
		{
			name: "unsure words at a confident answer are answered",
			call: listening, ev: Recorded{Reply: answer, Confidence: 0.9, Node: "opening_hours", Topic: "opening hours", Unsure: true}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingAnswered, actions: []CallAction{Say{answer[0]}, listenAt(5)}},
		},
		{
			name: "speech never understood ends the call after MaxFailures",
			call: func() Call { c := missed; c.Failures = 2; return c }(), ev: Recorded{NotUnderstood: true, Topics: testTopics}, s: testVoice,
			want: want{state: CallStateHangingUp, band: UnderstandingReprompt, misses: 2, failures: 3, actions: []CallAction{Say{"Bye now."}, HangUp{}}},
		},
		{
			name: "unsure words with an answer that has no topic ask again",
			call: listening, ev: Recorded{Reply: answer, Confidence: 1, Unsure: true}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingReprompt, misses: 1, failures: 1, actions: []CallAction{Say{NotUnderstoodMessage}, listenAt(5)}},
		},
		{
			name: "the question said again to the same answer is a yes",
			call: confirming, ev: Recorded{Reply: pending.Reply, Confidence: 0.5, Node: "delivery_charges", Topic: "delivery charges", Unsure: true}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingConfirmed, actions: []CallAction{Say{pending.Reply[0]}, listenAt(6)}},
		},
		{
			name: "silence during a confirmation offers the keys and keeps the answer",
			call: confirming, ev: Recorded{NoSpeech: true}, s: testVoice,
			want: want{state: CallStateConfirming, band: UnderstandingConfirm, failures: 1, pending: pending,
				actions: []CallAction{Menu{Prompt: ConfirmKeysMessage, MaxDigits: 1, Timeout: ConfirmKeysTimeout}}},
		},
		{
			name: "the yes/no keys timing out ask again in speech",
			call: confirming, ev: DTMF{}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingReprompt, actions: []CallAction{Say{NotUnderstoodMessage}, listenAt(6)}},
		},
		{
			name: "the agent key during a confirmation transfers",
			call: confirming, ev: DTMF{Digits: "0"}, s: testVoice,
			want: want{state: CallStateTransferring, actions: []CallAction{Say{TransferMessage}, Transfer{Number: "09876543210", CallerID: "918065740671"}}},
		},
		{
			name: "a chosen topic speaks its answer and resets the misses",
			call: inTopics, ev: TopicChosen{Topic: testTopics[0], Reply: answer}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingMenu, actions: []CallAction{Say{answer[0]}, listenAt(6)}},
		},
		{
			name: "a topic whose answer failed to load gets the break message",
			call: inTopics, ev: TopicChosen{Topic: testTopics[0], FailReason: FailInternal}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingMenu, misses: 2, failures: 2, actions: []CallAction{Say{"Sorry, something went wrong."}, listenAt(6)}},
		},
		{
			name: "the topic menu timing out asks to say it again and records",
			call: inTopics, ev: DTMF{}, s: testVoice,
			want: want{state: CallStateListening, misses: 2, failures: 1, actions: []CallAction{Say{SayAgainMessage}, listenAt(6)}},
		},
		{
			name: "the agent key in the topic menu transfers",
			call: inTopics, ev: DTMF{Digits: "0"}, s: testVoice,
			want: want{state: CallStateTransferring, misses: 2, failures: 1, actions: []CallAction{Say{TransferMessage}, Transfer{Number: "09876543210", CallerID: "918065740671"}}},
		},
		{
			name: "a recording with no capacity is held with the hold message and no input verb",
			call: listening, ev: Busy{RecordingURL: "http://r/1.wav", RecordStatus: "silence"}, s: testVoice,
			want: want{state: CallStateListening, actions: []CallAction{Say{HoldMessage}}},
		},
		{
			name: "a confirmation's recording is held in the confirmation",
			call: confirming, ev: Busy{RecordingURL: "http://r/1.wav"}, s: testVoice,
			want: want{state: CallStateConfirming, pending: pending, actions: []CallAction{Say{HoldMessage}}},
		},
		{
			name: "a recording held too often gets the break message",
			call: func() Call {
				c := listening
				c.Repair.Held = &HeldRecording{URL: "http://r/1.wav", Holds: MaxHolds}
				return c
			}(),
			ev: Busy{RecordingURL: "http://r/1.wav"}, s: testVoice,
			want: want{state: CallStateListening, band: UnderstandingFailed, failures: 1, actions: []CallAction{Say{"Sorry, something went wrong."}, listenAt(5)}},
		},
		{
			name: "a key that is no topic is refused",
			call: inTopics, ev: DTMF{Digits: "7"}, s: testVoice,
			want: want{state: CallStateListening, misses: 2, failures: 1, actions: []CallAction{Say{InvalidDigitMessage}, listenAt(6)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.call
			got, actions := tt.call.Step(tt.ev, tt.s)
			if diff := cmp.Diff(before, tt.call); diff != "" {
				t.Fatalf("Step modified its receiver (-before +after):\n%s", diff)
			}
			gotWant := want{state: got.State, band: got.Repair.Band, misses: got.Repair.Misses, failures: got.Failures,
				pending: got.Repair.Pending, topics: got.Repair.Topics, actions: actions}
			if diff := cmp.Diff(tt.want, gotWant, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("Step(%T%+v) (-want +got):\n%s", tt.ev, tt.ev, diff)
			}
		})
	}
}

func TestCallHoldCounts(t *testing.T) {
	c := Call{SID: "sid1", Turn: 2, State: CallStateListening}
	for i := 1; i <= MaxHolds; i++ {
		c, _ = c.Step(Busy{RecordingURL: "http://r/2.wav"}, testVoice)
		if c.Repair.Held == nil || c.Repair.Held.Holds != i {
			t.Fatalf("hold %d: held = %+v", i, c.Repair.Held)
		}
	}
	c, _ = c.Step(Recorded{Confident: true, Reply: []string{"ok"}}, testVoice)
	if c.Repair.Held != nil {
		t.Errorf("the held recording survived its answer: %+v", c.Repair.Held)
	}
}

func TestCallTopicKey(t *testing.T) {
	c := Call{State: CallStateTopics, Repair: CallRepair{Topics: testTopics}}
	for _, tt := range []struct {
		digits string
		want   string
	}{{"1", "opening_hours"}, {"3#", "payment_methods"}, {"4", ""}, {"0", ""}, {"", ""}, {"12", ""}, {"a", ""}} {
		got, ok := c.TopicKey(tt.digits)
		if got.Node != tt.want || ok != (tt.want != "") {
			t.Errorf("TopicKey(%q) = %q, %v; want %q", tt.digits, got.Node, ok, tt.want)
		}
	}
	if _, ok := (Call{State: CallStateListening, Repair: CallRepair{Topics: testTopics}}).TopicKey("1"); ok {
		t.Error("a key outside the topic menu picked a topic")
	}
}

func TestYesNo(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"yes", AnswerYes}, {"Yes please.", AnswerYes}, {"yeah that's right", AnswerYes}, {"haan ji", AnswerYes},
		{"ok", AnswerYes}, {"sure go ahead", AnswerYes}, {"um yes", AnswerYes},
		{"no", AnswerNo}, {"no thanks", AnswerNo}, {"nope", AnswerNo}, {"not really", AnswerNo}, {"nahi", AnswerNo},
		{"", ""}, {"yes no", ""}, {"no i want to know about payments", ""}, {"where is my order", ""},
		{"yes yes yes yes yes yes yes yes yes", ""},
	} {
		if got := YesNo(tt.text); got != tt.want {
			t.Errorf("YesNo(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
