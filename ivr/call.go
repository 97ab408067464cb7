package ivr

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The voice call state machine.
//
// [Call.Step] is a pure transition function: it takes the call as stored, one
// [CallEvent] and the connection's settings, and returns the next call and the
// [CallAction]s to perform, in order. It does no I/O and reads no clock, so
// the same inputs always give the same outputs. Whoever drives it (the KooKoo
// app, the softphone) fetches and transcribes recordings, asks the engine,
// stores the result and renders the actions in its own protocol.
//
// # Reaching a human
//
// There are two ways to an agent, both only when the connection has an
// AgentNumber:
//
//   - by voice: the bot's reply asks for a handoff ([Recorded].Handoff), and
//     the call is transferred after the reply is spoken;
//   - by key: the caller presses [AgentDigit]. Real KooKoo reports keys only
//     at the end of a <collectdtmf>, and a key pressed during <record> just
//     stops the recording; so after a no-input the re-prompt is a [Menu]
//     ("… or press 0 to talk to an agent") whose timeout (an empty [DTMF])
//     returns to listening. A [DTMF] event that arrives while listening (an
//     emulator that reports keys during a recording) is honoured the same way.
//
// A transfer that is not answered returns the caller to the bot; one that is
// answered ends the call with a goodbye once the agent leg ends.
//
// # Dialogue repair
//
// A [Recorded] event carries how well the caller was understood, and Step
// puts it in one of these bands (recorded on the turn as its
// Understanding):
//
//   - answered: the bot's confidence reached AnswerConfidence; the answer
//     is spoken and the call listens again.
//   - confirm: the confidence reached ConfirmConfidence and the answer has a
//     topic; the call asks "Do you want to know about {topic}? Say yes or
//     no." and moves to [CallStateConfirming], holding the answer in
//     [CallRepair].Pending (stored with the call, so any node can serve the
//     yes). Words the recogniser was unsure of ([Recorded].Unsure) weaken
//     the bot's confidence before banding; an answer resting on one word
//     of an unsure or longer transcript ([Recorded].Thin) is confirmed
//     whatever its confidence. A yes (spoken, or key 1), or
//     the question said again leading to the same answer, speaks it
//     (confirmed); a no (or key 2) asks again (declined); another question
//     is answered as a question; no speech offers the keys ("Press 1 for
//     yes, or 2 for no.").
//   - reprompt: speech that was heard but not understood is asked again in
//     speech: "Sorry, I didn't catch that. Could you say it in a few
//     words?".
//   - no_speech: nothing was heard: "Sorry, I did not hear anything. …"
//     (with the agent key menu when an agent can be reached).
//   - menu: after the second miss in a row (no speech, not understood, or a
//     declined confirmation) the caller gets the topic menu built from the
//     FAQ's top topics ("Press 1 for opening hours, 2 for … or 0 for an
//     agent."), in [CallStateTopics]; a key speaks that topic's answer.
//
// Speech during a prompt that expects keys is never silently lost: when a
// key menu times out, the caller is asked to say it again and the call
// records.

// Voice defaults, used when a connection leaves a setting at zero. The seed
// recommends a 2–3 s silence period and a 10 s maximum recording.
const (
	DefaultSilencePeriod = 3  // seconds
	DefaultMaxRecordTime = 10 // seconds
	DefaultMaxFailures   = 3
	// MaxSilencePeriod and MaxMaxRecordTime cap the settings: a longer
	// silence makes every turn slower; a longer recording costs STT time.
	MaxSilencePeriod = 10  // seconds
	MaxMaxRecordTime = 120 // seconds
	// MaxMaxFailures caps MaxFailures.
	MaxMaxFailures = 10
	// AgentDigit is the key that asks for a human agent.
	AgentDigit = "0"
	// MenuTimeout is how long the agent menu waits for a key.
	MenuTimeout = 3 * time.Second
)

