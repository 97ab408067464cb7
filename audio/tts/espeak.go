package tts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"

	"github.com/koelvoice/koel/audio"
)

// maxEspeakOutputBytes caps espeak-ng's WAV output (about 6 minutes at
// 22.05 kHz), whatever the text.
const maxEspeakOutputBytes = 16 << 20

// EspeakConfig configures the espeak-ng backend. Zero values take the
// documented defaults.
type EspeakConfig struct {
	// Binary is the espeak-ng program; default "espeak-ng" on $PATH.
	Binary string
	// DefaultVoice is used for the parts of a Voice left empty; default
	// {Name: "en-us", Rate: 0 (espeak-ng's 175 wpm)}.
	DefaultVoice Voice
	// MaxTextBytes caps the text of one call; default DefaultMaxTextBytes.
	MaxTextBytes int
	// Logger receives debug lines; default discard.
	Logger *slog.Logger
}

// Espeak synthesizes with the espeak-ng program. It is safe for concurrent
// use: each call runs its own process.
type Espeak struct {
	bin   string
	voice Voice
	max   int
	log   *slog.Logger
}

var _ Synthesizer = (*Espeak)(nil)

// NewEspeak finds the espeak-ng binary and checks the configuration. A
// missing binary is an error wrapping ErrUnavailable.
func NewEspeak(cfg EspeakConfig) (*Espeak, error) {
	bin := cfg.Binary
	if bin == "" {
		bin = "espeak-ng"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w: espeak-ng: %w", ErrUnavailable, err)
	}
	v := cfg.DefaultVoice
	if v.Name == "" {
		v.Name = "en-us"
	}
	if err := checkVoice(v); err != nil {
		return nil, fmt.Errorf("tts: default voice: %w", err)
	}
	limit := cfg.MaxTextBytes
	if limit == 0 {
		limit = DefaultMaxTextBytes
	}
	if limit < 0 {
		return nil, fmt.Errorf("tts: negative MaxTextBytes %d", limit)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Espeak{bin: path, voice: v, max: limit, log: log}, nil
}

// Synthesize runs `espeak-ng --stdout -v NAME [-s RATE]` with text on
// stdin (never in argv, so text cannot be read as an option) and returns
// the speech at 8 kHz.
func (e *Espeak) Synthesize(ctx context.Context, text string, v Voice) (audio.PCM, error) {
	t, err := checkText(text, e.max)
	if err != nil {
		return audio.PCM{}, err
	}
	if v.Name == "" {
		v.Name = e.voice.Name
	}
	if v.Rate == 0 {
		v.Rate = e.voice.Rate
	}
	if err := checkVoice(v); err != nil {
		return audio.PCM{}, err
	}
	args := []string{"--stdout", "-v", v.Name}
	if v.Rate != 0 {
		args = append(args, "-s", strconv.Itoa(v.Rate))
	}
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Stdin = strings.NewReader(t)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, n: 4096}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return audio.PCM{}, fmt.Errorf("tts: espeak-ng: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return audio.PCM{}, fmt.Errorf("%w: start espeak-ng: %w", ErrUnavailable, err)
	}
	// espeak-ng's WAV header has a bogus data size: DecodeWAV reads to EOF
	// within the cap.
	p, decErr := audio.DecodeWAV(out, maxEspeakOutputBytes)
	_, _ = io.Copy(io.Discard, out)
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return audio.PCM{}, fmt.Errorf("tts: espeak-ng: %w", ctx.Err())
	}
	if waitErr != nil {
		var exit *exec.ExitError
		if errors.As(waitErr, &exit) {
			return audio.PCM{}, fmt.Errorf("tts: espeak-ng -v %s: %w: %s", v.Name, waitErr, strings.TrimSpace(stderr.String()))
		}
		return audio.PCM{}, fmt.Errorf("tts: espeak-ng: %w", waitErr)
	}
	if decErr != nil {
		return audio.PCM{}, fmt.Errorf("tts: espeak-ng output: %w", decErr)
	}
	if len(p.Samples) == 0 {
		return audio.PCM{}, fmt.Errorf("tts: espeak-ng produced no audio for voice %q", v.Name)
	}
	return to8k(p)
}

// limitedBuffer keeps the first n bytes written and discards the rest.
type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
