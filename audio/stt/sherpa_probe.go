package stt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
)

// sherpaProbeOK is the probe's last line on success.
const sherpaProbeOK = "sherpa probe ok"

// maxProbeOutput is how much of the probe's output is kept for the error.
const maxProbeOutput = 8192

// probeVocabulary is what the probe biases towards: a few phrases of the
// kind bots expect, enough to build a hotword list.
var probeVocabulary = Vocabulary{Key: "probe", Phrases: []string{"yes", "no", "when are you open", "talk to an agent"}}

// runSherpaProbe runs c.Probe and reports its failure as ErrUnavailable
// with the end of its output (sherpa-onnx's log lines).
func runSherpaProbe(c SherpaConfig) error {
	req, err := json.Marshal(sherpaProbeRequest{
		ModelDir: c.ModelDir, OfflineModelDir: c.OfflineModelDir, SampleRate: c.SampleRate,
		NumThreads: c.NumThreads, HotwordsScore: c.HotwordsScore,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.ProbeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Probe[0], c.Probe[1:]...)
	cmd.Stdin = bytes.NewReader(req)
	out := &headBuffer{max: maxProbeOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	text := strings.TrimSpace(out.String())
	if err == nil && !strings.HasSuffix(text, sherpaProbeOK) {
		err = fmt.Errorf("it did not report success")
	}
	if err != nil {
		return fmt.Errorf("%w: sherpa-onnx could not load and run the models in %s (probe process: %w): %s", ErrUnavailable, c.ModelDir, err, probeSummary(text))
	}
	return nil
}

// probeAudio is a second of quiet noise at 8 kHz.
func probeAudio() []int16 {
	r := rand.New(rand.NewPCG(1, 2))
	pcm := make([]int16, sampleRate)
	for i := range pcm {
		pcm[i] = int16(r.IntN(600) - 300)
	}
	return pcm
}

// headBuffer keeps the first max bytes written to it: sherpa-onnx's and
// onnxruntime's messages come before Go's crash dump.
type headBuffer struct {
	max int
	b   []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) String() string { return string(h.b) }

// probeSummary picks the lines of the probe's output that say what went
// wrong (onnxruntime errors, the C++ exception, sherpa-onnx's log, the
// fatal signal), without terminal colours; else its first lines.
func probeSummary(out string) string {
	var picked, all []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(ansiEscape.ReplaceAllString(line, ""))
		if line == "" {
			continue
		}
		all = append(all, line)
		if strings.Contains(line, "what():") || strings.Contains(line, "onnxruntime") || strings.Contains(line, ".cc:") ||
			strings.HasPrefix(line, "SIG") || strings.HasPrefix(line, "stt:") {
			picked = append(picked, line)
		}
	}
	if len(picked) == 0 {
		picked = all
	}
	return strings.Join(picked[:min(len(picked), 6)], " | ")
}

// ansiEscape matches terminal colour codes.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)