// Default voice prompts, used when a connection leaves its text empty.
const (
	DefaultWelcomeMessage  = "Welcome. Please ask your question after the tone."
	DefaultGoodbyeMessage  = "Thank you for calling. Goodbye."
	DefaultRepromptMessage = "Sorry, I did not hear anything. Please ask your question after the tone."
	// MenuHint follows the re-prompt when an agent can be reached by key.
	MenuHint = "Or press 0 to talk to an agent."
	// TransferMessage is spoken before a transfer asked for by key.
	TransferMessage = "Please hold while I connect you to an agent."
	// NoAgentMessage is spoken when a transfer is asked for but there is no
	// agent number, or the agent did not answer.
	NoAgentMessage = "Sorry, no agent is available right now. You can keep asking me your questions."
	// InvalidDigitMessage is spoken when the caller presses a key that is
	// not an option.
	InvalidDigitMessage = "Sorry, that is not an option. Please ask your question after the tone."
	// NotUnderstoodMessage asks again in speech when the caller was heard
	// but not understood.
	NotUnderstoodMessage = "Sorry, I didn't catch that. Could you say it in a few words?"
	// ConfirmTemplate asks whether the held answer is the one the caller
	// wants; %s is the answer's topic.
	ConfirmTemplate = "Do you want to know about %s? Say yes or no."
	// ConfirmAgentMessage confirms a request for an agent heard with
	// middling confidence.
	ConfirmAgentMessage = "Do you want to talk to an agent? Say yes or no."
	// ConfirmKeysMessage offers the keys when a yes or no was not heard.
	ConfirmKeysMessage = "Sorry, I did not hear a yes or a no. Press 1 for yes, or 2 for no."
	// DeclinedMessage follows a no to a confirmation.
	DeclinedMessage = "Sorry about that. Could you say your question in a few words?"
	// TopicMenuIntro, TopicMenuNoSpeech and TopicMenuDeclined start the
	// topic menu after a miss that was not understood, silent, or a no.
	TopicMenuIntro    = "Sorry, I still did not get that. You can choose a topic."
	TopicMenuNoSpeech = "Sorry, I still did not hear anything. You can choose a topic."
	TopicMenuDeclined = "Sorry about that. You can choose a topic."
	// HoldMessage answers a recording koel has no capacity to transcribe
	// yet; the platform comes back for it (see [Busy]).
	HoldMessage = "One moment please."
	// MaxHolds is how many holds in a row one recording may get before the
	// caller hears the break message.
	MaxHolds = 3
	// SayAgainMessage follows a key menu that timed out: whatever the
	// caller said during it is asked for again.
	SayAgainMessage = "Please say your question after the tone."
)

// Repair defaults: the confidence bands and the topic menu.
const (
	// DefaultAnswerConfidence and DefaultConfirmConfidence are the bands
	// used when a connection leaves them at zero. ConfirmConfidence matches
	// the FAQ matcher's own threshold (faq.DefaultThreshold, 0.42): any
	// match below AnswerConfidence is confirmed rather than spoken.
	DefaultAnswerConfidence  = 0.6
	DefaultConfirmConfidence = 0.42
	// MenuAfterMisses is how many misses in a row lead to the topic menu.
	MenuAfterMisses = 2
	// MaxMenuTopics caps the topic menu's options (keys 1 to 9).
	MaxMenuTopics = 5
	// TopicMenuTimeout is how long the topic menu waits for a key.
	TopicMenuTimeout = 5 * time.Second
	// ConfirmKeysTimeout is how long the yes/no keys wait.
	ConfirmKeysTimeout = 4 * time.Second
)

// Understanding bands of a turn ([Turn].Understanding, [CallRepair].Band).
const (
	UnderstandingAnswered  = "answered"
	UnderstandingConfirm   = "confirm"
	UnderstandingConfirmed = "confirmed"
	UnderstandingDeclined  = "declined"
	UnderstandingReprompt  = "reprompt"
	UnderstandingNoSpeech  = "no_speech"
	UnderstandingMenu      = "menu" // the topic menu was offered, or a topic chosen from it
	UnderstandingFailed    = "failed"
)

// Yes/no answers of a confirmation ([Recorded].Answer).
const (
	AnswerYes = "yes"
	AnswerNo  = "no"
)

// CallRepair is the dialogue-repair state of a call, stored with it.
type CallRepair struct {
	// Misses counts turns in a row that were not understood (no speech,
	// not understood, declined); MenuAfterMisses of them lead to the
	// topic menu.
	Misses int `json:"misses,omitempty"`
	// Pending is the answer awaiting the caller's yes.
	Pending *PendingAnswer `json:"pending,omitempty"`
	// Topics are the options of the running topic menu, key i+1 for
	// Topics[i].
	Topics []MenuTopic `json:"topics,omitempty"`
	// Band is the understanding band of the last step (not a state: the
	// turn record reads it).
	Band string `json:"band,omitempty"`
	// Held is a recording waiting for transcription capacity.
	Held *HeldRecording `json:"held,omitempty"`
}

