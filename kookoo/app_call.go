package kookoo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr"
)

// handle runs one valid event of a call: it creates or loads the call
// (serialized per sid), does the event's I/O, steps the state machine,
// stores the call and returns the answer.
func (a *App) handle(ctx context.Context, req Request, conn ivr.Connection, s ivr.ConnectionSettings, log *slog.Logger) (body, error) {
	// Finish what was started even if KooKoo gives up on the request: the
	// stored call must match the answer a retry will get.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.turnTimeout)
	defer cancel()
	key := eventKey(req)
	if req.Event == EventNewCall {
		b, done, err := a.newCall(ctx, req, conn, s, key, log)
		if done || err != nil {
			return b, err
		}
		// The sid exists already: a repeated NewCall, handled below.
	}
	return a.locked(ctx, req.SID, func(ctx context.Context) (body, error) {
		return a.event(ctx, req, conn, s, key, log)
	})
}

// handleInvalid runs a rejected request of a known sid: it ends the call on
// Hangup or Disconnect and counts a failure otherwise.
func (a *App) handleInvalid(ctx context.Context, head Request, rawQuery string, conn ivr.Connection, s ivr.ConnectionSettings, log *slog.Logger) (body, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.turnTimeout)
	defer cancel()
	return a.locked(ctx, head.SID, func(ctx context.Context) (body, error) {
		call, err := a.store.GetCall(ctx, head.SID)
		if errors.Is(err, ivr.ErrNotFound) {
			if head.Event.Ended() {
				return body{empty: true}, nil
			}
			return body{xml: Response{SID: head.SID, Verbs: []Verb{Hangup{}}}.String()}, nil
		}
		if err != nil {
			return body{}, fmt.Errorf("get call: %w", err)
		}
		key := invalidKey(head, rawQuery)
		if call.LastEventKey == key {
			a.m.duplicates.Inc()
			return storedBody(call), nil
		}
		var ev ivr.CallEvent = ivr.Recorded{FailReason: ivr.FailInvalid}
		switch head.Event {
		case EventHangup:
			ev = ivr.CallerHungUp{}
		case EventDisconnect:
			ev = ivr.Disconnected{}
		}
		return a.step(ctx, call, false, ev, s, key, log)
	})
}

// newCall creates the call of a NewCall without taking the lock: the
// insert itself is atomic per sid. done is false when the sid exists.
func (a *App) newCall(ctx context.Context, req Request, conn ivr.Connection, s ivr.ConnectionSettings, key string, log *slog.Logger) (body, bool, error) {
	call := a.freshCall(req, conn)
	next, actions := call.Step(ivr.CallStarted{}, s)
	b := a.render(next, actions)
	next.LastEventKey, next.LastResponse = key, b.xml
	if err := a.store.CreateCall(ctx, &next); err != nil {
		if errors.Is(err, ivr.ErrConflict) {
			return body{}, false, nil
		}
		return body{}, true, fmt.Errorf("create call: %w", err)
	}
	a.callStarted()
	log.LogAttrs(ctx, slog.LevelInfo, "call started", slog.String("caller", MaskNumber(req.CID)))
	return b, true, nil
}

func (a *App) freshCall(req Request, conn ivr.Connection) ivr.Call {
	now := a.now()
	return ivr.Call{
		SID:          req.SID,
		ConnectionID: conn.ID,
		BusinessID:   conn.BusinessID,
		Caller:       req.CID,
		CalledNumber: req.CalledNumber,
		StartedAt:    now,
	}
}

// locked runs fn holding the call lock of sid. It waits for the lock up to
// the app's lock wait (or ctx's deadline) and releases it afterwards.
func (a *App) locked(ctx context.Context, sid string, fn func(ctx context.Context) (body, error)) (body, error) {
	if err := a.acquire(ctx, sid); err != nil {
		return body{}, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := a.store.ReleaseCallLock(rctx, sid, a.node); err != nil {
			a.log.LogAttrs(rctx, slog.LevelWarn, "release call lock failed", slog.String("sid", sid), slog.String("error", err.Error()))
		}
	}()
	return fn(ctx)
}

