//go:build cgo && !nopocketsphinx

package stt

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
)

// TestTune is the tuning tool behind defaultTuning: it runs the
// acceptance set with settings from the environment and prints the report
// per voice. It only runs with STT_TUNE=1, for example:
//
//	STT_TUNE=1 STT_ARGS="-topn 8" STT_GARBAGE=-1.2 go test -run TestTune -v ./audio/stt/
//
// Variables: STT_ARGS (decoder options added), STT_LMARGS (replace the LM
// options), STT_FEAT (feat.params overrides, "-name value" pairs),
// STT_GARBAGE, STT_DISCOUNT, STT_BOTW, STT_NOCARRIERS=1 (LM recipe),
// STT_RATE (espeak-ng words per minute), STT_WORKERS (default 2), STT_V=1
// (log every error).
func TestTune(t *testing.T) {
	if os.Getenv("STT_TUNE") == "" {
		t.Skip("tuning tool: set STT_TUNE=1")
	}
	tu := envTuning(t)
	s, err := newSphinx(SphinxConfig{DataDir: t.TempDir(), PoolSize: 2}, tu)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rate := os.Getenv("STT_RATE")
	speak := func(text, voice string) audio.PCM { return speakAt(t, text, voice, rate) }
	workers := 2
	if w, err := strconv.Atoi(os.Getenv("STT_WORKERS")); err == nil && w > 0 {
		workers = w
	}
	logf := func(string, ...any) {}
	if os.Getenv("STT_V") != "" {
		logf = t.Logf
	}
	t.Logf("%+v", tu)
	t.Log(evaluate(t, s, speak, workers, logf))
}

// BenchmarkTuneRTF is BenchmarkSphinxRTF with TestTune's settings.
func BenchmarkTuneRTF(b *testing.B) {
	s, err := newSphinx(SphinxConfig{DataDir: b.TempDir(), PoolSize: 1}, envTuning(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	v := demoVocabulary(b)
	pcm := phoneLine(b, "when will my order arrive", "en-us")
	if _, err := Transcribe(b.Context(), s, v, pcm); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for b.Loop() {
		if _, err := Transcribe(b.Context(), s, v, pcm); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds()/(float64(len(pcm))/audio.SampleRate*float64(b.N)), "rtf")
}

// envTuning is defaultTuning with the STT_* overrides of TestTune.
func envTuning(tb testing.TB) tuning {
	tb.Helper()
	tu := defaultTuning()
	if v := os.Getenv("STT_ARGS"); v != "" {
		// Merged, not appended: pocketsphinx refuses an option given
		// twice, and "-topn 8" must replace the tuned "-topn 12".
		tu.args = mergeArgs(tu.args, strings.Fields(v))
	}
	if v, ok := os.LookupEnv("STT_LMARGS"); ok {
		tu.lmArgs = strings.Fields(v)
	}
	f := strings.Fields(os.Getenv("STT_FEAT"))
	for i := 0; i+1 < len(f); i += 2 {
		tu.feat = append(tu.feat, [2]string{f[i], f[i+1]})
	}
	num := func(k string, dst *float64) {
		if v := os.Getenv(k); v != "" {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("%s: %v", k, err)
			}
			*dst = x
		}
	}
	num("STT_GARBAGE", &tu.garbageLogProb)
	num("STT_DISCOUNT", &tu.lm.discount)
	if v := os.Getenv("STT_BOTW"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			tb.Fatalf("STT_BOTW: %v", err)
		}
		tu.lm.botWeight = n
	}
	if os.Getenv("STT_NOCARRIERS") == "1" {
		tu.lm.carriers = false
	}
	return tu
}

// speakAt is audiotest.Speak at a speaking rate (espeak-ng -s, words per
// minute); an empty rate is espeak-ng's default (175).
func speakAt(tb testing.TB, text, voice, rate string) audio.PCM {
	tb.Helper()
	if rate == "" {
		return audiotest.Speak(tb, text, voice)
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(tb.Context(), "espeak-ng", "--stdout", "-v", voice, "-s", rate)
	cmd.Stdin = strings.NewReader(text)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		tb.Fatalf("espeak-ng: %v: %s", err, errOut.String())
	}
	p, err := audio.DecodeWAV(&out, 10<<20)
	if err != nil {
		tb.Fatal(err)
	}
	if p, err = audio.Resample(p, audio.SampleRate); err != nil {
		tb.Fatal(err)
	}
	return p
}