// HeldRecording is a recording the caller made that koel put on hold.
type HeldRecording struct {
	URL    string `json:"url"`
	Status string `json:"status,omitempty"`
	// Holds counts the holds it got.
	Holds int `json:"holds"`
}

// PendingAnswer is a bot answer held until the caller confirms it.
type PendingAnswer struct {
	Reply      []string `json:"reply"`
	Node       string   `json:"node,omitempty"`
	Topic      string   `json:"topic,omitempty"`
	Confidence float64  `json:"confidence,omitempty"`
	Handoff    bool     `json:"handoff,omitempty"`
	// CollectDigits is set when the answer asks for a value (see
	// [Recorded].CollectDigits).
	CollectDigits int `json:"collect_digits,omitempty"`
}

// MenuTopic is one option of the topic menu: an FAQ node and its spoken
// title.
type MenuTopic struct {
	Node  string `json:"node"`
	Title string `json:"title"`
}

// Outcomes of a call, set in [Call].Outcome when it ends.
const (
	OutcomeCallerHangup = "caller_hangup" // the caller hung up
	OutcomeTransferred  = "transferred"   // an agent answered a transfer
	OutcomeFailed       = "failed"        // too many consecutive failures, or the platform dropped the call
	OutcomeNoInput      = "no_input"      // too many consecutive no-inputs
)

// Fail reasons of a [Recorded] event (a closed set: they label metrics).
const (
	FailFetch      = "fetch"       // the recording could not be downloaded
	FailDecode     = "decode"      // the recording is not audio koel can decode
	FailSTT        = "stt"         // speech-to-text failed
	FailBot        = "bot"         // the bot failed
	FailBotTimeout = "bot_timeout" // the bot did not answer in time
	FailInternal   = "internal"    // the store or another part of koel failed
	FailInvalid    = "invalid"     // the platform sent a malformed request
)

// CallEvent is one thing that happened on a call: [CallStarted], [Recorded],
// [DTMF], [DialEnded], [CallerHungUp] or [Disconnected].
type CallEvent interface{ callEvent() }

// CallStarted is a new inbound call (KooKoo NewCall).
type CallStarted struct{}

// Recorded is the result of one caller utterance, after the driver heard
// it and asked the engine. At most one of FailReason (a failure: the break
// message), NoSpeech (nothing heard), NotUnderstood (heard, not
// understood) and Answer (a yes or no to a confirmation) is set; otherwise
// Reply is the bot's answer, banded by Confidence.
type Recorded struct {
	// FailReason is one of the Fail* constants when the turn failed.
	FailReason string
	// NoSpeech is true when the recording held no speech.
	NoSpeech bool
	// NotUnderstood is true when speech was heard but neither the
	// recogniser nor the bot understood it.
	NotUnderstood bool
	// Answer is AnswerYes or AnswerNo when the utterance answered a
	// confirmation.
	Answer string
	// Reply are the bot's messages, spoken in order. Empty when an agent
	// owns the conversation (the bot stays quiet).
	Reply []string
	// Handoff is true when the bot asked for a human agent.
	Handoff bool
	// Confident is true when the reply is spoken whatever its confidence
	// (a reply replayed after a crash, a bot without confidences).
	Confident bool
	// Unsure is true when the recogniser was unsure of the words (its
	// confidence was under the minimum; the driver then scales Confidence
	// down by it): an answer without a topic to confirm is not spoken.
	Unsure bool
	// Thin is true when the answer rests on a single word of the caller's
	// while the recogniser was unsure or heard other words the answer does
	// not use ("what time do you human" for an agent): it is confirmed
	// whatever its confidence, never spoken outright.
	Thin bool
	// Confidence, Node and Topic describe the bot's answer; Topic names
	// it in a confirmation.
	Confidence float64
	Node       string
	Topic      string
	// Topics are the FAQ's top topics, for the topic menu (set when the
	// turn may lead to it).
	Topics []MenuTopic
	// CollectDigits, when positive, says the answer asks for a value (an
	// order number, for an API step): it is played inside a key
	// collection of up to that many keys (see [Collected]).
	CollectDigits int
}

