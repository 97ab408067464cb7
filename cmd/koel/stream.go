package main

import (
	"crypto/rand"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/audio/tts"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/kookoo"
)

// newStreamServer builds KooKoo stream mode on the app: connections with
// voice_mode stream are answered with <stream> and served at
// /kookoo/{identifier}/stream.
func newStreamServer(cfg Config, app *kookoo.App, transcriber stt.Transcriber, vocab bot.Vocabulary, synth tts.Synthesizer,
	publicURL string, log *slog.Logger, reg prometheus.Registerer) (*kookoo.StreamServer, error) {
	key := []byte(cfg.StreamKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		log.Info("no stream_key set: KooKoo stream URLs are signed with a key of this process only (set KOEL_STREAM_KEY on every node to share streams)")
	}
	tokens, err := kookoo.NewStreamTokens(key, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("stream tokens: %w", err)
	}
	s, err := kookoo.NewStreamServer(kookoo.StreamConfig{
		App:        app,
		STT:        transcriber,
		Vocabulary: vocab,
		TTS:        synth,
		Voice:      tts.Voice{Name: cfg.TTS.Voice, Rate: cfg.TTS.Rate},
		Tokens:     tokens,
		PublicURL:  publicURL,
		Logger:     log.With("channel", "kookoo-stream"),
		Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("kookoo stream: %w", err)
	}
	return s, nil
}
