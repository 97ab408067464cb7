//go:build cgo && !nopocketsphinx

package stt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koelvoice/koel/audio"
)

// maxDictBytes caps the pronunciation dictionary read at start-up.
const maxDictBytes = 64 << 20

// maxVocabEntries bounds the in-memory index of built vocabularies; built
// files stay on disk and are found again cheaply.
const maxVocabEntries = 1024

// Sphinx is the pocketsphinx backend: vocabulary-restricted recognition
// with a bounded pool of warm decoders. It is safe for concurrent use.
type Sphinx struct {
	cfg     SphinxConfig
	tune    tuning
	model   string
	log     *slog.Logger
	metrics *metrics

	lexOnce sync.Once
	lex     lexicon
	lexErr  error

	genOnce sync.Once
	gen     map[string]float64 // general-English words and probabilities
	genErr  error

	vmu    sync.Mutex
	vocabs map[string]*vocabEntry

	slots chan struct{} // one token per decoder in use

	cpu atomic.Int64 // nanoseconds of stream CPU time; see CPU

	prior []float32 // telephone cepstral mean, for CMNPrior
	fill  []int16   // band-fill loop at 16 kHz; nil when off

	mu     sync.Mutex
	idle   []*pooled // most recently used last
	total  int       // shared decoders (dedicated ones are not counted)
	closed bool
	// dedicated are the closed vocabularies (by files.Dir) whose decoders
	// are their own: see acquire.
	dedicated map[string]bool
}

// pooled is a decoder with its own upsampler; both are used by one stream
// at a time.
type pooled struct {
	d  *decoder
	rs *audio.Resampler
	// dedicated: the decoder serves one closed vocabulary for good; it is
	// never reloaded for another.
	dedicated bool
}

// vocabEntry is one vocabulary build, shared by concurrent first users.
type vocabEntry struct {
	ready chan struct{}
	files vocabFiles
	err   error
}

var _ Transcriber = (*Sphinx)(nil)

// NewSphinx prepares the telephone model directory under cfg.DataDir and
// returns the backend. Decoders are created on demand, up to PoolSize. A
// missing acoustic model is an error wrapping ErrUnavailable.
func NewSphinx(cfg SphinxConfig) (*Sphinx, error) {
	return newSphinx(cfg, defaultTuning())
}

