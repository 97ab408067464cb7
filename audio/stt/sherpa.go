//go:build cgo && linux && (amd64 || arm64 || arm) && !nosherpa

package stt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sherpa "github.com/k2-fsa/sherpa-onnx-go-linux"

	"github.com/koelvoice/koel/audio"
)

// tailPaddingSeconds of silence are fed after the last audio so the
// streaming encoder's right context covers the final words (sherpa-onnx's
// own examples pad 0.66 s).
const tailPaddingSeconds = 0.66

// maxBeamPaths is the beam of modified_beam_search (used with hotwords).
const maxBeamPaths = 4

// Sherpa is the sherpa-onnx backend: a streaming transducer for live audio
// (Start) and, for whole recordings, an offline model (Recordings). Audio
// is resampled from 8 kHz to the model's rate. Recognition is biased
// towards the vocabulary's phrases with sherpa-onnx hotwords when the model
// directory has a bpe.vocab. It is safe for concurrent use.
//
// Confidence is the geometric mean of the transcript's token
// probabilities, read from sherpa-onnx's JSON result (the Go API has no
// scores); 1 for a non-empty transcript when the model gives none.
type Sherpa struct {
	cfg     SherpaConfig
	online  sherpaModel
	offline *sherpaModel
	log     *slog.Logger
	metrics *metrics

	slots chan struct{} // one token per stream decoding

	mu     sync.Mutex
	sets   map[string]*recognizerSet // by hotword list
	order  []string                  // least recently used first
	closed bool
	loaded int // recogniser sets not yet freed (guarded by mu)
}

// recognizerSet is a pair of recognisers sharing one hotword list.
type recognizerSet struct {
	key     string
	ready   chan struct{}
	err     error
	on      *sherpa.OnlineRecognizer
	off     *sherpa.OfflineRecognizer // nil without an offline model
	refs    int                       // streams using it (guarded by Sherpa.mu)
	evicted bool                      // free when refs drops to 0
}

var _ Transcriber = (*Sherpa)(nil)

// NewSherpa validates the model directories and loads the recognisers
// without hotwords. Any fault of the model directory (missing, not ONNX,
// missing metadata, models that do not fit together) is an error wrapping
// ErrUnavailable that names the file; koel checks these before sherpa-onnx
// sees the files, because sherpa-onnx ends the process on them.
func NewSherpa(cfg SherpaConfig) (*Sherpa, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	on, err := inspectSherpaModel(c.ModelDir, true)
	if err != nil {
		return nil, err
	}
	var off *sherpaModel
	if c.OfflineModelDir != "" {
		m, err := inspectSherpaModel(c.OfflineModelDir, false)
		if err != nil {
			return nil, err
		}
		off = &m
	}
	if len(c.Probe) > 0 {
		start := time.Now()
		if err := runSherpaProbe(c); err != nil {
			return nil, err
		}
		c.Logger.Debug("sherpa models passed the probe process", "elapsed", time.Since(start))
	}
	s := &Sherpa{cfg: c, online: on, offline: off, log: c.Logger, sets: map[string]*recognizerSet{}, slots: make(chan struct{}, c.PoolSize)}
	if err := os.MkdirAll(filepath.Join(c.DataDir, "sherpa-hotwords"), 0o755); err != nil {
		return nil, fmt.Errorf("stt: sherpa: data dir: %w", err)
	}
	if s.metrics, err = newMetrics(c.Registerer); err != nil {
		return nil, err
	}
	if on.bpeVocab == "" && c.HotwordsScore > 0 {
		s.log.Warn("sherpa model has no bpe.vocab: recognition is not biased to the bot's phrases (export one with sherpa-onnx's scripts/export_bpe_vocab.py)", "dir", c.ModelDir)
	}
	// Load the plain recognisers now so a model sherpa-onnx rejects fails
	// start-up, not the first call.
	set, err := s.acquire(context.Background(), Vocabulary{})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.release(set)
	s.log.Info("sherpa-onnx loaded", "model", c.ModelDir, "type", on.modelType, "offline", c.OfflineModelDir, "sample_rate", c.SampleRate)
	return s, nil
}

