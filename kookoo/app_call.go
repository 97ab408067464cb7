package kookoo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"

	"github.com/koelvoice/koel/ivr"
)

// The KooKoo side of a voice turn: a request becomes an [ivr.VoiceEvent]
// for the voice service, and the service's [ivr.CallAction]s become verbs.
// Locking, dedupe, transcription, the engine and the turn rows live in
// [ivr.VoiceService].

// handle runs one valid event of a call through the voice service.
func (a *App) handle(ctx context.Context, req Request, conn ivr.Connection, s ivr.ConnectionSettings) (ivr.VoiceAnswer, error) {
	ev := ivr.VoiceEvent{
		SID:          req.SID,
		Connection:   conn,
		Settings:     s,
		Caller:       req.CID,
		CalledNumber: req.CalledNumber,
		Key:          eventKey(req),
		Audio:        a,
	}
	switch req.Event {
	case EventNewCall:
		ev.Event = ivr.CallStarted{}
	case EventRecord:
		ev.Event, ev.Speech = ivr.Recorded{}, a.utterance(req)
	case EventGotDTMF, EventNone:
		ev.Event = ivr.DTMF{Digits: req.Digits()}
	case EventDial:
		ev.Event = ivr.DialEnded{Answered: strings.EqualFold(req.Status, "answered")}
	case EventHangup:
		ev.Event = ivr.CallerHungUp{DialAnswered: strings.EqualFold(req.Process, "dial") && strings.EqualFold(req.Status, "answered")}
		if req.HasRecording() && req.Process != "dial" {
			ev.Speech = a.utterance(req)
		}
	case EventDisconnect:
		ev.Event = ivr.Disconnected{}
	}
	return a.voice.Handle(ctx, ev, a)
}

// handleInvalid runs a rejected request of a known sid: it ends the call on
// Hangup or Disconnect and counts a failure otherwise. Only the head of the
// request (sid and event) is used.
func (a *App) handleInvalid(ctx context.Context, head Request, rawQuery string, conn ivr.Connection, s ivr.ConnectionSettings) (ivr.VoiceAnswer, error) {
	ev := ivr.VoiceEvent{
		SID:        head.SID,
		Connection: conn,
		Settings:   s,
		Key:        invalidKey(head, rawQuery),
		Event:      ivr.Recorded{FailReason: ivr.FailInvalid},
		KnownOnly:  true,
	}
	switch head.Event {
	case EventHangup:
		ev.Event = ivr.CallerHungUp{}
	case EventDisconnect:
		ev.Event = ivr.Disconnected{}
	}
	return a.voice.Handle(ctx, ev, a)
}

// utterance describes the recording of a request: the softphone's own
// transcript (and the audio it holds) when it has one, else the recording
// to fetch.
func (a *App) utterance(req Request) *ivr.Utterance {
	u := &ivr.Utterance{RecordingURL: req.Data, RecordStatus: req.Status, Audio: a}
	if a.pre != nil && req.Data != "" {
		if res, ok := a.pre.LookupTranscript(req.Data); ok {
			u.Transcript = &res
			if tt, ok := a.pre.(TranscriptTimings); ok {
				u.SpeechDuration, u.STTDuration, _ = tt.LookupTranscriptTimings(req.Data)
			}
			if hr, ok := a.pre.(HeldRecordings); ok {
				u.Held = heldRecording{src: hr, url: req.Data}
			}
		}
	}
	return u
}

// heldRecording is the [ivr.HeldAudio] of a recording the softphone
// transcribed: its samples are looked up only when a pass needs them.
type heldRecording struct {
	src HeldRecordings
	url string
}

// HeldPCM implements [ivr.HeldAudio].
func (h heldRecording) HeldPCM() ([]int16, bool) { return h.src.LookupRecordingPCM(h.url) }

// Render implements [ivr.VoiceRenderer]: actions become KooKoo XML. A call
// that has ended is answered with an empty body, as KooKoo expects after
// Hangup and Disconnect; an event of an ended call that asks for something
// is hung up.
func (a *App) Render(call ivr.Call, actions []ivr.CallAction) ivr.VoiceAnswer {
	if len(actions) == 0 {
		if !call.Live() {
			return ivr.VoiceAnswer{Empty: true}
		}
		// An event that made no sense in the call's state: an empty
		// response makes KooKoo call again without an event, which
		// resumes listening.
		return ivr.VoiceAnswer{Body: Response{SID: call.SID}.String()}
	}
	resp := Response{SID: call.SID, Verbs: make([]Verb, 0, len(actions))}
	for _, act := range actions {
		switch act := act.(type) {
		case ivr.Say:
			if t := limitText(strings.TrimSpace(act.Text)); t != "" {
				resp.Verbs = append(resp.Verbs, PlayText{Text: t})
			}
		case ivr.Listen:
			resp.Verbs = append(resp.Verbs, a.record(act))
		case ivr.Menu:
			resp.Verbs = append(resp.Verbs, CollectDTMF{
				MaxDigits: act.MaxDigits,
				TermChar:  act.Terminator,
				Timeout:   act.Timeout,
				Prompts:   []Verb{PlayText{Text: limitText(act.Prompt)}},
			})
		case ivr.Transfer:
			resp.Verbs = append(resp.Verbs, Dial{Number: act.Number, CallerID: act.CallerID, Timeout: DefaultDialTimeout})
		case ivr.HangUp:
			resp.Verbs = append(resp.Verbs, Hangup{})
		}
	}
	return ivr.VoiceAnswer{Body: resp.String()}
}

func (a *App) record(l ivr.Listen) Record {
	return Record{Name: recordName(l.Name), Format: a.format, Silence: l.Silence, MaxDuration: l.MaxDuration}
}

// maxRecordName is the longest <record> file name KooKoo gets.
const maxRecordName = 128

// recordName keeps a recording name within maxRecordName: a name built from
// a very long sid is replaced by a digest of itself (still unique per turn).
func recordName(name string) string {
	if len(name) <= maxRecordName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "koel-" + hex.EncodeToString(sum[:16])
}

// logFailure logs an event the service could not answer.
func logFailure(ctx context.Context, log *slog.Logger, err error) {
	log.LogAttrs(ctx, slog.LevelError, "kookoo event failed", slog.String("error", err.Error()))
}