// newSphinx is NewSphinx with explicit tuning (tests try alternatives).
func newSphinx(cfg SphinxConfig, tune tuning) (*Sphinx, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	switch {
	case c.GeneralWords < 0:
		tune.lm.generalWords = 0
	case c.GeneralWords > 0:
		tune.lm.generalWords = c.GeneralWords
	}
	if c.GeneralWeight > 0 {
		tune.lm.generalWeight = c.GeneralWeight
	}
	if _, err := os.Stat(filepath.Join(c.ModelDir, "cmudict-en-us.dict")); err != nil {
		return nil, fmt.Errorf("%w: dictionary: %w", ErrUnavailable, err)
	}
	model, err := prepareModel(c.ModelDir, c.DataDir, tune.feat)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(c.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Sphinx{
		cfg: c, tune: tune, model: model, log: c.Logger, metrics: m,
		vocabs: map[string]*vocabEntry{},
		slots:  make(chan struct{}, c.PoolSize),
		prior:  cmnPrior(!c.NoBandFill),
	}
	if !c.NoBandFill {
		s.fill = bandFill(c.BandFillDBFS)
	}
	return s, nil
}

// lexicon loads the pronunciation dictionary once.
func (s *Sphinx) lexicon() (lexicon, error) {
	s.lexOnce.Do(func() {
		f, err := os.Open(filepath.Join(s.cfg.ModelDir, "cmudict-en-us.dict"))
		if err != nil {
			s.lexErr = fmt.Errorf("%w: dictionary: %w", ErrUnavailable, err)
			return
		}
		defer f.Close()
		s.lex, s.lexErr = parseDict(f, maxDictBytes)
	})
	return s.lex, s.lexErr
}

// general loads the general-English words once: the tune.lm.generalWords
// most frequent words of the model's general language model that have a
// pronunciation, with their probabilities renormalised to sum to 1.
func (s *Sphinx) general(lex lexicon) (map[string]float64, error) {
	if s.tune.lm.generalWords <= 0 || s.tune.lm.generalWeight <= 0 {
		return nil, nil
	}
	s.genOnce.Do(func() {
		uni, err := readUnigrams(filepath.Join(s.cfg.ModelDir, "en-us.lm.bin"))
		if err != nil {
			s.genErr = fmt.Errorf("stt: general English model: %w", err)
			return
		}
		s.gen = topWords(uni, lex, s.tune.lm.generalWords)
	})
	return s.gen, s.genErr
}

// vocabulary returns v's built files, building them on first use. Callers
// asking for the same vocabulary concurrently share one build.
func (s *Sphinx) vocabulary(ctx context.Context, v Vocabulary) (vocabFiles, error) {
	if err := validateVocabulary(v); err != nil {
		return vocabFiles{}, err
	}
	name := vocabDirName(v, s.tune)
	s.vmu.Lock()
	e, ok := s.vocabs[name]
	if !ok {
		if len(s.vocabs) >= maxVocabEntries {
			for k, old := range s.vocabs {
				select {
				case <-old.ready:
					delete(s.vocabs, k)
				default:
				}
				if len(s.vocabs) < maxVocabEntries/2 {
					break
				}
			}
		}
		e = &vocabEntry{ready: make(chan struct{})}
		s.vocabs[name] = e
	}
	s.vmu.Unlock()
	if !ok {
		start := time.Now()
		lex, err := s.lexicon()
		var gen map[string]float64
		if err == nil {
			gen, err = s.general(lex)
		}
		if err == nil {
			e.files, err = buildVocab(filepath.Join(s.cfg.DataDir, "vocab"), v, lex, s.tune, gen)
		}
		e.err = err
		if err != nil {
			// Do not cache failures: the next call retries.
			s.vmu.Lock()
			delete(s.vocabs, name)
			s.vmu.Unlock()
		} else {
			s.log.Debug("stt vocabulary ready", "key", v.Key, "words", len(e.files.Words), "dir", e.files.Dir, "seconds", time.Since(start).Seconds())
		}
		close(e.ready)
	}
	select {
	case <-e.ready:
		return e.files, e.err
	case <-ctx.Done():
		return vocabFiles{}, fmt.Errorf("stt: wait for vocabulary: %w", ctx.Err())
	}
}

// Start begins an utterance restricted to v. It blocks while PoolSize
// decoders are busy, until one is free or ctx ends.
func (s *Sphinx) Start(ctx context.Context, v Vocabulary) (Stream, error) {
	files, err := s.vocabulary(ctx, v)
	if err != nil {
		return nil, err
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("stt: wait for a decoder: %w", ctx.Err())
	}
	p, err := s.acquire(files, v.Closed)
	if err != nil {
		<-s.slots
		return nil, err
	}
	if s.cfg.CMN == CMNPrior {
		p.d.resetCMN(s.prior)
	}
	// CMNCarry keeps all of pocketsphinx's carried state, for measurement.
	if err := p.d.start(s.cfg.CMN != CMNCarry); err != nil {
		s.discard(p)
		return nil, err
	}
	s.metrics.active.Inc()
	return &sphinxStream{s: s, p: p, words: files.Words, begun: time.Now()}, nil
}

// result reads the finished utterance's hypothesis and its alternatives
// off p.
func (s *Sphinx) result(p *pooled, words map[string]bool) Result {
	h, _ := p.d.hyp()
	r := scoreResult(cleanHyp(h, words), p.d.segments(), words)
	if r.Text != "" && s.cfg.NBest > 0 {
		r.Alternatives = alternatives(p.d.nbest(s.cfg.NBest), r.Text, words, p.d.logToLn(1), s.cfg.NBestScale)
	}
	if r.Text != "" && s.cfg.Lattice {
		// Last: recomputing the posteriors overwrites the best-path links
		// the segmentation and the N-best list follow.
		scale, recompute := s.cfg.LatticeScale, s.cfg.LatticeScale > 0
		if !recompute && !s.bestPath() {
			scale, recompute = defaultAcousticScale, true
		}
		links, err := p.d.lattice(recompute, scale)
		if err != nil {
			s.log.Warn("stt lattice not read", "err", err)
		}
		r.Lattice = wordPosteriors(links, words, DefaultLatticeFloor)
	}
	return r
}

// defaultAcousticScale is pocketsphinx's default acoustic scale for
// lattice posteriors (1 / -ascale 20).
const defaultAcousticScale = 1.0 / 20

// bestPath reports whether the decoder runs its best-path pass, which
// computes the lattice posteriors as it goes.
func (s *Sphinx) bestPath() bool {
	args := mergeArgs(s.tune.args, s.cfg.DecoderArgs)
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "-bestpath" {
			v := strings.ToLower(args[i+1])
			return !(v == "no" || v == "false" || v == "0")
		}
	}
	return true
}

