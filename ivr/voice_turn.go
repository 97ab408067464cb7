package ivr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/koelvoice/koel/audio/stt"
)

// The work of one caller utterance: hear it (transcript, or fetch, decode
// and transcribe), understand it (the engine), describe the outcome.

// heard is what one utterance gave.
type heard struct {
	result                stt.Result
	fail                  string // a Fail* reason, "" on success
	noSpeech              bool
	err                   error
	speech                time.Duration
	fetch, decode, recog  time.Duration
	transcribed, streamed bool
}

// pcmChunk is how many samples are read and written to the recogniser at a
// time: half a second.
const pcmChunk = 4000

// maxUtteranceSamples caps the audio transcribed per turn (8 kHz).
const maxUtteranceSamples = stt.MaxUtteranceSeconds * 8000

// hear turns an utterance into a transcript.
func (v *VoiceService) hear(ctx context.Context, businessID int64, u *Utterance) heard {
	var h heard
	if u.Transcript != nil {
		h.result, h.streamed = *u.Transcript, true
		h.noSpeech = strings.TrimSpace(h.result.Text) == "" || h.result.Confidence < v.minConfidence
		return h
	}
	if u.Audio == nil {
		h.fail, h.err = FailFetch, errors.New("no audio source for the recording")
		return h
	}
	start := v.now()
	rd, err := u.Audio.OpenAudio(ctx, u.RecordingURL)
	h.fetch = v.now().Sub(start)
	v.m.fetch.Observe(h.fetch.Seconds())
	if err != nil {
		switch {
		case errors.Is(err, ErrRecordingEmpty):
			h.noSpeech = true
		case errors.Is(err, ErrRecordingFormat):
			h.fail, h.err = FailDecode, err
		default:
			h.fail, h.err = FailFetch, err
		}
		return h
	}
	defer rd.Close()
	h.transcribed = true
	v.transcribe(ctx, businessID, rd, &h)
	v.m.decode.Observe(h.decode.Seconds())
	if h.recog > 0 {
		v.m.stt.Observe(h.recog.Seconds())
	}
	return h
}

// transcribe streams rd's PCM into a recogniser stream as it is decoded.
// The stream is started only once there is audio; audio past the
// recogniser's cap is read (so the recording's length is known) but not
// transcribed.
func (v *VoiceService) transcribe(ctx context.Context, businessID int64, rd PCMReader, h *heard) {
	buf := make([]int16, pcmChunk)
	var s stt.Stream
	var samples int
	defer func() {
		if s != nil {
			_, _ = s.Close(context.WithoutCancel(ctx))
		}
	}()
	for {
		t0 := v.now()
		n, err := rd.ReadPCM(buf)
		h.decode += v.now().Sub(t0)
		if n > 0 && samples < maxUtteranceSamples {
			chunk := buf[:min(n, maxUtteranceSamples-samples)]
			t1 := v.now()
			if s == nil {
				vocab, verr := v.vocabulary(ctx, businessID)
				if verr != nil {
					h.fail, h.err = FailSTT, verr
					return
				}
				if s, verr = v.stt.Start(ctx, vocab); verr != nil {
					s = nil
					h.fail, h.err = FailSTT, verr
					return
				}
			}
			if werr := s.Write(chunk); werr != nil {
				h.recog += v.now().Sub(t1)
				h.fail, h.err = FailSTT, werr
				return
			}
			h.recog += v.now().Sub(t1)
		}
		samples += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			switch {
			case errors.Is(err, ErrRecordingEmpty):
				h.noSpeech = true
			case errors.Is(err, ErrRecordingFetch):
				h.fail, h.err = FailFetch, err
			default:
				h.fail, h.err = FailDecode, err
			}
			return
		}
		if ctx.Err() != nil {
			h.fail, h.err = FailFetch, ctx.Err()
			return
		}
	}
	h.speech = time.Duration(samples) * time.Second / 8000
	if s == nil {
		h.noSpeech = true
		return
	}
	t1 := v.now()
	res, err := s.Close(ctx)
	s = nil
	h.recog += v.now().Sub(t1)
	switch {
	case errors.Is(err, stt.ErrEmptyAudio):
		h.noSpeech = true
	case err != nil:
		h.fail, h.err = FailSTT, err
	default:
		h.result = res
		h.noSpeech = strings.TrimSpace(res.Text) == "" || res.Confidence < v.minConfidence
	}
}

// vocabulary returns the phrases recognition is restricted to.
func (v *VoiceService) vocabulary(ctx context.Context, businessID int64) (stt.Vocabulary, error) {
	if v.vocab == nil {
		return stt.Vocabulary{Key: "biz" + strconv.FormatInt(businessID, 10) + "-none"}, nil
	}
	phrases, version, err := v.vocab.Phrases(ctx, businessID)
	if err != nil {
		return stt.Vocabulary{}, fmt.Errorf("vocabulary: %w", err)
	}
	return stt.Vocabulary{Key: fmt.Sprintf("biz%d-v%d", businessID, version), Phrases: phrases}, nil
}