// acquire takes the call lock, retrying with a short, growing pause while
// another request holds it.
func (a *App) acquire(ctx context.Context, sid string) error {
	ctx, cancel := context.WithTimeout(ctx, a.lockWait)
	defer cancel()
	pause := 2 * time.Millisecond
	for {
		err := a.store.AcquireCallLock(ctx, sid, a.node, a.lockTTL)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ivr.ErrLocked) {
			return fmt.Errorf("acquire call lock: %w", err)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("acquire call lock: %w: %w", err, ctx.Err())
		case <-t.C:
		}
		pause = min(pause*2, 50*time.Millisecond)
	}
}

// event handles one event under the call lock.
func (a *App) event(ctx context.Context, req Request, conn ivr.Connection, s ivr.ConnectionSettings, key string, log *slog.Logger) (body, error) {
	call, err := a.store.GetCall(ctx, req.SID)
	create := false
	switch {
	case errors.Is(err, ivr.ErrNotFound):
		if req.Event.Ended() {
			// The end of a call koel never saw: nothing to close.
			return body{empty: true}, nil
		}
		// A call whose NewCall never reached this database: take it over.
		call, create = a.freshCall(req, conn), true
		log.LogAttrs(ctx, slog.LevelWarn, "event for an unknown call; taking it over", slog.String("caller", MaskNumber(req.CID)))
	case err != nil:
		return body{}, fmt.Errorf("get call: %w", err)
	}
	if !create && call.LastEventKey == key {
		a.m.duplicates.Inc()
		return storedBody(call), nil
	}
	if !call.Live() {
		if req.Event.Ended() {
			return body{empty: true}, nil
		}
		return body{xml: Response{SID: call.SID, Verbs: []Verb{Hangup{}}}.String()}, nil
	}
	if call.Caller == "" && req.CID != "" {
		call.Caller = req.CID
	}
	log = log.With(slog.String("caller", MaskNumber(call.Caller)))

	var ev ivr.CallEvent
	var turn *ivr.Turn
	switch req.Event {
	case EventNewCall:
		ev = ivr.CallStarted{}
	case EventRecord:
		ev = ivr.Recorded{}
		switch call.State {
		case ivr.CallStateUnknown, ivr.CallStateListening, ivr.CallStateMenu:
			var r ivr.Recorded
			r, turn = a.recorded(ctx, &call, conn, req, log)
			ev = r
		}
	case EventGotDTMF, EventNone:
		ev = ivr.DTMF{Digits: req.Digits()}
	case EventDial:
		ev = ivr.DialEnded{Answered: strings.EqualFold(req.Status, "answered")}
	case EventHangup:
		if req.HasRecording() && req.Process != "dial" {
			turn = a.lastWords(ctx, &call, conn, req, log)
		}
		ev = ivr.CallerHungUp{DialAnswered: strings.EqualFold(req.Process, "dial") && strings.EqualFold(req.Status, "answered")}
	case EventDisconnect:
		ev = ivr.Disconnected{}
	}
	b, err := a.step(ctx, call, create, ev, s, key, log)
	if err != nil {
		return body{}, err
	}
	if turn != nil {
		if err := a.store.AddTurn(ctx, turn); err != nil {
			// The answer and the call are stored; only the turn's record
			// is lost.
			log.LogAttrs(ctx, slog.LevelError, "store turn failed", slog.Int("turn", turn.Seq), slog.String("error", err.Error()))
		}
	}
	return b, nil
}

// step applies ev, renders the answer and stores the call with it.
func (a *App) step(ctx context.Context, call ivr.Call, create bool, ev ivr.CallEvent, s ivr.ConnectionSettings, key string, log *slog.Logger) (body, error) {
	wasLive := call.Live()
	prevState := call.State
	next, actions := call.Step(ev, s)
	b := a.render(next, actions)
	next.LastEventKey, next.LastResponse = key, b.xml
	if b.empty {
		next.LastResponse = ""
	}
	if wasLive && !next.Live() {
		next.EndedAt = a.now()
	}
	var err error
	if create {
		err = a.store.CreateCall(ctx, &next)
	} else {
		err = a.store.UpdateCall(ctx, &next)
	}
	if err != nil {
		return body{}, fmt.Errorf("save call: %w", err)
	}
	if create {
		a.callStarted()
	}
	a.account(ctx, prevState, next, ev, actions, log)
	if wasLive && !next.Live() {
		a.callEnded(next.Outcome)
		if next.ConversationID != 0 {
			if err := a.store.CloseConversation(ctx, next.ConversationID); err != nil {
				log.LogAttrs(ctx, slog.LevelError, "close conversation failed", slog.Int64("conversation_id", next.ConversationID), slog.String("error", err.Error()))
			}
		}
		log.LogAttrs(ctx, slog.LevelInfo, "call ended", slog.String("outcome", next.Outcome), slog.Int("turns", next.Turn),
			slog.Int64("conversation_id", next.ConversationID))
	}
	return b, nil
}

