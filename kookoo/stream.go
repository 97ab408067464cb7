package kookoo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// The bidirectional audio stream (<stream>): once an app answers a
// [Stream] verb, KooKoo opens a WebSocket to the verb's URL and exchanges
// JSON text messages with the app (shared/spec/kookoo-stream.md §2, §3):
//
//   - KooKoo to app: [StreamStart] once, first; [StreamMedia] every 10 ms
//     (80 samples of 8 kHz PCM16, the first one a 16 kHz calibration packet
//     to ignore); [StreamMark] after it played an app packet that carried a
//     seqid; [StreamStop] at the end.
//   - App to KooKoo: [StreamMedia] with a SeqID, one every 10 ms; and
//     [StreamCommand] clearBuffer (drop what is queued, for barge-in) or
//     callDisconnect (end the call).
//
// [ParsePlatformMessage] reads what KooKoo sends (the app side: koel's
// server), [ParseAppMessage] what an app sends (the platform side: koel's
// emulator). Both cap the message at [MaxStreamMessageBytes] and validate
// every field koel relies on.

// Stream audio format.
const (
	// StreamRate is the sample rate of stream audio in Hz.
	StreamRate = 8000
	// StreamFrameSamples is the number of samples in one media message.
	StreamFrameSamples = 80
	// StreamFrameDuration is the audio one media message carries.
	StreamFrameDuration = 10 * time.Millisecond
	// CalibrationRate and CalibrationSamples describe the first media
	// message of a stream, which carries no caller audio (ignore it).
	CalibrationRate    = 16000
	CalibrationSamples = 160
	// MaxStreamMessageBytes caps one WebSocket message in either
	// direction. A media message of 80 samples is under 1 KiB.
	MaxStreamMessageBytes = 8 << 10
	// maxStreamSamples caps the samples of one media message (a calibration
	// packet has 160).
	maxStreamSamples = 320
	// maxStreamIDBytes caps ucid, did, call_id, x_account and seqid.
	maxStreamIDBytes = 128
	// maxXHeadersBytes caps the x_headers string.
	maxXHeadersBytes = 4 << 10
)

// Stream commands an app sends.
const (
	CommandClearBuffer    = "clearBuffer"
	CommandCallDisconnect = "callDisconnect"
)

// Stream errors.
var (
	// ErrStreamMessage means a stream message is not one koel accepts: not
	// JSON, an unknown event, a field of the wrong type or out of range.
	ErrStreamMessage = errors.New("kookoo: invalid stream message")
)

// StreamMessage is one message of the stream: [StreamStart],
// [StreamMedia], [StreamMark], [StreamStop] or [StreamCommand].
type StreamMessage interface{ streamMessage() }

// StreamFormat is the media description of a [StreamStart]. KooKoo says
// PCMU there, but the samples of media messages are linear PCM16.
type StreamFormat struct {
	Encoding      string `json:"encoding"`
	SampleRate    int    `json:"sampleRate"`
	Channels      int    `json:"channels"`
	BitsPerSample int    `json:"bitsPerSample"`
	PayloadType   int    `json:"payloadType"`
}

// StreamStart opens the stream.
type StreamStart struct {
	// UCID is the call id, the IVR sid.
	UCID string
	// DID is the called KooKoo number.
	DID string
	// CallID is the caller's number (log it masked).
	CallID string
	// XAccount is the KooKoo account, when sent.
	XAccount string
	// XHeaders is the verb's x-uui, as the string KooKoo forwards (in
	// practice JSON).
	XHeaders string
	// Media describes the audio.
	Media StreamFormat
}

// StreamMedia is 10 ms of audio (or the calibration packet).
type StreamMedia struct {
	// UCID is the call id.
	UCID string
	// Samples are signed 16-bit samples.
	Samples []int16
	// SampleRate is 8000, or 16000 for the calibration packet.
	SampleRate int
	// SeqID, on app packets, asks KooKoo for a [StreamMark] once played.
	SeqID string
}

