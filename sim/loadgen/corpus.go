package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/sim/voiceeval"
)

// Utterance is one caller recording, held in memory as the WAV KooKoo
// would serve.
type Utterance struct {
	Text string
	WAV  []byte
	// Speech is the length of the recording.
	Speech time.Duration
	// PCM is the recording as samples (what a softphone caller plays).
	PCM audio.PCM
}

// Texts returns the questions of the spoken-corpus evaluation
// (sim/voiceeval), in corpus order: a varied set of what callers ask the
// demo bot, never one sentence repeated. (Its off-topic remarks are left
// out: the recogniser rightly hears them as no speech, which is not the
// load a bot serves.)
func Texts() ([]string, error) {
	items, err := voiceeval.Corpus()
	if err != nil {
		return nil, fmt.Errorf("loadgen: corpus: %w", err)
	}
	var out []string
	for _, it := range items {
		if it.Kind == voiceeval.KindQuestion {
			out = append(out, it.Text)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("loadgen: the corpus has no questions")
	}
	return out, nil
}

// RenderUtterances speaks up to n corpus texts (0: all) with espeak-ng,
// alternating its voices, through the telephone path (8 kHz G.711, the
// record verb's lead-in and trailing silence), caching renders in cacheDir
// ("" = the voice evaluation's cache). It fails when espeak-ng is missing.
func RenderUtterances(ctx context.Context, n int, cacheDir string) ([]Utterance, error) {
	texts, err := Texts()
	if err != nil {
		return nil, err
	}
	if n > 0 && n < len(texts) {
		// Spread the pick over the corpus, not its first lines.
		step := float64(len(texts)) / float64(n)
		picked := make([]string, 0, n)
		for i := range n {
			picked = append(picked, texts[int(float64(i)*step)])
		}
		texts = picked
	}
	if err := voiceeval.Available(voiceeval.EngineEspeak); err != nil {
		return nil, err
	}
	r, err := voiceeval.NewRenderer(cacheDir)
	if err != nil {
		return nil, err
	}
	var voices []voiceeval.Synth
	for _, s := range voiceeval.DefaultSynths() {
		if s.Engine == voiceeval.EngineEspeak {
			voices = append(voices, s)
		}
	}
	out := make([]Utterance, 0, len(texts))
	for i, text := range texts {
		s := voices[i%len(voices)]
		speech, err := r.Speech(ctx, s, text)
		if err != nil {
			return nil, err
		}
		rec := voiceeval.Telephone(speech, voiceeval.VariantClean, voiceeval.Seed(s, text))
		var buf bytes.Buffer
		if err := audio.EncodeWAV(&buf, rec, audio.EncodingPCM16); err != nil {
			return nil, fmt.Errorf("loadgen: encode %q: %w", text, err)
		}
		out = append(out, Utterance{Text: text, WAV: buf.Bytes(), Speech: speech.Duration(), PCM: rec})
	}
	return out, nil
}