// account records the metrics of a step.
func (a *App) account(ctx context.Context, prev ivr.CallState, next ivr.Call, ev ivr.CallEvent, actions []ivr.CallAction, log *slog.Logger) {
	switch ev := ev.(type) {
	case ivr.Recorded:
		switch {
		case ev.FailReason != "":
			a.m.turns.WithLabelValues(turnFailed).Inc()
			a.m.breaks.WithLabelValues(ev.FailReason).Inc()
			log.LogAttrs(ctx, slog.LevelWarn, "turn failed; break message", slog.String("reason", ev.FailReason), slog.Int("failures", next.Failures))
		case ev.NoSpeech:
			a.m.turns.WithLabelValues(turnNoSpeech).Inc()
		case prev != ivr.CallStateHangingUp && prev != ivr.CallStateEnded && prev != ivr.CallStateTransferring:
			a.m.turns.WithLabelValues(turnAnswered).Inc()
		}
	case ivr.DialEnded:
		if prev == ivr.CallStateTransferring {
			if ev.Answered {
				a.m.transfers.WithLabelValues(transferAnswered).Inc()
			} else {
				a.m.transfers.WithLabelValues(transferNotAnswered).Inc()
			}
		}
	}
	for _, act := range actions {
		if _, ok := act.(ivr.Transfer); ok {
			a.m.transfers.WithLabelValues(transferStarted).Inc()
			log.LogAttrs(ctx, slog.LevelInfo, "transferring to an agent")
		}
	}
}

// storedBody answers a repeated delivery from the stored response.
func storedBody(call ivr.Call) body {
	if call.LastResponse == "" {
		return body{empty: true}
	}
	return body{xml: call.LastResponse}
}

// render turns actions into KooKoo XML. A call that has ended is answered
// with an empty body, as KooKoo expects after Hangup and Disconnect; an
// event of an ended call that asks for something is hung up.
func (a *App) render(call ivr.Call, actions []ivr.CallAction) body {
	if len(actions) == 0 {
		if !call.Live() {
			return body{empty: true}
		}
		// An event that made no sense in the call's state: an empty
		// response makes KooKoo call again without an event, which
		// resumes listening.
		return body{xml: Response{SID: call.SID}.String()}
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
				Timeout:   act.Timeout,
				Prompts:   []Verb{PlayText{Text: limitText(act.Prompt)}},
			})
		case ivr.Transfer:
			resp.Verbs = append(resp.Verbs, Dial{Number: act.Number, CallerID: act.CallerID, Timeout: DefaultDialTimeout})
		case ivr.HangUp:
			resp.Verbs = append(resp.Verbs, Hangup{})
		}
	}
	return body{xml: resp.String()}
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

// callerKey is the user id of the caller: the number, or the sid when
// KooKoo did not send one.
func callerKey(call ivr.Call) string {
	if call.Caller != "" {
		return call.Caller
	}
	return "sid:" + call.SID
}

// messageID is the external id of the message a turn stores, so a repeated
// turn is not stored twice.
func messageID(call ivr.Call) string {
	return "kookoo:" + call.SID + ":" + strconv.Itoa(call.Turn)
}

// transcript is the result of fetching, decoding and transcribing one
// recording.
type transcript struct {
	result               stt.Result
	fail                 string // an ivr.Fail* reason, "" on success
	noSpeech             bool
	err                  error
	speech               time.Duration
	fetch, decode, recog time.Duration
}