// IsCalibration reports whether m is the calibration packet that opens
// KooKoo's media (16 kHz, 160 samples): it carries no caller audio.
func (m StreamMedia) IsCalibration() bool {
	return m.SampleRate == CalibrationRate && len(m.Samples) == CalibrationSamples
}

// StreamMark acknowledges that KooKoo played the app packet SeqID.
type StreamMark struct {
	UCID  string
	SeqID string
	// Timestamp is KooKoo's time of the ack in Unix milliseconds (0 when
	// absent).
	Timestamp int64
}

// StreamStop ends the stream.
type StreamStop struct {
	UCID string
	DID  string
}

// StreamCommand is a command from the app: [CommandClearBuffer] or
// [CommandCallDisconnect].
type StreamCommand struct{ Command string }

func (StreamStart) streamMessage()   {}
func (StreamMedia) streamMessage()   {}
func (StreamMark) streamMessage()    {}
func (StreamStop) streamMessage()    {}
func (StreamCommand) streamMessage() {}

// wireMessage is the JSON of every stream message.
type wireMessage struct {
	Event     string          `json:"event,omitempty"`
	Type      string          `json:"type,omitempty"`
	Command   string          `json:"command,omitempty"`
	UCID      string          `json:"ucid,omitempty"`
	DID       string          `json:"did,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	XAccount  string          `json:"x_account,omitempty"`
	XHeaders  json.RawMessage `json:"x_headers,omitempty"`
	SeqID     string          `json:"seqid,omitempty"`
	Timestamp *json.Number    `json:"timestamp,omitempty"`
	Media     *StreamFormat   `json:"media,omitempty"`
	Data      *wireMedia      `json:"data,omitempty"`
}

type wireMedia struct {
	Samples        []int16 `json:"samples"`
	BitsPerSample  *int    `json:"bitsPerSample,omitempty"`
	SampleRate     int     `json:"sampleRate"`
	ChannelCount   *int    `json:"channelCount,omitempty"`
	NumberOfFrames *int    `json:"numberOfFrames,omitempty"`
	Type           string  `json:"type,omitempty"`
}

// ParsePlatformMessage reads one message KooKoo sends to an app: start,
// media, mark or stop. Errors wrap [ErrTooLarge] (over
// [MaxStreamMessageBytes]) or [ErrStreamMessage].
func ParsePlatformMessage(data []byte) (StreamMessage, error) {
	w, err := decodeWire(data)
	if err != nil {
		return nil, err
	}
	if w.Command != "" {
		return nil, fmt.Errorf("%w: a command (%.32q) is sent by apps, not by KooKoo", ErrStreamMessage, w.Command)
	}
	if err := checkIDs(w); err != nil {
		return nil, err
	}
	switch w.Event {
	case "start":
		if w.UCID == "" {
			return nil, fmt.Errorf("%w: start without ucid", ErrStreamMessage)
		}
		xh, err := xHeaders(w.XHeaders)
		if err != nil {
			return nil, err
		}
		s := StreamStart{UCID: w.UCID, DID: w.DID, CallID: w.CallID, XAccount: w.XAccount, XHeaders: xh}
		if w.Media != nil {
			s.Media = *w.Media
			if len(s.Media.Encoding) > maxTokenBytes {
				return nil, fmt.Errorf("%w: media encoding over %d bytes", ErrStreamMessage, maxTokenBytes)
			}
		}
		return s, nil
	case "media":
		return parseMedia(w, false)
	case "mark":
		if w.SeqID == "" {
			return nil, fmt.Errorf("%w: mark without seqid", ErrStreamMessage)
		}
		m := StreamMark{UCID: w.UCID, SeqID: w.SeqID}
		if w.Timestamp != nil {
			ts, err := w.Timestamp.Int64()
			if err != nil || ts < 0 {
				return nil, fmt.Errorf("%w: mark timestamp %.32q is not a non-negative integer", ErrStreamMessage, w.Timestamp.String())
			}
			m.Timestamp = ts
		}
		return m, nil
	case "stop":
		return StreamStop{UCID: w.UCID, DID: w.DID}, nil
	case "":
		return nil, fmt.Errorf("%w: no event", ErrStreamMessage)
	}
	return nil, fmt.Errorf("%w: unknown event %.32q", ErrStreamMessage, w.Event)
}

// ParseAppMessage reads one message an app sends to KooKoo: media (with or
// without a seqid) or a command. Errors wrap [ErrTooLarge] or
// [ErrStreamMessage].
func ParseAppMessage(data []byte) (StreamMessage, error) {
	w, err := decodeWire(data)
	if err != nil {
		return nil, err
	}
	if err := checkIDs(w); err != nil {
		return nil, err
	}
	if w.Command != "" {
		if w.Event != "" {
			return nil, fmt.Errorf("%w: both a command and an event", ErrStreamMessage)
		}
		switch w.Command {
		case CommandClearBuffer, CommandCallDisconnect:
			return StreamCommand{Command: w.Command}, nil
		}
		return nil, fmt.Errorf("%w: unknown command %.32q", ErrStreamMessage, w.Command)
	}
	switch w.Event {
	case "media":
		return parseMedia(w, true)
	case "":
		return nil, fmt.Errorf("%w: neither an event nor a command", ErrStreamMessage)
	}
	return nil, fmt.Errorf("%w: event %.32q is not one an app sends", ErrStreamMessage, w.Event)
}

func decodeWire(data []byte) (wireMessage, error) {
	var w wireMessage
	if len(data) > MaxStreamMessageBytes {
		return w, fmt.Errorf("%w: stream message of %d bytes, at most %d", ErrTooLarge, len(data), MaxStreamMessageBytes)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&w); err != nil {
		return w, fmt.Errorf("%w: %w", ErrStreamMessage, err)
	}
	if d.More() {
		return w, fmt.Errorf("%w: more than one JSON value", ErrStreamMessage)
	}
	return w, nil
}

// checkIDs caps and validates the identifiers of a message.
func checkIDs(w wireMessage) error {
	for _, f := range []struct{ name, v string }{
		{"ucid", w.UCID}, {"did", w.DID}, {"call_id", w.CallID}, {"x_account", w.XAccount}, {"seqid", w.SeqID},
	} {
		if len(f.v) > maxStreamIDBytes {
			return fmt.Errorf("%w: %s over %d bytes", ErrStreamMessage, f.name, maxStreamIDBytes)
		}
		if hasControl(f.v) || !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s holds control characters or invalid UTF-8", ErrStreamMessage, f.name)
		}
	}
	if w.UCID != "" && !validSID(w.UCID) {
		return fmt.Errorf("%w: ucid must be 1-%d characters of [A-Za-z0-9._:-]", ErrStreamMessage, maxSIDBytes)
	}
	return nil
}

// xHeaders returns x_headers as the string KooKoo forwards; an object (an
// implementation that did not stringify it) is kept as its JSON text.
func xHeaders(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: x_headers: %w", ErrStreamMessage, err)
		}
	case '{':
		s = string(raw)
	default:
		return "", fmt.Errorf("%w: x_headers is neither a string nor an object", ErrStreamMessage)
	}
	if len(s) > maxXHeadersBytes {
		return "", fmt.Errorf("%w: x_headers over %d bytes", ErrStreamMessage, maxXHeadersBytes)
	}
	return s, nil
}

func parseMedia(w wireMessage, fromApp bool) (StreamMessage, error) {
	if w.Data == nil {
		return nil, fmt.Errorf("%w: media without data", ErrStreamMessage)
	}
	d := w.Data
	switch {
	case len(d.Samples) == 0:
		return nil, fmt.Errorf("%w: media without samples", ErrStreamMessage)
	case len(d.Samples) > maxStreamSamples:
		return nil, fmt.Errorf("%w: %d samples in one media message, at most %d", ErrStreamMessage, len(d.Samples), maxStreamSamples)
	case d.BitsPerSample != nil && *d.BitsPerSample != 16:
		return nil, fmt.Errorf("%w: bitsPerSample %d, not 16", ErrStreamMessage, *d.BitsPerSample)
	case d.ChannelCount != nil && *d.ChannelCount != 1:
		return nil, fmt.Errorf("%w: channelCount %d, not 1", ErrStreamMessage, *d.ChannelCount)
	case d.NumberOfFrames != nil && *d.NumberOfFrames != len(d.Samples):
		return nil, fmt.Errorf("%w: numberOfFrames %d but %d samples", ErrStreamMessage, *d.NumberOfFrames, len(d.Samples))
	}
	switch d.SampleRate {
	case StreamRate:
	case CalibrationRate:
		if fromApp {
			return nil, fmt.Errorf("%w: app audio must be %d Hz, not %d", ErrStreamMessage, StreamRate, d.SampleRate)
		}
	default:
		return nil, fmt.Errorf("%w: sampleRate %d is neither %d nor %d", ErrStreamMessage, d.SampleRate, StreamRate, CalibrationRate)
	}
	if !fromApp && w.SeqID != "" {
		return nil, fmt.Errorf("%w: KooKoo media carries no seqid", ErrStreamMessage)
	}
	return StreamMedia{UCID: w.UCID, Samples: d.Samples, SampleRate: d.SampleRate, SeqID: w.SeqID}, nil
}

// AppendMediaMessage appends the JSON of a media message (event media,
// data.samples...) to dst, as KooKoo sends it and as apps send it back;
// seqid is left out when empty. ucid and seqid must be tokens of
// [A-Za-z0-9._:-] (a sid, a UUID); anything else is encoded through
// encoding/json.
func AppendMediaMessage(dst []byte, ucid string, samples []int16, rate int, seqid string) []byte {
	dst = append(dst, `{"event":"media","type":"media","ucid":`...)
	dst = appendJSONString(dst, ucid)
	if seqid != "" {
		dst = append(dst, `,"seqid":`...)
		dst = appendJSONString(dst, seqid)
	}
	dst = append(dst, `,"data":{"samples":[`...)
	for i, s := range samples {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(s), 10)
	}
	dst = append(dst, `],"bitsPerSample":16,"sampleRate":`...)
	dst = strconv.AppendInt(dst, int64(rate), 10)
	dst = append(dst, `,"channelCount":1,"numberOfFrames":`...)
	dst = strconv.AppendInt(dst, int64(len(samples)), 10)
	return append(dst, `,"type":"data"}}`...)
}

func appendJSONString(dst []byte, s string) []byte {
	if validSID(s) || s == "" {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// MarshalStreamMessage returns the JSON of m as KooKoo and apps write it.
// Media goes through [AppendMediaMessage].
func MarshalStreamMessage(m StreamMessage) ([]byte, error) {
	var w wireMessage
	switch m := m.(type) {
	case StreamStart:
		xh, err := json.Marshal(m.XHeaders)
		if err != nil {
			return nil, fmt.Errorf("kookoo: marshal start: %w", err)
		}
		media := m.Media
		w = wireMessage{Event: "start", Type: "text", UCID: m.UCID, DID: m.DID, CallID: m.CallID, XAccount: m.XAccount,
			XHeaders: xh, Media: &media}
	case StreamMedia:
		return AppendMediaMessage(nil, m.UCID, m.Samples, m.SampleRate, m.SeqID), nil
	case StreamMark:
		ts := json.Number(strconv.FormatInt(m.Timestamp, 10))
		w = wireMessage{Event: "mark", Type: "ack", UCID: m.UCID, SeqID: m.SeqID, Timestamp: &ts}
	case StreamStop:
		w = wireMessage{Event: "stop", Type: "text", UCID: m.UCID, DID: m.DID}
	case StreamCommand:
		w = wireMessage{Command: m.Command}
	default:
		return nil, fmt.Errorf("kookoo: marshal stream message %T", m)
	}
	return json.Marshal(w)
}
