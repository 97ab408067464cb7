package sim

// Event types sent to the caller's UI over the "koel" DataChannel, one JSON
// object per message.
const (
	EventCall       = "call"       // the call is up: CallID, SID
	EventRequest    = "request"    // the emulator called the app: KooKoo (event name, "" for a follow-up), Data, Status
	EventBot        = "bot"        // the bot speaks: Text (playtext, say-as) or URL (playaudio)
	EventListen     = "listen"     // the emulator waits for the caller: Mode "record" or "dtmf" ("stream": a stream app's audio has played out)
	EventPartial    = "partial"    // partial transcript of the caller: Text
	EventCaller     = "caller"     // final transcript of the caller: Text, Confidence
	EventTurn       = "turn"       // figures of one recorded turn: Reason, SpeechMS, RecordMS, EndpointMS, ReplyMS, URL
	EventDTMF       = "dtmf"       // digits collected: Text
	EventDial       = "dial"       // a simulated <dial>: Text (number), Status
	EventSMS        = "sms"        // a <sendsms>: Text
	EventWarning    = "warning"    // the app's response was read tolerantly: Text names tag, attribute, value and the default used
	EventConference = "conference" // the caller joined a <conference>: Text (name)
	EventStream     = "stream"     // the <stream> WebSocket (stream.go): Mode open, clear (barge-in), disconnect, error or close; Text
	EventInfo       = "info"       // anything else worth showing: Text
	EventError      = "error"      // something failed: Text says why
	EventHangup     = "hangup"     // the call ended: Reason ("app", "caller", "error"), Text
)

// Event is one message to the caller's UI (the page or the CLI).
type Event struct {
	Type       string  `json:"type"`
	CallID     string  `json:"call_id,omitempty"`
	SID        string  `json:"sid,omitempty"`
	KooKoo     string  `json:"kookoo,omitempty"`
	Text       string  `json:"text,omitempty"`
	URL        string  `json:"url,omitempty"`
	Mode       string  `json:"mode,omitempty"`
	Data       string  `json:"data,omitempty"`
	Status     string  `json:"status,omitempty"`
	Reason     string  `json:"reason,omitempty"`
	Confidence float64 `json:"confidence,omitempty"`
	// Figures, in milliseconds; -1 when unknown.
	SpeechMS int64 `json:"speech_ms"`
	RecordMS int64 `json:"record_ms"`
	ReplyMS  int64 `json:"reply_ms"`
	// EndpointMS is the wall time from the arrival of the last speech
	// frame to the end-pointer's decision (silence period + delay), -1
	// when the record did not end on silence.
	EndpointMS int64 `json:"endpoint_ms"`
	// FramesLate counts outgoing frames more than 40 ms late (hangup).
	FramesLate int64 `json:"frames_late,omitempty"`
	FramesSent int64 `json:"frames_sent,omitempty"`
}