// transcribe fetches, decodes and transcribes the recording at rawURL.
func (a *App) transcribe(ctx context.Context, businessID int64, rawURL string) transcript {
	var t transcript
	if a.pre != nil {
		if res, ok := a.pre.LookupTranscript(rawURL); ok {
			t.result = res
			t.noSpeech = res.Text == "" || res.Confidence < a.minConfidence
			return t
		}
	}
	start := a.now()
	rec, err := a.fetcher.Fetch(ctx, rawURL)
	t.fetch = a.now().Sub(start)
	a.m.fetch.Observe(seconds(t.fetch))
	if err != nil {
		t.fail, t.err = ivr.FailFetch, err
		return t
	}
	start = a.now()
	pcm, err := audio.Decode(bytes.NewReader(rec.Data), a.fetcher.MaxBytes())
	if err == nil && pcm.Rate != audio.SampleRate {
		pcm, err = audio.Resample(pcm, audio.SampleRate)
	}
	t.decode = a.now().Sub(start)
	a.m.decode.Observe(seconds(t.decode))
	if errors.Is(err, audio.ErrEmpty) || (err == nil && len(pcm.Samples) == 0) {
		t.noSpeech = true
		return t
	}
	if err != nil {
		t.fail, t.err = ivr.FailDecode, err
		return t
	}
	t.speech = pcm.Duration()
	if len(pcm.Samples) > stt.MaxUtteranceSeconds*audio.SampleRate {
		pcm.Samples = pcm.Samples[:stt.MaxUtteranceSeconds*audio.SampleRate]
	}
	vocab, err := a.vocabulary(ctx, businessID)
	if err != nil {
		t.fail, t.err = ivr.FailSTT, err
		return t
	}
	start = a.now()
	res, err := stt.Transcribe(ctx, a.stt, vocab, pcm.Samples)
	t.recog = a.now().Sub(start)
	a.m.stt.Observe(seconds(t.recog))
	switch {
	case errors.Is(err, stt.ErrEmptyAudio):
		t.noSpeech = true
	case err != nil:
		t.fail, t.err = ivr.FailSTT, err
	default:
		t.result = res
		t.noSpeech = strings.TrimSpace(res.Text) == "" || res.Confidence < a.minConfidence
	}
	return t
}

// vocabulary returns the phrases recognition is restricted to.
func (a *App) vocabulary(ctx context.Context, businessID int64) (stt.Vocabulary, error) {
	if a.vocab == nil {
		return stt.Vocabulary{Key: "biz" + strconv.FormatInt(businessID, 10) + "-none"}, nil
	}
	phrases, version, err := a.vocab.Phrases(ctx, businessID)
	if err != nil {
		return stt.Vocabulary{}, fmt.Errorf("vocabulary: %w", err)
	}
	return stt.Vocabulary{Key: fmt.Sprintf("biz%d-v%d", businessID, version), Phrases: phrases}, nil
}

// recorded handles a Record event of a live call: transcribe, ask the
// engine, and describe the outcome for the state machine and the turn
// record. It updates call's user and conversation ids.
func (a *App) recorded(ctx context.Context, call *ivr.Call, conn ivr.Connection, req Request, log *slog.Logger) (ivr.Recorded, *ivr.Turn) {
	start := a.now()
	turn := &ivr.Turn{CallSID: call.SID, Seq: call.Turn, RecordingURL: req.Data, RecordStatus: truncate(req.Status)}
	defer func() {
		turn.TotalMS = a.now().Sub(start).Milliseconds()
		a.m.turnTotal.Observe(seconds(a.now().Sub(start)))
	}()
	if req.Data == "" {
		turn.Error = "no recording url"
		return ivr.Recorded{NoSpeech: true}, turn
	}
	tr := a.transcribe(ctx, call.BusinessID, req.Data)
	fillTurn(turn, tr)
	if tr.fail != "" {
		log.LogAttrs(ctx, slog.LevelWarn, "recording not transcribed", slog.String("reason", tr.fail), slog.String("error", tr.err.Error()))
		return ivr.Recorded{FailReason: tr.fail}, turn
	}
	if tr.noSpeech {
		return ivr.Recorded{NoSpeech: true}, turn
	}

	botStart := a.now()
	reply, err := a.engine.Handle(ctx, ivr.Inbound{
		BusinessID:        call.BusinessID,
		Connection:        conn,
		Channel:           ivr.ChannelKooKoo,
		UserExternalID:    callerKey(*call),
		Text:              tr.result.Text,
		ExternalMessageID: messageID(*call),
		Voice:             true,
	})
	botTime := a.now().Sub(botStart)
	turn.BotMS = botTime.Milliseconds()
	a.m.bot.Observe(seconds(botTime))
	if err != nil {
		turn.Error = "engine: " + err.Error()
		log.LogAttrs(ctx, slog.LevelError, "engine failed", slog.String("error", err.Error()))
		return ivr.Recorded{FailReason: ivr.FailInternal}, turn
	}
	if reply.Duplicate {
		// This turn was answered before (a retry after a crash): speak
		// the stored reply again.
		texts, err := a.storedReply(ctx, reply.Inbound)
		if err != nil {
			turn.Error = err.Error()
			return ivr.Recorded{FailReason: ivr.FailInternal}, turn
		}
		turn.MessageID = reply.Inbound.ID
		call.UserID, call.ConversationID = reply.Inbound.UserID, reply.Inbound.ConversationID
		turn.Reply = strings.Join(texts, "\n")
		return ivr.Recorded{Reply: texts}, turn
	}
	call.UserID, call.ConversationID = reply.User.ID, reply.Conversation.ID
	turn.MessageID = reply.Inbound.ID
	if reply.Failed {
		reason := ivr.FailBot
		if reply.FailReason == "timeout" {
			reason = ivr.FailBotTimeout
		}
		turn.Error = "bot " + reply.FailReason
		log.LogAttrs(ctx, slog.LevelWarn, "bot failed; break message", slog.String("reason", reply.FailReason))
		return ivr.Recorded{FailReason: reason}, turn
	}
	texts := make([]string, 0, len(reply.Messages))
	for _, m := range reply.Messages {
		texts = append(texts, m.Text)
	}
	turn.Reply = strings.Join(texts, "\n")
	return ivr.Recorded{Reply: texts, Handoff: reply.Handoff}, turn
}