// recorded handles the utterance of a Recorded event of a live call: hear
// it, ask the engine, and describe the outcome for the state machine and
// the turn record. It updates call's user and conversation ids.
func (v *VoiceService) recorded(ctx context.Context, call *Call, ev VoiceEvent, log *slog.Logger) (Recorded, *Turn) {
	start := v.now()
	u := ev.Speech
	turn := &Turn{CallSID: call.SID, Seq: call.Turn, RecordingURL: u.RecordingURL, RecordStatus: truncateKey(u.RecordStatus)}
	defer func() {
		turn.TotalMS = v.now().Sub(start).Milliseconds()
		v.m.turnTotal.Observe(v.now().Sub(start).Seconds())
	}()
	if u.Transcript == nil && u.RecordingURL == "" {
		turn.Error = "no recording url"
		return Recorded{NoSpeech: true}, turn
	}
	h := v.hear(ctx, call.BusinessID, u)
	fillTurn(turn, h)
	if h.fail != "" {
		log.LogAttrs(ctx, slog.LevelWarn, "recording not transcribed", slog.String("reason", h.fail), slog.String("error", h.err.Error()))
		return Recorded{FailReason: h.fail}, turn
	}
	if h.noSpeech {
		return Recorded{NoSpeech: true}, turn
	}

	botStart := v.now()
	reply, err := v.engine.Handle(ctx, Inbound{
		BusinessID:        call.BusinessID,
		Connection:        ev.Connection,
		Channel:           v.channel,
		UserExternalID:    callerKey(*call),
		Text:              h.result.Text,
		ExternalMessageID: v.messageID(*call),
		Voice:             true,
	})
	botTime := v.now().Sub(botStart)
	turn.BotMS = botTime.Milliseconds()
	v.m.bot.Observe(botTime.Seconds())
	if err != nil {
		turn.Error = "engine: " + err.Error()
		log.LogAttrs(ctx, slog.LevelError, "engine failed", slog.String("error", err.Error()))
		return Recorded{FailReason: FailInternal}, turn
	}
	if reply.Duplicate {
		// This turn was answered before (a retry after a crash): speak
		// the stored reply again.
		texts, err := v.storedReply(ctx, reply.Inbound)
		if err != nil {
			turn.Error = err.Error()
			return Recorded{FailReason: FailInternal}, turn
		}
		turn.MessageID = reply.Inbound.ID
		call.UserID, call.ConversationID = reply.Inbound.UserID, reply.Inbound.ConversationID
		turn.Reply = strings.Join(texts, "\n")
		return Recorded{Reply: texts}, turn
	}
	call.UserID, call.ConversationID = reply.User.ID, reply.Conversation.ID
	turn.MessageID = reply.Inbound.ID
	if reply.Failed {
		reason := FailBot
		if reply.FailReason == "timeout" {
			reason = FailBotTimeout
		}
		turn.Error = "bot " + reply.FailReason
		log.LogAttrs(ctx, slog.LevelWarn, "bot failed; break message", slog.String("reason", reply.FailReason))
		return Recorded{FailReason: reason}, turn
	}
	texts := make([]string, 0, len(reply.Messages))
	for _, m := range reply.Messages {
		texts = append(texts, m.Text)
	}
	turn.Reply = strings.Join(texts, "\n")
	return Recorded{Reply: texts, Handoff: reply.Handoff}, turn
}

// storedReply returns the bot messages stored after inbound.
func (v *VoiceService) storedReply(ctx context.Context, inbound Message) ([]string, error) {
	msgs, err := v.store.MessagesAfter(ctx, inbound.ConversationID, inbound.ID)
	if err != nil {
		return nil, fmt.Errorf("load stored reply: %w", err)
	}
	var texts []string
	for _, m := range msgs {
		if m.Sender != SenderBot {
			break
		}
		texts = append(texts, m.Text)
	}
	return texts, nil
}

// lastWords handles a recording delivered with the hang-up: it is heard
// and stored through the engine as the caller's message, without asking
// the bot.
func (v *VoiceService) lastWords(ctx context.Context, call *Call, ev VoiceEvent, log *slog.Logger) *Turn {
	start := v.now()
	u := ev.Speech
	turn := &Turn{CallSID: call.SID, Seq: call.Turn, RecordingURL: u.RecordingURL, RecordStatus: truncateKey(u.RecordStatus), EndReason: "hangup"}
	defer func() { turn.TotalMS = v.now().Sub(start).Milliseconds() }()
	h := v.hear(ctx, call.BusinessID, u)
	fillTurn(turn, h)
	v.m.turns.WithLabelValues(turnHangup).Inc()
	if h.fail != "" || h.noSpeech {
		return turn
	}
	reply, err := v.engine.Handle(ctx, Inbound{
		BusinessID:        call.BusinessID,
		Connection:        ev.Connection,
		Channel:           v.channel,
		UserExternalID:    callerKey(*call),
		Text:              h.result.Text,
		ExternalMessageID: v.messageID(*call),
		Voice:             true,
		StoreOnly:         true,
	})
	if err != nil {
		turn.Error = "engine: " + err.Error()
		log.LogAttrs(ctx, slog.LevelError, "store last words failed", slog.String("error", err.Error()))
		return turn
	}
	turn.MessageID = reply.Inbound.ID
	if call.ConversationID == 0 {
		call.UserID, call.ConversationID = reply.Inbound.UserID, reply.Inbound.ConversationID
	}
	return turn
}

func fillTurn(turn *Turn, h heard) {
	turn.Transcript = h.result.Text
	turn.Confidence = h.result.Confidence
	turn.SpeechMS = h.speech.Milliseconds()
	turn.FetchMS = h.fetch.Milliseconds()
	turn.DecodeMS = h.decode.Milliseconds()
	turn.STTMS = h.recog.Milliseconds()
	switch {
	case h.fail != "":
		turn.Error = h.fail + ": " + h.err.Error()
	case h.noSpeech:
		if turn.EndReason == "" {
			turn.EndReason = "no_speech"
		}
	}
}

// truncateKey cuts s to 64 bytes at a rune boundary for a stored key.
func truncateKey(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && (s[i]&0xC0) == 0x80 {
		i--
	}
	return s[:i] + "…"
}