// Busy means koel had no capacity to transcribe a recording now (every
// recording slot busy): the recording is held in the call and the caller
// hears the hold message; the platform's follow-up request (KooKoo calls
// again after a response without an input verb) delivers it again.
type Busy struct {
	RecordingURL string
	RecordStatus string
}

// TopicChosen is a key of the topic menu that picked Topic, with that
// topic's answer (looked up by the driver). FailReason is set when the
// answer could not be loaded.
type TopicChosen struct {
	Topic      MenuTopic
	Reply      []string
	FailReason string
}

// DTMF is the result of a key collection (KooKoo GotDTMF). Digits is empty
// when the caller pressed nothing before the timeout.
type DTMF struct{ Digits string }

// DialEnded is the end of the agent leg of a transfer (KooKoo Dial).
type DialEnded struct{ Answered bool }

// CallerHungUp means the caller hung up (KooKoo Hangup). DialAnswered is true
// when the caller hung up while talking to an agent.
type CallerHungUp struct{ DialAnswered bool }

// Disconnected means the platform ended the call (KooKoo Disconnect),
// normally after a [HangUp].
type Disconnected struct{}

func (CallStarted) callEvent()  {}
func (Recorded) callEvent()     {}
func (Collected) callEvent()    {}
func (TopicChosen) callEvent()  {}
func (Busy) callEvent()         {}
func (DTMF) callEvent()         {}
func (DialEnded) callEvent()    {}
func (CallerHungUp) callEvent() {}
func (Disconnected) callEvent() {}

// CallAction is one thing the driver must do, in order: [Say], [Listen],
// [Menu], [Transfer] or [HangUp]. At most one of the last four is returned,
// and it is always last.
type CallAction interface{ callAction() }

// Say speaks Text to the caller.
type Say struct{ Text string }

// Listen records the caller until Silence of silence after speech, or
// MaxDuration. Name is unique per call ("{sid}-{turn}").
type Listen struct {
	Name        string
	Silence     time.Duration
	MaxDuration time.Duration
}

// Menu plays Prompt and collects up to MaxDigits keys, giving up after
// Timeout of no input; Terminator, when set, is the key that ends the
// input early ("#").
type Menu struct {
	Prompt     string
	MaxDigits  int
	Timeout    time.Duration
	Terminator string
}

// Transfer dials Number and bridges the caller to it, showing CallerID to
// the called party when set.
type Transfer struct {
	Number   string
	CallerID string
}

// HangUp ends the call.
type HangUp struct{}

func (Say) callAction()      {}
func (Listen) callAction()   {}
func (Menu) callAction()     {}
func (Transfer) callAction() {}
func (HangUp) callAction()   {}

// VoiceSettings returns s with the voice defaults filled in and every voice
// setting clamped to its allowed range.
func VoiceSettings(s ConnectionSettings) ConnectionSettings {
	s.SilencePeriod = clamp(s.SilencePeriod, DefaultSilencePeriod, MaxSilencePeriod)
	s.MaxRecordTime = clamp(s.MaxRecordTime, DefaultMaxRecordTime, MaxMaxRecordTime)
	s.MaxFailures = clamp(s.MaxFailures, DefaultMaxFailures, MaxMaxFailures)
	s.WelcomeMessage = orDefault(s.WelcomeMessage, DefaultWelcomeMessage)
	s.BreakMessage = orDefault(s.BreakMessage, DefaultBreakMessage)
	s.GoodbyeMessage = orDefault(s.GoodbyeMessage, DefaultGoodbyeMessage)
	s.RepromptText = orDefault(s.RepromptText, DefaultRepromptMessage)
	s.AnswerConfidence = clampConfidence(s.AnswerConfidence, DefaultAnswerConfidence)
	s.ConfirmConfidence = clampConfidence(s.ConfirmConfidence, DefaultConfirmConfidence)
	if s.ConfirmConfidence > s.AnswerConfidence {
		s.ConfirmConfidence = s.AnswerConfidence
	}
	s.AgentNumber = strings.TrimSpace(s.AgentNumber)
	s.CallerID = strings.TrimSpace(s.CallerID)
	return s
}