// storedReply returns the bot messages stored after inbound.
func (a *App) storedReply(ctx context.Context, inbound ivr.Message) ([]string, error) {
	msgs, err := a.store.MessagesAfter(ctx, inbound.ConversationID, inbound.ID)
	if err != nil {
		return nil, fmt.Errorf("load stored reply: %w", err)
	}
	var texts []string
	for _, m := range msgs {
		if m.Sender != ivr.SenderBot {
			break
		}
		texts = append(texts, m.Text)
	}
	return texts, nil
}

// lastWords handles a recording delivered with the hang-up: it is
// transcribed and stored as the caller's message, without asking the bot.
func (a *App) lastWords(ctx context.Context, call *ivr.Call, conn ivr.Connection, req Request, log *slog.Logger) *ivr.Turn {
	start := a.now()
	turn := &ivr.Turn{CallSID: call.SID, Seq: call.Turn, RecordingURL: req.Data, RecordStatus: truncate(req.Status), EndReason: "hangup"}
	tr := a.transcribe(ctx, call.BusinessID, req.Data)
	fillTurn(turn, tr)
	a.m.turns.WithLabelValues(turnHangup).Inc()
	defer func() { turn.TotalMS = a.now().Sub(start).Milliseconds() }()
	if tr.fail != "" || tr.noSpeech {
		return turn
	}
	if call.ConversationID == 0 {
		user, err := a.store.EnsureUser(ctx, call.BusinessID, ivr.ChannelKooKoo, callerKey(*call), true)
		if err != nil {
			turn.Error = "store user: " + err.Error()
			return turn
		}
		conv, err := a.store.OpenConversation(ctx, call.BusinessID, user.ID)
		if err != nil {
			turn.Error = "open conversation: " + err.Error()
			return turn
		}
		call.UserID, call.ConversationID = user.ID, conv.ID
	}
	msg := &ivr.Message{
		BusinessID:     call.BusinessID,
		ConversationID: call.ConversationID,
		UserID:         call.UserID,
		Sender:         ivr.SenderUser,
		Text:           tr.result.Text,
		Channel:        ivr.ChannelKooKoo,
		ExternalID:     messageID(*call),
	}
	if err := a.store.AppendMessages(ctx, []*ivr.Message{msg}, nil); err != nil && !errors.Is(err, ivr.ErrConflict) {
		turn.Error = "store message: " + err.Error()
		log.LogAttrs(ctx, slog.LevelError, "store last words failed", slog.String("error", err.Error()))
		return turn
	}
	turn.MessageID = msg.ID
	return turn
}

func fillTurn(turn *ivr.Turn, tr transcript) {
	turn.Transcript = tr.result.Text
	turn.Confidence = tr.result.Confidence
	turn.SpeechMS = tr.speech.Milliseconds()
	turn.FetchMS = tr.fetch.Milliseconds()
	turn.DecodeMS = tr.decode.Milliseconds()
	turn.STTMS = tr.recog.Milliseconds()
	switch {
	case tr.fail != "":
		turn.Error = tr.fail + ": " + tr.err.Error()
	case tr.noSpeech:
		turn.EndReason = orString(turn.EndReason, "no_speech")
	}
}

func orString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
