package voiceeval

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/koelvoice/koel/audio"
)

// Synthesizer engines.
const (
	EngineEspeak = "espeak-ng"
	EngineFlite  = "flite"
)

// Synth is one synthetic caller: an engine and one of its voices.
type Synth struct {
	Engine string
	Voice  string
}

// String names s as engine/voice.
func (s Synth) String() string { return s.Engine + "/" + s.Voice }

// DefaultSynths returns the callers the evaluation uses: four espeak-ng
// voices and flite's four English voices.
func DefaultSynths() []Synth {
	return []Synth{
		{EngineEspeak, "en-us"}, {EngineEspeak, "en"}, {EngineEspeak, "en-gb-x-rp"}, {EngineEspeak, "en-us+f3"},
		{EngineFlite, "slt"}, {EngineFlite, "rms"}, {EngineFlite, "awb"}, {EngineFlite, "kal"},
	}
}

// Variant is how the telephone line treats a rendering.
type Variant string

// Telephone variants.
const (
	// VariantClean is 8 kHz G.711 µ-law.
	VariantClean Variant = "ulaw"
	// VariantNoise adds line noise 25 dB under the speech before the µ-law
	// round trip.
	VariantNoise Variant = "noise"
)

// DefaultVariants returns both telephone variants.
func DefaultVariants() []Variant { return []Variant{VariantClean, VariantNoise} }

// lineNoiseSNR is the speech-to-noise ratio of VariantNoise, in dB.
const lineNoiseSNR = 25

// maxSynthBytes caps a synthesizer's output (a few minutes of audio).
const maxSynthBytes = 16 << 20

// Renderer synthesizes corpus utterances and caches the audio on disk,
// keyed by engine, voice and text. It never writes into the source tree.
type Renderer struct {
	dir string
}

// DefaultCacheDir is where rendered audio is cached when no directory is
// given: the user cache dir (or the temp dir) under koel/voiceeval.
func DefaultCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "koel", "voiceeval")
}

// NewRenderer returns a renderer caching in dir ("" = DefaultCacheDir).
func NewRenderer(dir string) (*Renderer, error) {
	if dir == "" {
		dir = DefaultCacheDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("voiceeval: cache dir: %w", err)
	}
	return &Renderer{dir: dir}, nil
}

// ErrNoSynthesizer means an engine's program is not installed.
var ErrNoSynthesizer = errors.New("voiceeval: synthesizer not installed")

// Available reports whether the program of engine is installed.
func Available(engine string) error {
	if _, err := exec.LookPath(engine); err != nil {
		return fmt.Errorf("%w: %s (apt-get install %s)", ErrNoSynthesizer, engine, engine)
	}
	return nil
}