// acquire returns a decoder loaded with files. The caller holds a slot.
//
// A closed vocabulary (the yes/no and digits passes) gets decoders of its
// own, up to maxDedicatedVocabularies of them, that are never reloaded:
// reloading a decoder in place (ps_load_dict and ps_set_lm_file) keeps C
// memory in pocketsphinx 5prealpha, and so does freeing one and creating
// another. Measured on koel serve under `koel load kookoo -c 4 -pace=false`
// (the demo FAQ, yes/no and digits vocabularies), memory outside the Go
// heap: 28.6 -> 68 MB over 1,000 utterances with 4 shared decoders
// switching in place (198 switches), 34 -> 94 MB over 840 when a switch
// freed and recreated the decoder, and 47.0 -> 48.5 MB over 900 with a
// decoder per vocabulary. Each closed vocabulary has at most PoolSize
// decoders (the slots bound the streams in flight), and they do not count
// against the PoolSize shared ones.
func (s *Sphinx) acquire(files vocabFiles, closed bool) (*pooled, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	dedicated := closed && s.dedicate(files.Dir)
	var p *pooled
	for i := len(s.idle) - 1; i >= 0; i-- {
		if s.idle[i].d.key == files.Dir {
			p = s.idle[i]
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			break
		}
	}
	if p == nil && !dedicated && s.total >= s.cfg.PoolSize {
		// Reuse the least recently used shared decoder for another
		// vocabulary. One is idle: the slots bound the decoders in use.
		for i, q := range s.idle {
			if !q.dedicated {
				p = q
				s.idle = append(s.idle[:i], s.idle[i+1:]...)
				break
			}
		}
	}
	if p == nil && !dedicated {
		s.total++
	}
	s.mu.Unlock()

	if p != nil && p.d.key == files.Dir {
		return p, nil
	}
	if p != nil {
		if err := p.d.loadVocabulary(files.Dir, files.Dict, s.searchKind(), s.searchFile(files)); err != nil {
			// The slot keeps its place in total: a new decoder replaces
			// the broken one below.
			s.log.Warn("stt decoder vocabulary switch failed; recreating", "err", err)
			p.d.free()
			s.metrics.decoders.Dec()
		} else {
			s.metrics.switches.Inc()
			return p, nil
		}
	}
	p, err := s.newPooled(files)
	if err != nil {
		if !dedicated {
			s.mu.Lock()
			s.total--
			s.mu.Unlock()
		}
		return nil, err
	}
	p.dedicated = dedicated
	return p, nil
}

// maxDedicatedVocabularies bounds the closed vocabularies with decoders of
// their own; closed vocabularies past it share the pool.
const maxDedicatedVocabularies = 4

