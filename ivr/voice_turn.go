package ivr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr/bot"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The work of one caller utterance: hear it (transcript, or fetch, decode
// and transcribe), understand it (the engine), describe the outcome.

// heard is what one utterance gave.
type heard struct {
	result                stt.Result
	fail                  string // a Fail* reason, "" on success
	noSpeech              bool   // nothing heard
	unclear               bool   // speech heard, recognised below the minimum confidence (below half of it: not understood)
	err                   error
	speech                time.Duration
	fetch, decode, recog  time.Duration
	transcribed, streamed bool
	// pcm is the utterance's audio, kept when asked for (the yes/no pass
	// decodes it again).
	pcm []int16
}

// pcmChunk is how many samples are read and written to the recogniser at a
// time: half a second.
const pcmChunk = 4000

// maxUtteranceSamples caps the audio transcribed per turn (8 kHz).
const maxUtteranceSamples = stt.MaxUtteranceSeconds * 8000

// hear turns an utterance into a transcript. keep keeps the audio it
// transcribed in the result.
func (v *VoiceService) hear(ctx context.Context, businessID int64, u *Utterance, keep bool) heard {
	var h heard
	if u.Transcript != nil {
		h.result, h.streamed = *u.Transcript, true
		h.speech, h.recog = u.SpeechDuration, u.STTDuration
		v.judge(&h)
		return h
	}
	if u.Audio == nil {
		h.fail, h.err = FailFetch, errors.New("no audio source for the recording")
		return h
	}
	start := v.now()
	fctx, fspan := v.tracer.Start(ctx, SpanFetch)
	rd, err := u.Audio.OpenAudio(fctx, u.RecordingURL)
	if err != nil {
		fspan.SetStatus(codes.Error, "recording not fetched")
	}
	fspan.End()
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
	tstart := time.Now()
	v.transcribe(ctx, businessID, rd, &h, keep)
	// Decoding and recognition interleave chunk by chunk: each span starts
	// with the transcription and lasts the time spent in its stage.
	for _, st := range []struct {
		name string
		d    time.Duration
	}{{SpanDecode, h.decode}, {SpanSTT, h.recog}} {
		_, sp := v.tracer.Start(ctx, st.name, trace.WithTimestamp(tstart))
		if (st.name == SpanDecode && (h.fail == FailDecode || h.fail == FailFetch)) || (st.name == SpanSTT && h.fail == FailSTT) {
			sp.SetStatus(codes.Error, h.fail)
		}
		sp.End(trace.WithTimestamp(tstart.Add(st.d)))
	}
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
func (v *VoiceService) transcribe(ctx context.Context, businessID int64, rd PCMReader, h *heard, keep bool) {
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
			if keep {
				h.pcm = append(h.pcm, chunk...)
			}
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
		v.judge(h)
	}
}

// yesNoPass decodes the reply to a confirmation again with the closed
// yes/no vocabulary, when the open pass heard neither a yes nor a no, or
// heard one under the minimum confidence (flite rms's yes comes back as
// "no" at 0.28, and as "yes" at 1.0 in the closed vocabulary): with
// the whole FAQ's words to choose from, a lone "yes" comes back as "you"
// or nothing. A yes or a no heard at [YesNoMinConfidence] replaces the
// open pass's result; anything else (a new question, noise) leaves it as it
// was. The audio is what this turn decoded (record mode) or what the
// transport that transcribed the reply holds ([Utterance].Held).
func (v *VoiceService) yesNoPass(ctx context.Context, u *Utterance, h *heard) {
	v.closedPass(ctx, u, h, YesNoVocabulary(), YesNoMinConfidence, func(text string) bool { return YesNo(text) != "" })
}

// digitsPass decodes speech said while a value is collected
// ([CallStateCollecting]) again with the closed digits vocabulary: with the
// FAQ's words to choose from, "one zero four two" comes back as "and zero
// for two". The pass's reading wins when it holds more digits than the open
// pass's.
func (v *VoiceService) digitsPass(ctx context.Context, u *Utterance, h *heard) {
	open := CountDigits(h.result.Text)
	v.closedPass(ctx, u, h, DigitsVocabulary(), v.minConfidence, func(text string) bool { return CountDigits(text) > open })
}