func clamp(v, def, hi int) int {
	if v <= 0 {
		return def
	}
	return min(v, hi)
}

func clampConfidence(v, def float64) float64 {
	if !(v > 0) || v > 1 {
		return def
	}
	return v
}

func orDefault(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return v
}

// Live reports whether the call has not ended.
func (c Call) Live() bool {
	return c.State != CallStateEnded
}

// Step applies ev to the call under the connection's settings s and returns
// the next call and the actions to perform. It is pure: c is not modified.
// An event that makes no sense in the call's state (a Dial result while
// listening, anything after the call ended) returns the call unchanged and
// no actions.
func (c Call) Step(ev CallEvent, s ConnectionSettings) (Call, []CallAction) {
	s = VoiceSettings(s)
	c.Repair.Band = ""
	held := c.Repair.Held
	c.Repair.Held = nil
	if b, ok := ev.(Busy); ok && c.Live() {
		switch c.State {
		case CallStateUnknown, CallStateListening, CallStateMenu, CallStateConfirming, CallStateTopics, CallStateCollecting:
			return c.busy(b, held, s)
		}
	}
	switch ev := ev.(type) {
	case CallerHungUp:
		return c.hungUp(ev)
	case Disconnected:
		return c.disconnected()
	}
	switch c.State {
	case CallStateUnknown:
		if _, ok := ev.(CallStarted); ok {
			next := c
			next.Failures = 0
			return next.listen(s, Say{Text: s.WelcomeMessage})
		}
		// A call whose NewCall this node never saw (state lost, or a
		// deployment switched mid-call) continues as if listening.
		return c.listening(ev, s)
	case CallStateListening, CallStateMenu:
		return c.listening(ev, s)
	case CallStateConfirming:
		return c.confirming(ev, s)
	case CallStateTopics:
		return c.topics(ev, s)
	case CallStateCollecting:
		return c.collecting(ev, s)
	case CallStateTransferring:
		switch ev := ev.(type) {
		case DialEnded:
			return c.dialEnded(ev, s)
		case DTMF:
			// Keys (or a request without an event) arrive only when no
			// dial is running: the transfer ended unreported.
			return c.dialEnded(DialEnded{}, s)
		}
	case CallStateHangingUp:
		// The platform is about to disconnect; repeat the hang-up to
		// anything but the end of the call.
		if _, ok := ev.(CallStarted); !ok {
			return c, []CallAction{HangUp{}}
		}
	}
	return c, nil
}

// listening handles the events of the listening and menu states.
func (c Call) listening(ev CallEvent, s ConnectionSettings) (Call, []CallAction) {
	switch ev := ev.(type) {
	case Recorded:
		return c.recorded(ev, s)
	case DTMF:
		return c.dtmf(ev, s)
	}
	return c, nil
}

func (c Call) recorded(ev Recorded, s ConnectionSettings) (Call, []CallAction) {
	next := c
	next.Repair.Pending, next.Repair.Topics = nil, nil
	switch {
	case ev.FailReason != "":
		next.Repair.Band = UnderstandingFailed
		next.Failures++
		if next.Failures >= s.MaxFailures {
			return next.hangUp(s, OutcomeFailed, Say{Text: s.BreakMessage})
		}
		return next.listen(s, Say{Text: s.BreakMessage})
	case ev.NoSpeech:
		next.Repair.Band = UnderstandingNoSpeech
		next.Failures++
		next.Repair.Misses++
		if next.Failures >= s.MaxFailures {
			return next.hangUp(s, OutcomeNoInput)
		}
		if m, acts, ok := next.topicMenu(ev.Topics, s, TopicMenuNoSpeech); ok {
			return m, acts
		}
		if s.AgentNumber != "" {
			next.State = CallStateMenu
			return next, []CallAction{Menu{
				Prompt:    s.RepromptText + " " + MenuHint,
				MaxDigits: 1,
				Timeout:   MenuTimeout,
			}}
		}
		return next.listen(s, Say{Text: s.RepromptText})
	case ev.NotUnderstood || (!ev.Confident && len(ev.Reply) > 0 && ev.Confidence < s.ConfirmConfidence && !ev.Handoff):
		return next.notUnderstood(ev.Topics, s)
	}
	if (ev.Unsure || ev.Thin) && !ev.Confident && ev.Topic == "" && !ev.Handoff {
		// Unsure words, or one word, and an answer that cannot be
		// confirmed.
		return next.notUnderstood(ev.Topics, s)
	}
	if !ev.Confident && (ev.Confidence < s.AnswerConfidence || ev.Thin) && len(ev.Reply) > 0 && (ev.Topic != "" || ev.Handoff) {
		next.Repair.Band = UnderstandingConfirm
		next.Failures = 0
		next.State = CallStateConfirming
		next.Repair.Pending = &PendingAnswer{Reply: ev.Reply, Node: ev.Node, Topic: ev.Topic, Confidence: ev.Confidence, Handoff: ev.Handoff,
			CollectDigits: ev.CollectDigits}
		question := ConfirmAgentMessage
		if !ev.Handoff {
			question = fmt.Sprintf(ConfirmTemplate, ev.Topic)
		}
		return next.listenIn(CallStateConfirming, s, Say{Text: question})
	}
	next.Repair.Band = UnderstandingAnswered
	if ev.CollectDigits > 0 && !ev.Handoff {
		return next.collect(ev.Reply, ev.CollectDigits, s)
	}
	return next.answer(ev.Reply, ev.Handoff, s)
}