// dedicate reports whether the closed vocabulary in dir has (or now gets)
// decoders of its own. s.mu is held.
func (s *Sphinx) dedicate(dir string) bool {
	if s.dedicated[dir] {
		return true
	}
	if len(s.dedicated) >= maxDedicatedVocabularies {
		return false
	}
	if s.dedicated == nil {
		s.dedicated = map[string]bool{}
	}
	s.dedicated[dir] = true
	return true
}

func (s *Sphinx) searchKind() string {
	if s.cfg.Search == SearchGrammar {
		return "jsgf"
	}
	return "lm"
}

func (s *Sphinx) searchFile(f vocabFiles) string {
	if s.cfg.Search == SearchGrammar {
		return f.Grammar
	}
	return f.LM
}

// newPooled creates a decoder for files.
func (s *Sphinx) newPooled(files vocabFiles) (*pooled, error) {
	start := time.Now()
	args := []string{"-hmm", s.model, "-dict", files.Dict}
	if s.cfg.Search == SearchGrammar {
		args = append(args, "-jsgf", files.Grammar)
	} else {
		args = append(args, "-lm", files.LM)
		args = append(args, s.tune.lmArgs...)
	}
	args = mergeArgs(append(args, s.tune.args...), s.cfg.DecoderArgs)
	d, err := newDecoder(args)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d.key = files.Dir
	rs, err := audio.NewResampler(audio.SampleRate, decoderRate)
	if err != nil {
		d.free()
		return nil, fmt.Errorf("stt: upsampler: %w", err)
	}
	s.metrics.decoders.Inc()
	s.log.Debug("stt decoder created", "seconds", time.Since(start).Seconds())
	return &pooled{d: d, rs: rs}, nil
}

// release returns a decoder to the pool and frees its slot.
func (s *Sphinx) release(p *pooled) {
	s.mu.Lock()
	if s.closed {
		s.uncount(p)
		s.mu.Unlock()
		p.d.free()
		s.metrics.decoders.Dec()
		<-s.slots
		return
	}
	s.idle = append(s.idle, p)
	s.mu.Unlock()
	<-s.slots
}

// discard frees a decoder in an unknown state and frees its slot.
func (s *Sphinx) discard(p *pooled) {
	p.d.free()
	s.metrics.decoders.Dec()
	s.mu.Lock()
	s.uncount(p)
	s.mu.Unlock()
	<-s.slots
}

// uncount drops a freed decoder from total. s.mu is held.
func (s *Sphinx) uncount(p *pooled) {
	if !p.dedicated {
		s.total--
	}
}

// Close frees the idle decoders; decoders in use are freed when their
// streams close. Start fails with ErrClosed afterwards. Close is idempotent.
func (s *Sphinx) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	for _, p := range idle {
		s.uncount(p)
	}
	s.closed = true
	s.mu.Unlock()
	for _, p := range idle {
		p.d.free()
		s.metrics.decoders.Dec()
	}
	return nil
}

// sphinxStream is one utterance on a pooled decoder.
type sphinxStream struct {
	s      *Sphinx
	p      *pooled
	words  map[string]bool
	buf    []int16
	whole  []int16       // CMNBatch: the utterance at 16 kHz, decoded at Close
	fillAt int           // position in the band-fill loop
	cpu    time.Duration // thread CPU spent in Write and Close
	n      int           // 8 kHz samples written
	begun  time.Time
	closed bool
	err    error // sticky decoder error
}

// Write upsamples pcm and feeds it to the decoder.
func (st *sphinxStream) Write(pcm []int16) error {
	switch {
	case st.closed:
		return ErrClosed
	case st.err != nil:
		return st.err
	case st.n+len(pcm) > maxUtteranceSamples:
		return fmt.Errorf("%w: more than %d s", ErrTooLong, MaxUtteranceSeconds)
	}
	var err error
	st.cpu += threadCPU(func() { err = st.write(pcm) })
	return err
}