// closedPass decodes h's audio again with the closed vocabulary vocab; a
// reading that accept takes, at confidence minConf or more, replaces the
// open pass's result. Anything else leaves h as it was.
func (v *VoiceService) closedPass(ctx context.Context, u *Utterance, h *heard, vocab stt.Vocabulary, minConf float64, accept func(string) bool) {
	if v.stt == nil {
		return
	}
	// The audio this turn decoded itself (record mode), or the audio a
	// transport that transcribed the utterance holds in process (the
	// softphone's fast path, stream mode). A transport's recording is
	// never fetched again: that would undo the fast path.
	pcm := h.pcm
	if len(pcm) == 0 && u.Transcript != nil && u.Held != nil {
		held, ok := u.Held.HeldPCM()
		if !ok || len(held) == 0 {
			return
		}
		pcm = held[:min(len(held), maxUtteranceSamples)]
		// A transcript came without a recording slot; the pass is a
		// decode like any other and waits for one. When none comes free
		// the transport's transcript stands.
		release, ok := v.acquireWork(ctx)
		if !ok {
			v.log.LogAttrs(ctx, slog.LevelDebug, "closed vocabulary pass skipped: every recording slot busy", slog.String("vocabulary", vocab.Key))
			return
		}
		defer release()
	}
	if len(pcm) == 0 {
		return
	}
	t0 := v.now()
	res, err := stt.Transcribe(ctx, v.stt, vocab, pcm)
	h.recog += v.now().Sub(t0)
	if err != nil {
		v.log.LogAttrs(ctx, slog.LevelDebug, "closed vocabulary pass failed", slog.String("vocabulary", vocab.Key), slog.String("error", err.Error()))
		return
	}
	if !accept(res.Text) || res.Confidence < minConf {
		return
	}
	h.result, h.noSpeech, h.unclear = res, false, false
	if h.speech == 0 {
		h.speech = time.Duration(len(pcm)) * time.Second / 8000
	}
}

// judge tells no speech (an empty transcript) from speech recognised
// below the minimum confidence.
func (v *VoiceService) judge(h *heard) {
	switch {
	case strings.TrimSpace(h.result.Text) == "":
		h.noSpeech = true
	case h.result.Confidence < v.minConfidence:
		h.unclear = true
	}
}