// answer speaks a reply (and transfers on a handoff) and listens again.
func (c Call) answer(reply []string, handoff bool, s ConnectionSettings) (Call, []CallAction) {
	next := c
	next.Failures = 0
	next.Repair.Misses = 0
	next.Repair.Pending, next.Repair.Topics = nil, nil
	says := make([]CallAction, 0, len(reply)+1)
	for _, text := range reply {
		if strings.TrimSpace(text) != "" {
			says = append(says, Say{Text: text})
		}
	}
	if handoff {
		if s.AgentNumber != "" {
			if len(says) == 0 {
				// An agent owns the conversation, so the bot's reply was
				// suppressed: the caller still hears why the line goes to
				// ringing instead of silence after speaking.
				says = append(says, Say{Text: TransferMessage})
			}
			return next.transfer(s, says...)
		}
		says = append(says, Say{Text: NoAgentMessage})
	}
	return next.listen(s, says...)
}

// notUnderstood asks again in speech, or offers the topic menu after the
// second miss in a row.
func (c Call) notUnderstood(topics []MenuTopic, s ConnectionSettings) (Call, []CallAction) {
	next := c
	next.Repair.Band = UnderstandingReprompt
	next.Repair.Pending, next.Repair.Topics = nil, nil
	next.Repair.Misses++
	// A turn without progress counts towards MaxFailures, so speech that
	// is never understood (line noise read as words) ends the call.
	next.Failures++
	if next.Failures >= s.MaxFailures {
		return next.hangUp(s, OutcomeNoInput)
	}
	if m, acts, ok := next.topicMenu(topics, s, TopicMenuIntro); ok {
		return m, acts
	}
	return next.listen(s, Say{Text: NotUnderstoodMessage})
}

// topicMenu offers the topic menu when the call has missed often enough
// and there are topics to offer.
func (c Call) topicMenu(topics []MenuTopic, s ConnectionSettings, intro string) (Call, []CallAction, bool) {
	if c.Repair.Misses < MenuAfterMisses || len(topics) == 0 {
		return c, nil, false
	}
	topics = topics[:min(len(topics), MaxMenuTopics)]
	next := c
	next.State = CallStateTopics
	next.Repair.Band = UnderstandingMenu
	next.Repair.Topics = topics
	next.Repair.Pending = nil
	var b strings.Builder
	b.WriteString(intro)
	for i, t := range topics {
		if i == 0 {
			b.WriteString(" Press 1 for ")
		} else {
			fmt.Fprintf(&b, ", %d for ", i+1)
		}
		b.WriteString(t.Title)
	}
	if s.AgentNumber != "" {
		b.WriteString(", or 0 for an agent")
	}
	b.WriteString(".")
	return next, []CallAction{Menu{Prompt: b.String(), MaxDigits: 1, Timeout: TopicMenuTimeout}}, true
}