// write is Write's work: upsampling, band fill and decoding.
func (st *sphinxStream) write(pcm []int16) error {
	st.n += len(pcm)
	st.buf = st.p.rs.Process(st.buf[:0], pcm)
	st.fillAt = addFill(st.buf, st.s.fill, st.fillAt)
	if st.s.cfg.CMN == CMNBatch {
		st.whole = append(st.whole, st.buf...)
		return nil
	}
	if err := st.p.d.process(st.buf); err != nil {
		st.err = err
		return err
	}
	return nil
}

// Partial returns the best hypothesis so far, without fillers.
func (st *sphinxStream) Partial() string {
	if st.closed || st.err != nil || st.s.cfg.CMN == CMNBatch {
		return ""
	}
	h, _ := st.p.d.hyp()
	return cleanHyp(h, st.words)
}

// Close finishes the utterance, returns the decoder to the pool and
// computes the result.
func (st *sphinxStream) Close(ctx context.Context) (Result, error) {
	if st.closed {
		return Result{}, ErrClosed
	}
	st.closed = true
	s, p := st.s, st.p
	st.p = nil
	defer s.metrics.active.Dec()
	defer func() { s.addCPU(st.cpu) }()
	if st.err != nil {
		s.discard(p)
		return Result{}, st.err
	}
	if err := ctx.Err(); err != nil {
		_ = p.d.end()
		p.rs.Flush(nil)
		s.release(p)
		return Result{}, fmt.Errorf("stt: close: %w", err)
	}
	var res Result
	var err error
	st.cpu += threadCPU(func() { res, err = st.finish(p) })
	switch {
	case errors.Is(err, ErrEmptyAudio):
		s.release(p)
		return Result{}, err
	case err != nil:
		s.discard(p)
		return Result{}, err
	}
	s.release(p)
	audioSec := float64(st.n) / sampleRate
	s.metrics.observe(res, audioSec, time.Since(st.begun).Seconds())
	return res, nil
}

// finish decodes the rest of the utterance on p and reads its result. An
// error other than ErrEmptyAudio leaves p in an unknown state.
func (st *sphinxStream) finish(p *pooled) (Result, error) {
	s := st.s
	st.buf = p.rs.Flush(st.buf[:0])
	st.fillAt = addFill(st.buf, s.fill, st.fillAt)
	var err error
	if s.cfg.CMN == CMNBatch {
		err = p.d.processWhole(append(st.whole, st.buf...))
		st.whole = nil
	} else {
		err = p.d.process(st.buf)
	}
	if err == nil {
		err = p.d.end()
	}
	if err != nil {
		return Result{}, err
	}
	if st.n == 0 {
		return Result{}, ErrEmptyAudio
	}
	return s.result(p, st.words), nil
}

// CPU is the CPU time the recogniser's streams have spent so far in their
// own threads: upsampling, decoding and reading results (Write and Close),
// summed over all streams. It does not grow with other processes' load as
// wall time does, so it measures the decoder on a shared machine.
func (s *Sphinx) CPU() time.Duration { return time.Duration(s.cpu.Load()) }

// addCPU records one stream's CPU time.
func (s *Sphinx) addCPU(d time.Duration) {
	s.cpu.Add(int64(d))
	s.metrics.cpu.Add(d.Seconds())
}

// mergeArgs returns base with each "-name value" pair of extra applied: an
// option base already has takes extra's value, others are appended
// (pocketsphinx refuses an option given twice).
func mergeArgs(base, extra []string) []string {
	out := slices.Clone(base)
next:
	for i := 0; i+1 < len(extra); i += 2 {
		for j := 0; j+1 < len(out); j += 2 {
			if out[j] == extra[i] {
				out[j+1] = extra[i+1]
				continue next
			}
		}
		out = append(out, extra[i], extra[i+1])
	}
	return out
}