// acquireWork takes a recording slot, waiting up to the queue wait. ok is
// false when none came free: the caller is put on hold.
func (v *VoiceService) acquireWork(ctx context.Context) (release func(), ok bool) {
	release = func() { <-v.work }
	select {
	case v.work <- struct{}{}:
		return release, true
	default:
	}
	if v.queueWait < 0 {
		return nil, false
	}
	t := time.NewTimer(v.queueWait)
	defer t.Stop()
	select {
	case v.work <- struct{}{}:
		return release, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
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
// it, read it as a yes or no when a confirmation is awaited, else ask the
// engine (which stores the caller's message and holds the answer), and
// describe the outcome for the state machine and the turn record. It
// updates call's user and conversation ids.
func (v *VoiceService) recorded(ctx context.Context, call *Call, ev VoiceEvent, log *slog.Logger) (CallEvent, *Turn) {
	start := v.now()
	u := ev.Speech
	turn := &Turn{CallSID: call.SID, Seq: call.Turn, RecordingURL: u.RecordingURL, RecordStatus: truncateKey(u.RecordStatus)}
	v.m.recordEnds.WithLabelValues(recordEndReason(u.RecordStatus)).Inc()
	ctx, span := v.tracer.Start(ctx, SpanVoiceTurn, trace.WithAttributes(AttrCallID.String(call.SID),
		AttrBusinessID.Int64(call.BusinessID), AttrChannel.String(string(v.channel)), AttrTurn.Int(call.Turn)))
	defer func() {
		turn.TotalMS = v.now().Sub(start).Milliseconds()
		v.m.turnTotal.Observe(v.now().Sub(start).Seconds())
		span.SetAttributes(AttrConversationID.Int64(call.ConversationID), AttrResult.String(turnResult(turn)))
		if turn.Error != "" {
			span.SetStatus(codes.Error, "turn failed")
		}
		span.End()
	}()
	if u.Transcript == nil && u.RecordingURL == "" {
		turn.Error = "no recording url"
		return v.withTopics(ctx, *call, Recorded{NoSpeech: true}), turn
	}
	if u.Transcript == nil {
		release, ok := v.acquireWork(ctx)
		if !ok {
			v.m.holds.Inc()
			log.LogAttrs(ctx, slog.LevelWarn, "every recording slot busy; caller on hold")
			return Busy{RecordingURL: u.RecordingURL, RecordStatus: u.RecordStatus}, turn
		}
		defer release()
	}
	confirming := call.State == CallStateConfirming
	collecting := call.State == CallStateCollecting
	h := v.hear(ctx, call.BusinessID, u, confirming || collecting)
	if h.speech > 0 {
		v.m.utterance.Observe(h.speech.Seconds())
	}
	if confirming && h.fail == "" && (YesNo(h.result.Text) == "" || h.result.Confidence < v.minConfidence) {
		v.yesNoPass(ctx, u, &h)
	}
	if collecting && h.fail == "" {
		v.digitsPass(ctx, u, &h)
	}
	fillTurn(turn, h)
	switch {
	case h.fail != "":
		log.LogAttrs(ctx, slog.LevelWarn, "recording not transcribed", slog.String("reason", h.fail), slog.String("error", h.err.Error()))
		return Recorded{FailReason: h.fail}, turn
	case h.noSpeech:
		return v.withTopics(ctx, *call, Recorded{NoSpeech: true}), turn
	case h.unclear && h.result.Confidence < v.minConfidence/2:
		turn.EndReason = "low_confidence"
		return v.withTopics(ctx, *call, Recorded{NotUnderstood: true}), turn
	}
	if call.State == CallStateConfirming {
		if answer := YesNo(h.result.Text); answer != "" {
			if id, err := v.storeCallerWords(ctx, call, ev, h.result.Text); err != nil {
				turn.Error = "engine: " + err.Error()
				log.LogAttrs(ctx, slog.LevelError, "store confirmation failed", slog.String("error", err.Error()))
			} else {
				turn.MessageID = id
			}
			rec := Recorded{Answer: answer}
			if answer == AnswerNo {
				rec = v.withTopics(ctx, *call, rec)
			}
			return rec, turn
		}
	}

	alts := make([]bot.Alternative, 0, len(h.result.Alternatives))
	for _, a := range h.result.Alternatives {
		alts = append(alts, bot.Alternative{Text: a.Text, Weight: a.Posterior})
	}
	var lattice []bot.WordCount
	for _, w := range h.result.Lattice {
		lattice = append(lattice, bot.WordCount{Word: w.Word, Count: w.Count})
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
		HoldReply:         true,
		Alternatives:      alts,
		Lattice:           lattice,
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
		// what was stored after it again.
		texts, err := v.storedReply(ctx, reply.Inbound)
		if err != nil {
			turn.Error = err.Error()
			return Recorded{FailReason: FailInternal}, turn
		}
		call.UserID, call.ConversationID = reply.Inbound.UserID, reply.Inbound.ConversationID
		turn.Reply = strings.Join(texts, "\n")
		return Recorded{Reply: texts, Confident: true}, turn
	}
	call.UserID, call.ConversationID = reply.User.ID, reply.Conversation.ID
	turn.MessageID = reply.Inbound.ID
	switch {
	case reply.Failed:
		reason := FailBot
		if reply.FailReason == "timeout" {
			reason = FailBotTimeout
		}
		turn.Error = "bot " + reply.FailReason
		log.LogAttrs(ctx, slog.LevelWarn, "bot failed; break message", slog.String("reason", reply.FailReason))
		return Recorded{FailReason: reason}, turn
	case reply.Suppressed:
		// An agent owns the conversation: the bot stays quiet and the
		// caller is transferred to the team's number.
		return Recorded{Confident: true, Handoff: true}, turn
	case reply.Fallback:
		turn.EndReason = "not_understood"
		return v.withTopics(ctx, *call, Recorded{NotUnderstood: true}), turn
	}
	texts := make([]string, 0, len(reply.Messages))
	for _, m := range reply.Messages {
		texts = append(texts, m.Text)
	}
	turn.Reply = strings.Join(texts, "\n")
	conf := reply.Confidence
	collect := 0
	if reply.Collect != nil {
		collect = max(reply.Collect.MaxDigits, 1)
	}
	if h.unclear {
		// Words the recogniser was unsure of weaken the answer: the bot's
		// confidence scaled by the square of how far the transcript fell
		// short of the minimum (0.45 against 0.5 keeps 81 %, 0.3 keeps
		// 36 %). The square root kept too much: on the voice corpus it
		// answered 14.6 % of espeak-ng questions wrongly without asking;
		// the square gives 8.3 % (sim/voiceeval TestAcceptance).
		conf *= math.Pow(h.result.Confidence/v.minConfidence, 2)
	}
	return v.withTopics(ctx, *call, Recorded{
		Reply:      texts,
		Handoff:    reply.Handoff,
		Confidence: conf,
		Node:       reply.Node,
		Topic:      reply.Topic,
		// A bot that names no node (a remote bot) gives no confidence:
		// its answers are spoken, unless the words were unsure.
		Confident:     reply.Node == "" && !h.unclear,
		Unsure:        h.unclear,
		Thin:          thinMatch(reply, h.unclear),
		CollectDigits: collect,
	}), turn
}

// thinMatch reports whether an FAQ answer rests on at most one of the
// caller's words while the recogniser was unsure of them, or heard other
// content words the answer does not use. Garbled speech in the
// recogniser's vocabulary matches a node on one word ("no promos for",
// "can i hey my mobile hi"); such answers are confirmed, not spoken. A
// caller who said just that word ("hello", heard surely) is answered; a
// bot that does not count words (Words 0) is never thin.
func thinMatch(reply Reply, unsure bool) bool {
	if reply.Node == "" || reply.Words == 0 || reply.Support > 1 {
		return false
	}
	return unsure || reply.Words > reply.Support
}

// withTopics adds the topic menu's topics to an outcome that may lead to it
// (the call missed before).
func (v *VoiceService) withTopics(ctx context.Context, call Call, r Recorded) Recorded {
	if call.Repair.Misses+1 < MenuAfterMisses {
		return r
	}
	topics, err := v.menuTopics(ctx, call.BusinessID)
	if err != nil {
		v.log.LogAttrs(ctx, slog.LevelWarn, "topic menu unavailable", slog.String("error", err.Error()))
		return r
	}
	r.Topics = topics
	return r
}

// menuTopics returns the FAQ's top topics: its first active nodes in FAQ
// order, leaving out greetings, goodbyes and agent requests (key 0 is the
// agent).
func (v *VoiceService) menuTopics(ctx context.Context, businessID int64) ([]MenuTopic, error) {
	nodes, err := v.store.ListFAQ(ctx, businessID, true)
	if err != nil {
		return nil, fmt.Errorf("list faq: %w", err)
	}
	// FAQ order: nodes are listed by name; their ids follow the import.
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	var topics []MenuTopic
	for _, n := range nodes {
		if len(topics) == MaxMenuTopics {
			break
		}
		title := topicTitle(n.Name)
		if title == "" || len(n.BotSays) == 0 || smallTalk(title) {
			continue
		}
		topics = append(topics, MenuTopic{Node: n.Name, Title: title})
	}
	return topics, nil
}

// topicTitle derives a spoken title from a node name, as the FAQ bot's
// TopicTitle does: separators become spaces, lower case.
func topicTitle(node string) string {
	f := strings.FieldsFunc(strings.ToLower(node), func(r rune) bool {
		return r == '_' || r == '-' || r == '.' || r == '/' || r == ' ' || r == '\t'
	})
	return strings.Join(f, " ")
}

// smallTalk reports whether a topic is a greeting, a goodbye or an agent
// request rather than a subject.
func smallTalk(title string) bool {
	for _, w := range strings.Fields(title) {
		switch w {
		case "greeting", "greetings", "hello", "hi", "goodbye", "bye", "thanks", "thank", "agent", "human", "operator", "smalltalk":
			return true
		}
	}
	return false
}

// keys handles the keys of a confirmation (1 yes, 2 no) and of the topic
// menu (a topic's answer): it stores what the caller chose as their
// message and, for a topic, loads the answer. Other keys pass unchanged.
func (v *VoiceService) keys(ctx context.Context, call *Call, ev VoiceEvent, e DTMF, log *slog.Logger) (CallEvent, *Turn) {
	digits := strings.TrimRight(e.Digits, "#")
	switch call.State {
	case CallStateConfirming:
		words := map[string]string{"1": AnswerYes, "2": AnswerNo}[digits]
		if words == "" || call.ConversationID == 0 {
			return e, nil
		}
		turn := &Turn{CallSID: call.SID, Seq: call.Turn, EndReason: "keys", Transcript: words, Confidence: 1}
		id, err := v.storeCallerWords(ctx, call, ev, words)
		if err != nil {
			turn.Error = "engine: " + err.Error()
			log.LogAttrs(ctx, slog.LevelError, "store confirmation failed", slog.String("error", err.Error()))
		}
		turn.MessageID = id
		return e, turn
	case CallStateCollecting:
		if digits == "" {
			return e, nil
		}
		return v.collected(ctx, call, ev, digits, log)
	case CallStateTopics:
		topic, ok := call.TopicKey(digits)
		if !ok {
			return e, nil
		}
		turn := &Turn{CallSID: call.SID, Seq: call.Turn, EndReason: "keys", Transcript: topic.Title, Confidence: 1}
		chosen := TopicChosen{Topic: topic}
		nodes, err := v.store.ListFAQ(ctx, call.BusinessID, true)
		if err == nil {
			for _, n := range nodes {
				if n.Name == topic.Node {
					chosen.Reply = n.BotSays
				}
			}
		}
		if err != nil || len(chosen.Reply) == 0 {
			chosen.FailReason = FailInternal
			turn.Error = fmt.Sprintf("topic %q has no answer", topic.Node)
			if err != nil {
				turn.Error = "list faq: " + err.Error()
			}
			return chosen, turn
		}
		turn.Reply = strings.Join(chosen.Reply, "\n")
		id, err := v.storeCallerWords(ctx, call, ev, topic.Title)
		if err != nil {
			turn.Error = "engine: " + err.Error()
			log.LogAttrs(ctx, slog.LevelError, "store topic choice failed", slog.String("error", err.Error()))
		}
		turn.MessageID = id
		return chosen, turn
	}
	return e, nil
}

// storeCallerWords stores what the caller said or chose (a yes, a topic)
// as their message of this turn, through the engine without asking the
// bot, and returns its id (0 for a repeat).
func (v *VoiceService) storeCallerWords(ctx context.Context, call *Call, ev VoiceEvent, text string) (int64, error) {
	reply, err := v.engine.Handle(ctx, Inbound{
		BusinessID:        call.BusinessID,
		Connection:        ev.Connection,
		Channel:           v.channel,
		UserExternalID:    callerKey(*call),
		Text:              text,
		ExternalMessageID: v.messageID(*call) + ":" + string(call.State),
		Voice:             true,
		StoreOnly:         true,
	})
	if err != nil {
		return 0, err
	}
	if reply.Duplicate {
		return 0, nil
	}
	if call.ConversationID == 0 {
		call.UserID, call.ConversationID = reply.Inbound.UserID, reply.Inbound.ConversationID
	}
	return reply.Inbound.ID, nil
}

// said stores what the step spoke after a message of the caller, in order,
// so the conversation's transcript shows what the caller heard: answers
// carry their node and confidence, repair prompts none.
func (v *VoiceService) said(ctx context.Context, next Call, ev CallEvent, pending *PendingAnswer, actions []CallAction, log *slog.Logger) {
	node, conf := "", 0.0
	switch next.Repair.Band {
	case UnderstandingAnswered:
		if r, ok := ev.(Recorded); ok {
			node, conf = r.Node, r.Confidence
		}
	case UnderstandingConfirmed:
		if pending != nil {
			node, conf = pending.Node, pending.Confidence
		}
	case UnderstandingMenu:
		if t, ok := ev.(TopicChosen); ok {
			node, conf = t.Topic.Node, 1
		}
	}
	if k, ok := ev.(Collected); ok && next.Repair.Band == UnderstandingAnswered {
		node, conf = k.Node, 1
	}
	var msgs []*Message
	for _, act := range actions {
		var text string
		switch act := act.(type) {
		case Say:
			text = act.Text
		case Menu:
			text = act.Prompt
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		msgs = append(msgs, &Message{
			BusinessID:     next.BusinessID,
			ConversationID: next.ConversationID,
			UserID:         next.UserID,
			Sender:         SenderBot,
			Text:           text,
			Channel:        v.channel,
			Node:           node,
			Confidence:     conf,
		})
	}
	if err := v.engine.Said(ctx, msgs); err != nil {
		log.LogAttrs(ctx, slog.LevelError, "store spoken messages failed", slog.String("error", err.Error()))
	}
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
	v.m.recordEnds.WithLabelValues(recordEndReason(u.RecordStatus)).Inc()
	defer func() { turn.TotalMS = v.now().Sub(start).Milliseconds() }()
	h := v.hear(ctx, call.BusinessID, u, false)
	if h.speech > 0 {
		v.m.utterance.Observe(h.speech.Seconds())
	}
	fillTurn(turn, h)
	v.m.turns.WithLabelValues(turnHangup).Inc()
	if h.fail != "" || h.noSpeech || h.unclear {
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

// collected gives the keys a caller pressed for a value the call collects
// to the engine, as the caller's message (the bot's API step reads the
// value from it), and describes the reply for the state machine.
func (v *VoiceService) collected(ctx context.Context, call *Call, ev VoiceEvent, digits string, log *slog.Logger) (CallEvent, *Turn) {
	start := v.now()
	turn := &Turn{CallSID: call.SID, Seq: call.Turn, EndReason: "keys", Transcript: digits, Confidence: 1}
	defer func() { turn.TotalMS = v.now().Sub(start).Milliseconds() }()
	reply, err := v.engine.Handle(ctx, Inbound{
		BusinessID:     call.BusinessID,
		Connection:     ev.Connection,
		Channel:        v.channel,
		UserExternalID: callerKey(*call),
		Text:           digits,
		// The prompt was spoken in this turn's number: the keys get
		// their own message id.
		ExternalMessageID: v.messageID(*call) + ":" + string(CallStateCollecting),
		Voice:             true,
		HoldReply:         true,
	})
	turn.BotMS = v.now().Sub(start).Milliseconds()
	v.m.bot.Observe(v.now().Sub(start).Seconds())
	if err != nil {
		turn.Error = "engine: " + err.Error()
		log.LogAttrs(ctx, slog.LevelError, "engine failed", slog.String("error", err.Error()))
		return Collected{Digits: digits, FailReason: FailInternal}, turn
	}
	if reply.Duplicate {
		texts, err := v.storedReply(ctx, reply.Inbound)
		if err != nil {
			turn.Error = err.Error()
			return Collected{Digits: digits, FailReason: FailInternal}, turn
		}
		call.UserID, call.ConversationID = reply.Inbound.UserID, reply.Inbound.ConversationID
		turn.Reply = strings.Join(texts, "\n")
		return Collected{Digits: digits, Reply: texts}, turn
	}
	call.UserID, call.ConversationID = reply.User.ID, reply.Conversation.ID
	turn.MessageID = reply.Inbound.ID
	switch {
	case reply.Failed:
		reason := FailBot
		if reply.FailReason == "timeout" {
			reason = FailBotTimeout
		}
		turn.Error = "bot " + reply.FailReason
		log.LogAttrs(ctx, slog.LevelWarn, "value lookup failed; break message", slog.String("reason", reply.FailReason))
		return Collected{Digits: digits, FailReason: reason}, turn
	case reply.Suppressed:
		return Collected{Digits: digits, Handoff: true}, turn
	}
	texts := make([]string, 0, len(reply.Messages))
	for _, m := range reply.Messages {
		texts = append(texts, m.Text)
	}
	turn.Reply = strings.Join(texts, "\n")
	return Collected{Digits: digits, Reply: texts, Node: reply.Node}, turn
}

// turnResult is the result a turn's span carries: its end reason, or
// "failed" or "done".
func turnResult(t *Turn) string {
	switch {
	case t.EndReason != "":
		return t.EndReason
	case t.Error != "":
		return "failed"
	}
	return "done"
}
