package voiceeval

import (
	"context"
	"math"
	"strings"
	"sync"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
)

// PathText's caller and line: the corpus text itself, no synthesizer.
var (
	textSynth   = Synth{Engine: EngineText, Voice: "transcript"}
	textVariant = Variant("text")
)

// EngineText names PathText's only caller: the corpus text heard
// perfectly, at confidence 1.
const EngineText = "text"

// textBaseSamples is the length of the shortest stand-in recording
// (0.25 s); each text registered with a [perfectEar] gets its own length
// above it.
const textBaseSamples = 2000

// perfectEar is the recogniser of PathText: it hears in each recording
// exactly the text the recording stands for, at confidence 1, whatever the
// vocabulary. Recordings are stand-ins told apart by their length in
// samples (the WAV round trip through KooKoo's fetch keeps it exact), so
// the rest of the stack — the KooKoo app, the voice turn's bands, the
// yes/no handling, the FAQ bot — runs unchanged: the figures are the
// ceiling the understanding side sets for any recogniser. It is safe for
// concurrent use.
type perfectEar struct {
	mu     sync.Mutex
	byLen  map[int]string
	byText map[string]int
}

func newPerfectEar() *perfectEar {
	return &perfectEar{byLen: map[int]string{}, byText: map[string]int{}}
}

// utterance returns the stand-in recording of text: a quiet 200 Hz tone
// whose length in samples identifies text.
func (e *perfectEar) utterance(text string) audio.PCM {
	e.mu.Lock()
	n, ok := e.byText[text]
	if !ok {
		n = textBaseSamples + len(e.byText)
		e.byText[text] = n
		e.byLen[n] = text
	}
	e.mu.Unlock()
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(1000 * math.Sin(2*math.Pi*200*float64(i)/audio.SampleRate))
	}
	return audio.PCM{Rate: audio.SampleRate, Samples: pcm}
}

// Start implements [stt.Transcriber].
func (e *perfectEar) Start(context.Context, stt.Vocabulary) (stt.Stream, error) {
	return &perfectStream{e: e}, nil
}

// perfectStream counts the samples of one stand-in recording.
type perfectStream struct {
	e      *perfectEar
	n      int
	closed bool
}

func (s *perfectStream) Write(pcm []int16) error {
	if s.closed {
		return stt.ErrClosed
	}
	s.n += len(pcm)
	return nil
}

func (s *perfectStream) Partial() string { return "" }

// Close returns the registered text at confidence 1; a recording of a
// length no text was registered under is heard as nothing.
func (s *perfectStream) Close(context.Context) (stt.Result, error) {
	if s.closed {
		return stt.Result{}, stt.ErrClosed
	}
	s.closed = true
	s.e.mu.Lock()
	text, ok := s.e.byLen[s.n]
	s.e.mu.Unlock()
	if !ok {
		return stt.Result{}, nil
	}
	return stt.Result{Text: text, Confidence: 1, Words: len(strings.Fields(text))}, nil
}
