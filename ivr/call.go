package ivr

import (
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
)

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

// Recorded is the result of one caller utterance, after the driver fetched
// and transcribed the recording and asked the engine. Exactly one of the
// outcomes holds: FailReason set (a failure: the break message is spoken),
// NoSpeech (nothing intelligible: a re-prompt), or a reply from the bot.
type Recorded struct {
	// FailReason is one of the Fail* constants when the turn failed.
	FailReason string
	// NoSpeech is true when the recording held no recognisable speech.
	NoSpeech bool
	// Reply are the bot's messages, spoken in order. Empty when an agent
	// owns the conversation (the bot stays quiet).
	Reply []string
	// Handoff is true when the bot asked for a human agent.
	Handoff bool
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
// Timeout of no input.
type Menu struct {
	Prompt    string
	MaxDigits int
	Timeout   time.Duration
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
	switch {
	case ev.FailReason != "":
		next.Failures++
		if next.Failures >= s.MaxFailures {
			return next.hangUp(s, OutcomeFailed, Say{Text: s.BreakMessage})
		}
		return next.listen(s, Say{Text: s.BreakMessage})
	case ev.NoSpeech:
		next.Failures++
		if next.Failures >= s.MaxFailures {
			return next.hangUp(s, OutcomeNoInput)
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
	}
	next.Failures = 0
	says := make([]CallAction, 0, len(ev.Reply)+1)
	for _, text := range ev.Reply {
		if strings.TrimSpace(text) != "" {
			says = append(says, Say{Text: text})
		}
	}
	if ev.Handoff {
		if s.AgentNumber != "" {
			return next.transfer(s, says...)
		}
		says = append(says, Say{Text: NoAgentMessage})
	}
	return next.listen(s, says...)
}

func (c Call) dtmf(ev DTMF, s ConnectionSettings) (Call, []CallAction) {
	digits := strings.TrimRight(ev.Digits, "#")
	switch {
	case digits == "":
		// The menu timed out (or a follow-up request with no event):
		// listen again, without counting a failure.
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
	next := c
	next.State = CallStateListening
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