// Speech returns text spoken by s at 8 kHz, from the cache when rendered
// before.
func (r *Renderer) Speech(ctx context.Context, s Synth, text string) (audio.PCM, error) {
	sum := sha256.Sum256([]byte(s.Engine + "\x00" + s.Voice + "\x00" + text))
	path := filepath.Join(r.dir, hex.EncodeToString(sum[:16])+".wav")
	if f, err := os.Open(path); err == nil {
		p, err := audio.DecodeWAV(f, maxSynthBytes)
		f.Close()
		if err == nil && p.Rate == audio.SampleRate && len(p.Samples) > 0 {
			return p, nil
		}
	}
	raw, err := synthesize(ctx, s, text, r.dir)
	if err != nil {
		return audio.PCM{}, err
	}
	p, err := audio.DecodeWAV(bytes.NewReader(raw), maxSynthBytes)
	if err != nil {
		return audio.PCM{}, fmt.Errorf("voiceeval: %s output: %w", s, err)
	}
	if p, err = audio.Resample(p, audio.SampleRate); err != nil {
		return audio.PCM{}, fmt.Errorf("voiceeval: resample %s output: %w", s, err)
	}
	if len(p.Samples) == 0 {
		return audio.PCM{}, fmt.Errorf("voiceeval: %s rendered %q as no audio", s, text)
	}
	var buf bytes.Buffer
	if err := audio.EncodeWAV(&buf, p, audio.EncodingPCM16); err != nil {
		return audio.PCM{}, fmt.Errorf("voiceeval: cache %s: %w", s, err)
	}
	tmp, err := os.CreateTemp(r.dir, ".render-")
	if err != nil {
		return audio.PCM{}, fmt.Errorf("voiceeval: cache: %w", err)
	}
	_, werr := tmp.Write(buf.Bytes())
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return audio.PCM{}, fmt.Errorf("voiceeval: cache: %w", errors.Join(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return audio.PCM{}, fmt.Errorf("voiceeval: cache: %w", err)
	}
	return p, nil
}

// synthesize runs the engine's program and returns its WAV output.
func synthesize(ctx context.Context, s Synth, text, tmpDir string) ([]byte, error) {
	if err := Available(s.Engine); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	var cmd *exec.Cmd
	switch s.Engine {
	case EngineEspeak:
		cmd = exec.CommandContext(ctx, s.Engine, "--stdout", "-v", s.Voice)
		cmd.Stdin = strings.NewReader(text)
	case EngineFlite:
		f, err := os.CreateTemp(tmpDir, ".flite-*.wav")
		if err != nil {
			return nil, fmt.Errorf("voiceeval: flite output file: %w", err)
		}
		out := f.Name()
		f.Close()
		defer os.Remove(out)
		cmd = exec.CommandContext(ctx, s.Engine, "-voice", s.Voice, "-t", text, "-o", out)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("voiceeval: flite -voice %s: %w: %s", s.Voice, err, strings.TrimSpace(stderr.String()))
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return nil, fmt.Errorf("voiceeval: flite output: %w", err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("voiceeval: unknown synthesizer %q", s.Engine)
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("voiceeval: %s: %w: %s", s, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Telephone sends speech through the telephone path as a caller's
// recording: 300 ms of silence before and 500 ms after (the record verb's
// lead-in and its silence end-pointing), line noise for VariantNoise, and a
// G.711 µ-law round trip. The noise is seeded by seed, so the same seed
// gives the same recording.
func Telephone(speech audio.PCM, v Variant, seed uint64) audio.PCM {
	pre := audio.DurationToSamples(300*time.Millisecond, audio.SampleRate)
	post := audio.DurationToSamples(500*time.Millisecond, audio.SampleRate)
	x := make([]float64, pre+len(speech.Samples)+post)
	for i, s := range speech.Samples {
		x[pre+i] = float64(s)
	}
	if v == VariantNoise {
		var e float64
		for _, s := range speech.Samples {
			e += float64(s) * float64(s)
		}
		rms := math.Sqrt(e / float64(max(1, len(speech.Samples))))
		sigma := rms * math.Pow(10, -lineNoiseSNR/20.0)
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		for i := range x {
			x[i] += rng.NormFloat64() * sigma
		}
	}
	pcm := make([]int16, len(x))
	for i, f := range x {
		pcm[i] = int16(max(-32768, min(32767, math.Round(f))))
	}
	enc := make([]byte, len(pcm))
	audio.EncodeUlaw(enc, pcm)
	audio.DecodeUlaw(pcm, enc)
	return audio.PCM{Rate: audio.SampleRate, Samples: pcm}
}

// Seed derives a deterministic noise seed from an utterance and a synth.
func Seed(s Synth, text string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s.String() + "\x00" + text))
	return h.Sum64()
}

// ParseSynths parses a comma-separated list of engines ("flite": all its
// default voices) and engine/voice pairs ("espeak-ng/en-gb-x-rp").
func ParseSynths(list string) ([]Synth, error) {
	var out []Synth
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		engine, voice, pair := strings.Cut(f, "/")
		if engine != EngineEspeak && engine != EngineFlite {
			return nil, fmt.Errorf("voiceeval: synthesizer %q, want espeak-ng or flite (optionally /voice)", f)
		}
		if pair {
			if voice == "" {
				return nil, fmt.Errorf("voiceeval: synthesizer %q has an empty voice", f)
			}
			out = append(out, Synth{engine, voice})
			continue
		}
		for _, s := range DefaultSynths() {
			if s.Engine == engine {
				out = append(out, s)
			}
		}
	}
	return out, nil
}
