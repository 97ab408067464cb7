//go:build cgo && !nopocketsphinx

package stt

/*
#cgo pkg-config: pocketsphinx sphinxbase
#include <stdlib.h>
#include <time.h>
#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/ngram_model.h>
#include <sphinxbase/logmath.h>

// koel_init parses argv against ps_args() and creates a decoder. cgo cannot
// call the variadic cmd_ln_init, so the options go through cmd_ln_parse_r.
//
// sphinxbase logs through one process-wide FILE. Passing -logfn makes every
// ps_init open a new file and fclose the old one while other decoders may
// be writing to it (a use-after-free that crashed concurrent tests), so
// logging is switched off instead: with no file of ours open, this only
// sets a flag and is safe to repeat.
static ps_decoder_t *koel_init(int argc, char **argv) {
	err_set_logfp(NULL);
	cmd_ln_t *cfg = cmd_ln_parse_r(NULL, ps_args(), argc, argv, TRUE);
	if (cfg == NULL) {
		return NULL;
	}
	ps_decoder_t *ps = ps_init(cfg);
	cmd_ln_free_r(cfg); // ps_init retained its own reference
	return ps;
}

// koel_thread_ns is the calling thread's CPU time in nanoseconds, or -1.
static long long koel_thread_ns(void) {
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
		return -1;
	}
	return (long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec;
}

// koel_hyp copies out the hypothesis and its path score.
static char const *koel_hyp(ps_decoder_t *ps, int *score) {
	int32 s = 0;
	char const *h = ps_get_hyp(ps, &s);
	*score = (int)s;
	return h;
}

// koel_seg_next walks the segmentation of the best hypothesis. It returns
// the word (owned by the iterator, valid until the next call) and fills the
// frame range and acoustic score; it frees the iterator at the end.
static ps_seg_t *koel_seg_next(ps_seg_t *seg, char const **word, int *sf, int *ef, int *ascr) {
	if (seg == NULL) {
		return NULL;
	}
	*word = ps_seg_word(seg);
	ps_seg_frames(seg, sf, ef);
	int32 a = 0, l = 0, b = 0;
	ps_seg_prob(seg, &a, &l, &b);
	*ascr = (int)a;
	return seg;
}

// koel_cmn_reset sets the live cepstral mean to prior (n values) and its
// running sum to match, as if the decoder had just been created: the next
// utterance is normalised the same whatever the decoder heard before.
static void koel_cmn_reset(ps_decoder_t *ps, float const *prior, int n) {
	feat_t *f = ps_get_feat(ps);
	if (f == NULL || f->cmn_struct == NULL) {
		return;
	}
	cmn_t *c = f->cmn_struct;
	mfcc_t v[64];
	int i;
	for (i = 0; i < c->veclen && i < 64; i++) {
		v[i] = i < n ? (mfcc_t)prior[i] : 0;
	}
	cmn_live_set(c, v);
}

// koel_lm_open reads a language model (ARPA or sphinx binary) and returns
// it with its unigram count, or NULL.
static ngram_model_t *koel_lm_open(char const *path, logmath_t **lmath, int *n) {
	err_set_logfp(NULL);
	*lmath = logmath_init(1.0001, 0, 0);
	if (*lmath == NULL) {
		return NULL;
	}
	ngram_model_t *m = ngram_model_read(NULL, path, NGRAM_AUTO, *lmath);
	if (m == NULL) {
		logmath_free(*lmath);
		*lmath = NULL;
		return NULL;
	}
	*n = (int)ngram_model_get_counts(m)[0];
	return m;
}

// koel_lm_unigrams copies the n unigrams of m: their words (owned by m)
// and natural-log probabilities.
static int koel_lm_unigrams(ngram_model_t *m, logmath_t *lmath, char const **words, double *lnp, int n) {
	int wid;
	for (wid = 0; wid < n; wid++) {
		int32 used = 0;
		words[wid] = ngram_word(m, wid);
		lnp[wid] = logmath_log_to_ln(lmath, ngram_ng_prob(m, wid, NULL, 0, &used));
	}
	return n;
}

static void koel_lm_close(ngram_model_t *m, logmath_t *lmath) {
	ngram_model_free(m);
	logmath_free(lmath);
}

// koel_cmn_get copies the current cepstral mean into out (up to n values)
// and returns how many it copied.
static int koel_cmn_get(ps_decoder_t *ps, float *out, int n) {
	feat_t *f = ps_get_feat(ps);
	if (f == NULL || f->cmn_struct == NULL) {
		return 0;
	}
	cmn_t *c = f->cmn_struct;
	int i;
	for (i = 0; i < c->veclen && i < n; i++) {
		out[i] = (float)c->cmn_mean[i];
	}
	return i;
}

// koel_cmn_batch makes the next whole-utterance feature computation use
// the utterance's own cepstral mean. sphinxbase switches to live CMN for
// good the first time audio arrives in blocks, so it is set before each
// whole-utterance call.
static void koel_cmn_batch(ps_decoder_t *ps) {
	feat_t *f = ps_get_feat(ps);
	if (f != NULL) {
		f->cmn = CMN_BATCH;
	}
}

// koel_nbest_next advances an N-best iterator and copies out the
// hypothesis (owned by the iterator) and its path score. It returns NULL,
// having freed the iterator, when there are no more hypotheses.
static ps_nbest_t *koel_nbest_next(ps_nbest_t *nb, char const **hyp, int *score) {
	nb = ps_nbest_next(nb);
	if (nb == NULL) {
		return NULL;
	}
	int32 s = 0;
	*hyp = ps_nbest_hyp(nb, &s);
	*score = (int)s;
	return nb;
}

// koel_lattice returns the finished utterance's word lattice with link
// posteriors computed, or NULL when there is none (nothing heard, or a
// search without one). The lattice is owned by the decoder and valid until
// the next utterance starts. When recompute is 0 the posteriors that the
// decoder's own best-path pass computed (-bestpath yes, which ps_get_hyp
// runs) are reused; otherwise the best path and the posteriors are
// computed here with ascale, after the hypothesis, segmentation and N-best
// list have been read (they follow the best-path links this overwrites).
static ps_lattice_t *koel_lattice(ps_decoder_t *ps, char const *search, int recompute, float ascale) {
	ps_lattice_t *dag = ps_get_lattice(ps);
	if (dag == NULL) {
		return NULL;
	}
	if (recompute) {
		ngram_model_t *lm = ps_get_lm(ps, search);
		if (ps_lattice_bestpath(dag, lm, 1.0, ascale) == NULL) {
			return NULL;
		}
		ps_lattice_posterior(dag, lm, ascale);
	}
	return dag;
}

// koel_lattice_links copies up to n links of dag: the base word of the
// link's source node (the word the link carries), its start and end frame
// and its posterior as a natural-log probability. It returns how many
// links it copied, or -1 when dag has more than n.
static int koel_lattice_links(ps_lattice_t *dag, char const **words, int *sf, int *ef, double *lnpost, int n) {
	logmath_t *lmath = ps_lattice_get_logmath(dag);
	int i = 0;
	ps_latnode_iter_t *it;
	for (it = ps_latnode_iter(dag); it != NULL; it = ps_latnode_iter_next(it)) {
		ps_latnode_t *node = ps_latnode_iter_node(it);
		ps_latlink_iter_t *li;
		for (li = ps_latnode_exits(node); li != NULL; li = ps_latlink_iter_next(li)) {
			if (i >= n) {
				ps_latlink_iter_free(li);
				ps_latnode_iter_free(it);
				return -1;
			}
			ps_latlink_t *l = ps_latlink_iter_link(li);
			int16 s = 0;
			words[i] = ps_latlink_baseword(dag, l);
			ef[i] = ps_latlink_times(l, &s);
			sf[i] = s;
			lnpost[i] = logmath_log_to_ln(lmath, ps_latlink_prob(dag, l, NULL));
			i++;
		}
	}
	return i;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"
	"unsafe"
)

// threadCPU runs f with the calling goroutine locked to its OS thread and
// returns the CPU time that thread spent in f (0 if the clock cannot be
// read). f must not hand its work to other goroutines: their time is not
// counted. Unlike wall time it does not grow when other processes share
// the cores.
func threadCPU(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := C.koel_thread_ns()
	f()
	t1 := C.koel_thread_ns()
	if t0 < 0 || t1 < t0 {
		return 0
	}
	return time.Duration(t1 - t0)
}

// decoder is a thin, single-goroutine wrapper around ps_decoder_t. It is
// not safe for concurrent use: the pool hands each decoder to one stream at
// a time.
type decoder struct {
	ps      *C.ps_decoder_t
	inUtt   bool
	key     string // vocabulary currently loaded
	lastUse int64  // pool bookkeeping (monotonic counter)
}

// newDecoder creates a decoder from command-line style options
// ("-hmm", dir, "-dict", file, ...).
func newDecoder(args []string) (*decoder, error) {
	argv := make([]*C.char, len(args))
	for i, a := range args {
		argv[i] = C.CString(a)
	}
	defer func() {
		for _, p := range argv {
			C.free(unsafe.Pointer(p))
		}
	}()
	var argvp **C.char
	// The argv array itself must live in C memory: it holds pointers.
	carr := C.malloc(C.size_t(len(argv)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(carr)
	sl := unsafe.Slice((**C.char)(carr), len(argv))
	copy(sl, argv)
	argvp = (**C.char)(carr)
	ps := C.koel_init(C.int(len(argv)), argvp)
	if ps == nil {
		return nil, errors.New("pocketsphinx: decoder initialisation failed (see options and model files)")
	}
	return &decoder{ps: ps}, nil
}

// free releases the decoder's C memory. The decoder must not be used after.
func (d *decoder) free() {
	if d.ps != nil {
		C.ps_free(d.ps)
		d.ps = nil
	}
}

// loadVocabulary switches the decoder to another dictionary and search.
// search is "lm" (ARPA file) or "jsgf" (grammar file).
func (d *decoder) loadVocabulary(key, dict, kind, file string) error {
	cdict := C.CString(dict)
	defer C.free(unsafe.Pointer(cdict))
	if rc := C.ps_load_dict(d.ps, cdict, nil, nil); rc < 0 {
		return fmt.Errorf("pocketsphinx: load dictionary %s: code %d", dict, int(rc))
	}
	name := C.CString("koel")
	defer C.free(unsafe.Pointer(name))
	cfile := C.CString(file)
	defer C.free(unsafe.Pointer(cfile))
	var rc C.int
	switch kind {
	case "lm":
		rc = C.ps_set_lm_file(d.ps, name, cfile)
	case "jsgf":
		rc = C.ps_set_jsgf_file(d.ps, name, cfile)
	default:
		return fmt.Errorf("pocketsphinx: unknown search kind %q", kind)
	}
	if rc < 0 {
		return fmt.Errorf("pocketsphinx: load %s %s: code %d", kind, file, int(rc))
	}
	if rc := C.ps_set_search(d.ps, name); rc < 0 {
		return fmt.Errorf("pocketsphinx: activate search: code %d", int(rc))
	}
	d.key = key
	return nil
}

// start begins an utterance. With newStream the front end first starts a
// new stream (ps_start_stream): its voice-activity detector's noise
// statistics, which ps_start_utt keeps, go back to undefined, so the
// detector judges the utterance's first frames as a fresh decoder would.
// Without it the noise level estimated from the previous caller's audio
// decides which of this utterance's leading frames are silence and
// dropped, which moves the lattice's word posteriors (the text and N-best
// list stayed the same: TestSphinxLatticeHistoryFree).
func (d *decoder) start(newStream bool) error {
	if newStream {
		C.ps_start_stream(d.ps)
	}
	if rc := C.ps_start_utt(d.ps); rc < 0 {
		return fmt.Errorf("pocketsphinx: start utterance: code %d", int(rc))
	}
	d.inUtt = true
	return nil
}

// process feeds 16 kHz samples. C reads pcm during the call only.
func (d *decoder) process(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	rc := C.ps_process_raw(d.ps, (*C.int16)(unsafe.Pointer(&pcm[0])), C.size_t(len(pcm)), 0, 0)
	if rc < 0 {
		return fmt.Errorf("pocketsphinx: process audio: code %d", int(rc))
	}
	return nil
}

// processWhole feeds a whole utterance at once, normalised with its own
// cepstral mean (batch CMN).
func (d *decoder) processWhole(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	C.koel_cmn_batch(d.ps)
	rc := C.ps_process_raw(d.ps, (*C.int16)(unsafe.Pointer(&pcm[0])), C.size_t(len(pcm)), 0, 1)
	if rc < 0 {
		return fmt.Errorf("pocketsphinx: process audio: code %d", int(rc))
	}
	return nil
}

// cmnMean returns the decoder's current cepstral mean (after a CMNBatch
// utterance: that utterance's mean).
func (d *decoder) cmnMean() []float32 {
	out := make([]float32, 64)
	n := C.koel_cmn_get(d.ps, (*C.float)(unsafe.Pointer(&out[0])), 64)
	return out[:int(n)]
}

// resetCMN sets the live cepstral mean back to prior.
func (d *decoder) resetCMN(prior []float32) {
	if len(prior) == 0 {
		return
	}
	C.koel_cmn_reset(d.ps, (*C.float)(unsafe.Pointer(&prior[0])), C.int(len(prior)))
}

// nbest returns up to n hypotheses of the finished utterance, best first,
// with their path scores (raw, fillers included).
func (d *decoder) nbest(n int) []rawHyp {
	nb := C.ps_nbest(d.ps)
	var out []rawHyp
	for nb != nil && len(out) < n {
		var h *C.char
		var score C.int
		nb = C.koel_nbest_next(nb, &h, &score)
		if nb == nil {
			break
		}
		out = append(out, rawHyp{Text: C.GoString(h), Score: int(score)})
	}
	if nb != nil {
		C.ps_nbest_free(nb)
	}
	return out
}

// maxLatticeLinks bounds the links copied out of one lattice (a 4 s
// question's lattice has a few hundred with -maxwpf 10).
const maxLatticeLinks = 1 << 16

// lattice returns the links of the finished utterance's word lattice with
// their posteriors; nil when there is no lattice. With recompute false the
// decoder's own best-path posteriors are read (they exist with -bestpath
// yes once hyp has been called); with recompute true they are computed
// with ascale, which must come after hyp, segments and nbest.
func (d *decoder) lattice(recompute bool, ascale float64) ([]latticeLink, error) {
	name := C.CString("koel")
	defer C.free(unsafe.Pointer(name))
	rc := C.int(0)
	if recompute {
		rc = 1
	}
	dag := C.koel_lattice(d.ps, name, rc, C.float(ascale))
	if dag == nil {
		return nil, nil
	}
	n := 256
	for {
		words := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(uintptr(0))))
		ints := C.malloc(C.size_t(2*n) * C.size_t(unsafe.Sizeof(C.int(0))))
		lnp := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.double(0))))
		sf := (*C.int)(ints)
		ef := (*C.int)(unsafe.Add(ints, uintptr(n)*unsafe.Sizeof(C.int(0))))
		got := int(C.koel_lattice_links(dag, (**C.char)(words), sf, ef, (*C.double)(lnp), C.int(n)))
		var out []latticeLink
		if got >= 0 {
			ws := unsafe.Slice((**C.char)(words), got)
			ss := unsafe.Slice(sf, got)
			es := unsafe.Slice(ef, got)
			ps := unsafe.Slice((*C.double)(lnp), got)
			out = make([]latticeLink, 0, got)
			for i := range got {
				p := math.Exp(float64(ps[i]))
				out = append(out, latticeLink{Word: C.GoString(ws[i]), Start: int(ss[i]), End: int(es[i]), Posterior: min(max(p, 0), 1)})
			}
		}
		C.free(words)
		C.free(ints)
		C.free(lnp)
		if got >= 0 {
			return out, nil
		}
		if n >= maxLatticeLinks {
			return nil, fmt.Errorf("pocketsphinx: lattice has more than %d links", maxLatticeLinks)
		}
		n *= 4
	}
}

// end finishes the utterance.
func (d *decoder) end() error {
	if !d.inUtt {
		return nil
	}
	d.inUtt = false
	if rc := C.ps_end_utt(d.ps); rc < 0 {
		return fmt.Errorf("pocketsphinx: end utterance: code %d", int(rc))
	}
	return nil
}

// hyp returns the current best hypothesis and its path score.
func (d *decoder) hyp() (string, int) {
	var score C.int
	h := C.koel_hyp(d.ps, &score)
	if h == nil {
		return "", int(score)
	}
	return C.GoString(h), int(score)
}

// prob returns the log posterior of the final hypothesis (0 = certain).
func (d *decoder) prob() int {
	return int(C.ps_get_prob(d.ps))
}

// segments returns the word segmentation of the final hypothesis.
func (d *decoder) segments() []segment {
	var out []segment
	seg := C.ps_seg_iter(d.ps)
	for seg != nil {
		var w *C.char
		var sf, ef, ascr C.int
		C.koel_seg_next(seg, &w, &sf, &ef, &ascr)
		out = append(out, segment{Word: C.GoString(w), Start: int(sf), End: int(ef), Ascr: int(ascr)})
		seg = C.ps_seg_next(seg) // frees the iterator when it returns NULL
	}
	return out
}

// logMath converts a sphinx log-domain value to natural log.
func (d *decoder) logToLn(v int) float64 {
	return float64(C.logmath_log_to_ln(C.ps_get_logmath(d.ps), C.int(v)))
}

// readUnigrams returns the unigram log10 probabilities of the language
// model at path (ARPA or sphinx binary).
func readUnigrams(path string) (map[string]float64, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var lmath *C.logmath_t
	var n C.int
	m := C.koel_lm_open(cpath, &lmath, &n)
	if m == nil {
		return nil, fmt.Errorf("%w: cannot read language model %s", ErrUnavailable, path)
	}
	defer C.koel_lm_close(m, lmath)
	if n <= 0 || n > 1<<22 {
		return nil, fmt.Errorf("stt: language model %s: %d unigrams", path, int(n))
	}
	words := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(words)
	lnp := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.double(0))))
	defer C.free(lnp)
	got := int(C.koel_lm_unigrams(m, lmath, (**C.char)(words), (*C.double)(lnp), n))
	ws := unsafe.Slice((**C.char)(words), got)
	ps := unsafe.Slice((*C.double)(lnp), got)
	out := make(map[string]float64, got)
	for i := range got {
		if ws[i] == nil {
			continue
		}
		out[C.GoString(ws[i])] = float64(ps[i]) / math.Ln10
	}
	return out, nil
}