// RunSherpaProbe is the probe process of SherpaConfig.Probe: it reads the
// model configuration from stdin, loads the models with a hotword list,
// decodes a second of audio through each recogniser and prints
// "sherpa probe ok". A model sherpa-onnx cannot run ends this process, not
// the server that started it.
func RunSherpaProbe(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	var req sherpaProbeRequest
	if err := json.NewDecoder(io.LimitReader(stdin, 1<<16)).Decode(&req); err != nil {
		return fmt.Errorf("stt: sherpa probe: read request: %w", err)
	}
	dir, err := os.MkdirTemp("", "koel-sherpa-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := NewSherpa(SherpaConfig{
		ModelDir: req.ModelDir, OfflineModelDir: req.OfflineModelDir, DataDir: dir,
		SampleRate: req.SampleRate, NumThreads: req.NumThreads, HotwordsScore: req.HotwordsScore, PoolSize: 1,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	pcm := probeAudio()
	for _, tr := range []Transcriber{s, s.Recordings()} {
		for _, v := range []Vocabulary{{Key: "none"}, probeVocabulary} {
			if _, err := Transcribe(ctx, tr, v, pcm); err != nil {
				return fmt.Errorf("stt: sherpa probe: decode: %w", err)
			}
		}
	}
	_, err = fmt.Fprintln(stdout, sherpaProbeOK)
	return err
}

// Recordings returns the transcriber for whole recordings: the offline
// model when one is configured (its streams have no partial hypotheses),
// else the streaming one.
func (s *Sherpa) Recordings() Transcriber {
	if s.offline == nil {
		return s
	}
	return sherpaOffline{s}
}

// SampleRate is the rate audio is resampled to before decoding.
func (s *Sherpa) SampleRate() int { return s.cfg.SampleRate }

// Start begins a streaming utterance biased to v.
func (s *Sherpa) Start(ctx context.Context, v Vocabulary) (Stream, error) {
	set, rs, err := s.begin(ctx, v)
	if err != nil {
		return nil, err
	}
	st := sherpa.NewOnlineStream(set.on)
	if st == nil {
		s.end(set)
		return nil, fmt.Errorf("%w: sherpa: cannot create a stream", ErrUnavailable)
	}
	s.metrics.active.Inc()
	return &sherpaStream{s: s, set: set, st: st, rs: rs, started: time.Now()}, nil
}

// begin takes a slot and the vocabulary's recognisers, and makes a
// resampler for the stream.
func (s *Sherpa) begin(ctx context.Context, v Vocabulary) (*recognizerSet, *audio.Resampler, error) {
	if err := validateVocabulary(v); err != nil {
		return nil, nil, err
	}
	rs, err := audio.NewResampler(sampleRate, s.cfg.SampleRate)
	if err != nil {
		return nil, nil, fmt.Errorf("stt: sherpa: %w", err)
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	set, err := s.acquire(ctx, v)
	if err != nil {
		<-s.slots
		return nil, nil, err
	}
	return set, rs, nil
}

// end gives back what begin took.
func (s *Sherpa) end(set *recognizerSet) {
	s.release(set)
	<-s.slots
}

// Close frees the idle recognisers now and the others when their last
// stream closes; it does not wait for streams. Later Starts fail with
// ErrClosed.
func (s *Sherpa) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, key := range s.order {
		set := s.sets[key]
		set.evicted = true
		if set.refs == 0 {
			s.free(set)
		}
	}
	s.sets, s.order = map[string]*recognizerSet{}, nil
	s.mu.Unlock()
	return nil
}

// hotwords turns a vocabulary into sherpa-onnx's hotword list: one phrase
// per line, in the case of the model's word pieces. "" when biasing is off.
func (s *Sherpa) hotwords(v Vocabulary) string {
	if s.online.bpeVocab == "" || s.cfg.HotwordsScore < 0 || len(v.Phrases) == 0 {
		return ""
	}
	seen := map[string]bool{}
	var b strings.Builder
	for _, p := range v.Phrases {
		line := strings.Join(hotwordWords(p), " ")
		if line == "" || seen[line] {
			continue
		}
		seen[line] = true
		if s.online.upperCase {
			line = strings.ToUpper(line)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// hotwordWords keeps the a-z words (and apostrophes) of a phrase, lower
// case: digits and other scripts have no word pieces in English models.
func hotwordWords(p string) []string {
	return strings.FieldsFunc(strings.ToLower(p), func(r rune) bool {
		return (r < 'a' || r > 'z') && r != '\''
	})
}

// acquire returns the recognisers for v's hotword list, loading them on
// first use. Concurrent first users share one load.
func (s *Sherpa) acquire(ctx context.Context, v Vocabulary) (*recognizerSet, error) {
	hw := s.hotwords(v)
	key := ""
	if hw != "" {
		sum := sha256.Sum256([]byte(hw))
		key = hex.EncodeToString(sum[:12])
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	set, ok := s.sets[key]
	if ok {
		set.refs++
		s.touch(key)
		s.mu.Unlock()
	} else {
		set = &recognizerSet{key: key, ready: make(chan struct{}), refs: 1}
		s.sets[key] = set
		s.order = append(s.order, key)
		s.loaded++
		s.evictLocked()
		s.mu.Unlock()
		set.err = s.load(set, hw)
		close(set.ready)
	}
	select {
	case <-set.ready:
	case <-ctx.Done():
		s.release(set)
		return nil, ctx.Err()
	}
	if set.err != nil {
		s.mu.Lock()
		if s.sets[key] == set { // let a later call try again
			delete(s.sets, key)
			s.removeOrder(key)
			set.evicted = true
		}
		s.mu.Unlock()
		s.release(set)
		return nil, set.err
	}
	return set, nil
}

// release drops one use of set, freeing it when evicted and unused.
func (s *Sherpa) release(set *recognizerSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set.refs--
	if set.refs == 0 && set.evicted {
		s.free(set)
	}
}

// free deletes set's recognisers (refs is 0, s.mu held).
func (s *Sherpa) free(set *recognizerSet) {
	<-set.ready
	if set.on != nil {
		sherpa.DeleteOnlineRecognizer(set.on)
		set.on = nil
	}
	if set.off != nil {
		sherpa.DeleteOfflineRecognizer(set.off)
		set.off = nil
	}
	s.loaded--
}

// evictLocked marks the least recently used sets beyond MaxVocabularies
// for freeing; in-use ones go when their last stream closes.
func (s *Sherpa) evictLocked() {
	for len(s.order) > s.cfg.MaxVocabularies {
		key := s.order[0]
		s.order = s.order[1:]
		set := s.sets[key]
		delete(s.sets, key)
		set.evicted = true
		if set.refs == 0 {
			s.free(set)
		}
	}
}

func (s *Sherpa) touch(key string) {
	s.removeOrder(key)
	s.order = append(s.order, key)
}

func (s *Sherpa) removeOrder(key string) {
	for i, k := range s.order {
		if k == key {
			s.order = append(s.order[:i], s.order[i+1:]...)
			return
		}
	}
}

// load creates set's recognisers with the hotword list hw ("" for none).
func (s *Sherpa) load(set *recognizerSet, hw string) error {
	start := time.Now()
	hotwordsFile := ""
	if hw != "" {
		hotwordsFile = filepath.Join(s.cfg.DataDir, "sherpa-hotwords", set.key+".txt")
		if err := writeFileAtomic(hotwordsFile, []byte(hw)); err != nil {
			return fmt.Errorf("stt: sherpa: hotwords: %w", err)
		}
	}
	m := s.online
	oc := sherpa.OnlineRecognizerConfig{
		FeatConfig:     sherpa.FeatureConfig{SampleRate: s.cfg.SampleRate, FeatureDim: m.featureDim},
		DecodingMethod: "greedy_search",
		MaxActivePaths: maxBeamPaths,
	}
	oc.ModelConfig.Transducer = sherpa.OnlineTransducerModelConfig{Encoder: m.encoder, Decoder: m.decoder, Joiner: m.joiner}
	oc.ModelConfig.Tokens = m.tokens
	oc.ModelConfig.NumThreads = s.cfg.NumThreads
	oc.ModelConfig.Provider = "cpu"
	oc.ModelConfig.ModelType = m.modelType
	if hotwordsFile != "" {
		oc.DecodingMethod = "modified_beam_search"
		oc.ModelConfig.ModelingUnit = "bpe"
		oc.ModelConfig.BpeVocab = m.bpeVocab
		oc.HotwordsFile = hotwordsFile
		oc.HotwordsScore = float32(s.cfg.HotwordsScore)
	}
	if hotwordsFile != "" {
		// sherpa-onnx reads the list while creating the recognisers.
		defer os.Remove(hotwordsFile)
	}
	set.on = sherpa.NewOnlineRecognizer(&oc)
	if set.on == nil {
		return fmt.Errorf("%w: sherpa-onnx rejected the streaming model in %s (its log is on stderr)", ErrUnavailable, m.dir)
	}
	if s.offline != nil {
		o := *s.offline
		fc := sherpa.OfflineRecognizerConfig{
			FeatConfig:     sherpa.FeatureConfig{SampleRate: s.cfg.SampleRate, FeatureDim: o.featureDim},
			DecodingMethod: "greedy_search",
			MaxActivePaths: maxBeamPaths,
		}
		fc.ModelConfig.Tokens = o.tokens
		fc.ModelConfig.NumThreads = s.cfg.NumThreads
		fc.ModelConfig.Provider = "cpu"
		switch o.kind {
		case kindTransducer:
			fc.ModelConfig.Transducer = sherpa.OfflineTransducerModelConfig{Encoder: o.encoder, Decoder: o.decoder, Joiner: o.joiner}
			if hotwordsFile != "" && o.bpeVocab != "" {
				fc.DecodingMethod = "modified_beam_search"
				fc.ModelConfig.ModelingUnit = "bpe"
				fc.ModelConfig.BpeVocab = o.bpeVocab
				fc.HotwordsFile = hotwordsFile
				fc.HotwordsScore = float32(s.cfg.HotwordsScore)
			}
		case kindTdnnCTC:
			fc.ModelConfig.Tdnn.Model = o.model
		case kindNemoCTC:
			fc.ModelConfig.NemoCTC.Model = o.model
		}
		set.off = sherpa.NewOfflineRecognizer(&fc)
		if set.off == nil {
			sherpa.DeleteOnlineRecognizer(set.on)
			set.on = nil
			return fmt.Errorf("%w: sherpa-onnx rejected the offline model in %s (its log is on stderr)", ErrUnavailable, o.dir)
		}
	}
	s.log.Debug("sherpa recognisers loaded", "hotwords", strings.Count(hw, "\n"), "elapsed", time.Since(start))
	return nil
}

// writeFileAtomic writes data to path through a temporary file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hotwords-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// toFloat converts PCM to sherpa-onnx's [-1, 1] samples, reusing dst.
func toFloat(dst []float32, pcm []int16) []float32 {
	dst = dst[:0]
	for _, v := range pcm {
		dst = append(dst, float32(v)/32768)
	}
	return dst
}

// sherpaText normalizes a sherpa-onnx transcript: lower case, words of
// letters, digits and apostrophes.
func sherpaText(s string) Result {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '\'')
	})
	if len(words) == 0 {
		return Result{}
	}
	return Result{Text: strings.Join(words, " "), Confidence: 1, Words: len(words)}
}

// scored is a Result and whether its confidence came from the model.
type scored struct {
	Result
	scored bool
}

// scoredResult builds a Result from a JSON result: the text normalized,
// the confidence from the token scores when the model gives them (else 1
// for a non-empty text).
func scoredResult(sc sherpaScores, ok bool) scored {
	if !ok {
		return scored{}
	}
	res := sherpaText(sc.Text)
	if res.Text != "" {
		if c, ok := sc.confidence(); ok {
			res.Confidence = c
		}
	}
	return scored{Result: res, scored: true}
}

// sherpaStream is one streaming utterance.
type sherpaStream struct {
	s       *Sherpa
	set     *recognizerSet
	st      *sherpa.OnlineStream
	rs      *audio.Resampler
	pcm     []int16
	f       []float32
	samples int // 8 kHz samples written
	partial string
	started time.Time
	closed  bool
}

// Write resamples pcm, feeds it to the recogniser and decodes what is
// ready.
func (t *sherpaStream) Write(pcm []int16) error {
	if t.closed {
		return ErrClosed
	}
	if t.samples+len(pcm) > maxUtteranceSamples {
		return fmt.Errorf("%w: more than %d s", ErrTooLong, MaxUtteranceSeconds)
	}
	t.samples += len(pcm)
	t.pcm = t.rs.Process(t.pcm[:0], pcm)
	t.feed()
	return nil
}

func (t *sherpaStream) feed() {
	if len(t.pcm) == 0 {
		return
	}
	t.f = toFloat(t.f, t.pcm)
	t.st.AcceptWaveform(t.s.cfg.SampleRate, t.f)
	r := t.set.on
	if !r.IsReady(t.st) {
		return
	}
	for r.IsReady(t.st) {
		r.Decode(t.st)
	}
	t.partial = sherpaText(r.GetResult(t.st).Text).Text
}

// Partial is the hypothesis after the audio decoded so far.
func (t *sherpaStream) Partial() string {
	if t.closed {
		return ""
	}
	return t.partial
}

// Close flushes the audio, decodes the rest and frees the stream.
func (t *sherpaStream) Close(ctx context.Context) (Result, error) {
	if t.closed {
		return Result{}, ErrClosed
	}
	t.closed = true
	defer t.free()
	if t.samples == 0 {
		return Result{}, ErrEmptyAudio
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	t.pcm = t.rs.Flush(t.pcm[:0])
	t.pcm = append(t.pcm, make([]int16, int(tailPaddingSeconds*float64(t.s.cfg.SampleRate)))...)
	t.feed()
	t.st.InputFinished()
	r := t.set.on
	for r.IsReady(t.st) {
		r.Decode(t.st)
	}
	res := scoredResult(onlineScores(r, t.st))
	if !res.scored {
		res.Result = sherpaText(r.GetResult(t.st).Text)
	}
	t.s.metrics.observe(res.Result, float64(t.samples)/sampleRate, time.Since(t.started).Seconds())
	return res.Result, nil
}

func (t *sherpaStream) free() {
	sherpa.DeleteOnlineStream(t.st)
	t.st = nil
	t.partial = ""
	t.s.metrics.active.Dec()
	t.s.end(t.set)
}

// sherpaOffline transcribes whole recordings with the offline model.
type sherpaOffline struct{ s *Sherpa }

// Start begins a buffered utterance decoded at Close.
func (o sherpaOffline) Start(ctx context.Context, v Vocabulary) (Stream, error) {
	set, rs, err := o.s.begin(ctx, v)
	if err != nil {
		return nil, err
	}
	o.s.metrics.active.Inc()
	return &offlineStream{s: o.s, set: set, rs: rs, started: time.Now()}, nil
}

// offlineStream buffers resampled audio for one offline decode.
type offlineStream struct {
	s       *Sherpa
	set     *recognizerSet
	rs      *audio.Resampler
	pcm     []int16 // at the model's rate
	samples int
	started time.Time
	closed  bool
}

// Write buffers pcm, resampled.
func (t *offlineStream) Write(pcm []int16) error {
	if t.closed {
		return ErrClosed
	}
	if t.samples+len(pcm) > maxUtteranceSamples {
		return fmt.Errorf("%w: more than %d s", ErrTooLong, MaxUtteranceSeconds)
	}
	t.samples += len(pcm)
	t.pcm = t.rs.Process(t.pcm, pcm)
	return nil
}

// Partial is always "": the offline model decodes at Close.
func (t *offlineStream) Partial() string { return "" }

// Close decodes the buffered recording.
func (t *offlineStream) Close(ctx context.Context) (Result, error) {
	if t.closed {
		return Result{}, ErrClosed
	}
	t.closed = true
	defer func() {
		t.pcm = nil
		t.s.metrics.active.Dec()
		t.s.end(t.set)
	}()
	if t.samples == 0 {
		return Result{}, ErrEmptyAudio
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	t.pcm = t.rs.Flush(t.pcm)
	if len(t.pcm) == 0 {
		return Result{}, ErrEmptyAudio
	}
	st := sherpa.NewOfflineStream(t.set.off)
	defer sherpa.DeleteOfflineStream(st)
	st.AcceptWaveform(t.s.cfg.SampleRate, toFloat(nil, t.pcm))
	t.set.off.Decode(st)
	res := scoredResult(offlineScores(st))
	if !res.scored {
		if r := st.GetResult(); r != nil {
			res.Result = sherpaText(r.Text)
		}
	}
	t.s.metrics.observe(res.Result, float64(t.samples)/sampleRate, time.Since(t.started).Seconds())
	return res.Result, nil
}