// busy holds a recording until there is capacity to transcribe it: the
// caller hears the hold message, and the next request without an event
// brings it back. After MaxHolds the caller gets the break message.
func (c Call) busy(ev Busy, held *HeldRecording, s ConnectionSettings) (Call, []CallAction) {
	next := c
	holds := 1
	if held != nil && held.URL == ev.RecordingURL {
		holds = held.Holds + 1
	}
	if holds > MaxHolds {
		next.Repair.Band = UnderstandingFailed
		next.Failures++
		if next.Failures >= s.MaxFailures {
			return next.hangUp(s, OutcomeFailed, Say{Text: s.BreakMessage})
		}
		return next.listenIn(c.listeningState(), s, Say{Text: s.BreakMessage})
	}
	next.Repair.Held = &HeldRecording{URL: ev.RecordingURL, Status: ev.RecordStatus, Holds: holds}
	return next, []CallAction{Say{Text: HoldMessage}}
}

// listeningState is the state a new recording of the call runs in: a
// confirmation stays one.
func (c Call) listeningState() CallState {
	if c.State == CallStateConfirming {
		return CallStateConfirming
	}
	return CallStateListening
}

// confirming handles the events of a confirmation: a spoken or keyed yes
// or no, or a new question.
func (c Call) confirming(ev CallEvent, s ConnectionSettings) (Call, []CallAction) {
	switch ev := ev.(type) {
	case Recorded:
		switch {
		case ev.Answer == AnswerYes:
			return c.confirmed(s)
		case ev.FailReason == "" && ev.Node != "" && c.Repair.Pending != nil && ev.Node == c.Repair.Pending.Node:
			// The caller said their question again and it led to the
			// same answer: a yes.
			return c.confirmed(s)
		case ev.Answer == AnswerNo:
			return c.declined(ev.Topics, s)
		case ev.NoSpeech || ev.NotUnderstood:
			// Neither a yes nor a no: offer the keys, holding the answer.
			next := c
			next.Repair.Band = UnderstandingConfirm
			next.Failures++
			if next.Failures >= s.MaxFailures {
				return next.hangUp(s, OutcomeNoInput)
			}
			return next, []CallAction{Menu{Prompt: ConfirmKeysMessage, MaxDigits: 1, Timeout: ConfirmKeysTimeout}}
		}
		// A new question (or a failure) instead of a yes or no.
		return c.recorded(ev, s)
	case DTMF:
		switch strings.TrimRight(ev.Digits, "#") {
		case "1":
			return c.confirmed(s)
		case "2":
			return c.declined(nil, s)
		case "":
			// The keys timed out: ask again in speech.
			next := c
			next.Repair.Band = UnderstandingReprompt
			next.Repair.Pending = nil
			return next.listen(s, Say{Text: NotUnderstoodMessage})
		}
		next := c
		next.Repair.Pending = nil
		return next.dtmf(ev, s)
	}
	return c, nil
}

func (c Call) confirmed(s ConnectionSettings) (Call, []CallAction) {
	p := c.Repair.Pending
	next := c
	next.Repair.Band = UnderstandingConfirmed
	if p == nil {
		// Nothing held (state lost): ask for the question again.
		next.Repair.Band = UnderstandingReprompt
		return next.listen(s, Say{Text: NotUnderstoodMessage})
	}
	if p.CollectDigits > 0 && !p.Handoff {
		return next.collect(p.Reply, p.CollectDigits, s)
	}
	return next.answer(p.Reply, p.Handoff, s)
}

func (c Call) declined(topics []MenuTopic, s ConnectionSettings) (Call, []CallAction) {
	next := c
	next.Repair.Band = UnderstandingDeclined
	next.Repair.Pending = nil
	next.Failures = 0
	next.Repair.Misses++
	if m, acts, ok := next.topicMenu(topics, s, TopicMenuDeclined); ok {
		m.Repair.Band = UnderstandingDeclined
		return m, acts
	}
	return next.listen(s, Say{Text: DeclinedMessage})
}

// topics handles the events of the topic menu.
func (c Call) topics(ev CallEvent, s ConnectionSettings) (Call, []CallAction) {
	switch ev := ev.(type) {
	case TopicChosen:
		next := c
		next.Repair.Band = UnderstandingMenu
		if ev.FailReason != "" || len(ev.Reply) == 0 {
			next.Repair.Topics = nil
			next.Failures++
			if next.Failures >= s.MaxFailures {
				return next.hangUp(s, OutcomeFailed, Say{Text: s.BreakMessage})
			}
			return next.listen(s, Say{Text: s.BreakMessage})
		}
		return next.answer(ev.Reply, false, s)
	case DTMF:
		next := c
		next.Repair.Topics = nil
		if strings.TrimRight(ev.Digits, "#") == "" {
			// The menu timed out; whatever was said during it is asked
			// for again.
			return next.listen(s, Say{Text: SayAgainMessage})
		}
		return next.dtmf(ev, s)
	case Recorded:
		return c.recorded(ev, s)
	}
	return c, nil
}

// TopicKey returns the topic a key of the running topic menu picks.
func (c Call) TopicKey(digits string) (MenuTopic, bool) {
	if c.State != CallStateTopics {
		return MenuTopic{}, false
	}
	d := strings.TrimRight(digits, "#")
	if len(d) != 1 || d[0] < '1' || d[0] > '9' {
		return MenuTopic{}, false
	}
	i := int(d[0] - '1')
	if i >= len(c.Repair.Topics) {
		return MenuTopic{}, false
	}
	return c.Repair.Topics[i], true
}

func (c Call) dtmf(ev DTMF, s ConnectionSettings) (Call, []CallAction) {
	digits := strings.TrimRight(ev.Digits, "#")
	switch {
	case digits == "" && c.State == CallStateMenu:
		// The agent menu timed out: whatever the caller said during it
		// is asked for again, without counting a failure.
		return c.listen(s, Say{Text: SayAgainMessage})
	case digits == "":
		// A follow-up request with no event: listen again.
		return c.listen(s)
	case digits == AgentDigit && s.AgentNumber != "":
		return c.transfer(s, Say{Text: TransferMessage})
	case digits == AgentDigit:
		return c.listen(s, Say{Text: NoAgentMessage})
	}
	return c.listen(s, Say{Text: InvalidDigitMessage})
}

func (c Call) dialEnded(ev DialEnded, s ConnectionSettings) (Call, []CallAction) {
	if ev.Answered {
		return c.hangUp(s, OutcomeTransferred)
	}
	return c.listen(s, Say{Text: NoAgentMessage})
}

func (c Call) hungUp(ev CallerHungUp) (Call, []CallAction) {
	if !c.Live() {
		return c, nil
	}
	next := c
	next.State = CallStateEnded
	switch {
	case c.State == CallStateHangingUp && c.Outcome != "":
		// Our hang-up crossed the caller's: keep the reason we hung up.
	case c.State == CallStateTransferring && ev.DialAnswered:
		next.Outcome = OutcomeTransferred
	default:
		next.Outcome = OutcomeCallerHangup
	}
	return next, nil
}

func (c Call) disconnected() (Call, []CallAction) {
	if !c.Live() {
		return c, nil
	}
	next := c
	next.State = CallStateEnded
	if c.State != CallStateHangingUp || c.Outcome == "" {
		// The platform ended a call koel had not hung up.
		next.Outcome = OutcomeFailed
	}
	return next, nil
}

// listen moves to listening: the given actions, then a new recording.
func (c Call) listen(s ConnectionSettings, before ...CallAction) (Call, []CallAction) {
	return c.listenIn(CallStateListening, s, before...)
}

// listenIn records in state: the given actions, then a new recording.
func (c Call) listenIn(state CallState, s ConnectionSettings, before ...CallAction) (Call, []CallAction) {
	next := c
	next.State = state
	next.Turn++
	return next, append(before, Listen{
		Name:        RecordingName(c.SID, next.Turn),
		Silence:     time.Duration(s.SilencePeriod) * time.Second,
		MaxDuration: time.Duration(s.MaxRecordTime) * time.Second,
	})
}

func (c Call) transfer(s ConnectionSettings, before ...CallAction) (Call, []CallAction) {
	next := c
	next.State = CallStateTransferring
	return next, append(before, Transfer{Number: s.AgentNumber, CallerID: s.CallerID})
}

func (c Call) hangUp(s ConnectionSettings, outcome string, before ...CallAction) (Call, []CallAction) {
	next := c
	next.State = CallStateHangingUp
	next.Outcome = outcome
	return next, append(before, Say{Text: s.GoodbyeMessage}, HangUp{})
}

// RecordingName names the recording of a call's turn: "{sid}-{turn}".
func RecordingName(sid string, turn int) string {
	return sid + "-" + strconv.Itoa(turn)
}
