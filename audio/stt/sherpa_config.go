package stt

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SherpaConfig configures the sherpa-onnx backend. Zero values take the
// documented defaults.
type SherpaConfig struct {
	// ModelDir holds a streaming (online) transducer: encoder*.onnx,
	// decoder*.onnx, joiner*.onnx and tokens.txt, optionally bpe.vocab
	// (needed for hotwords). Where a directory holds several variants of a
	// file, the .int8.onnx one is used. Required.
	ModelDir string
	// OfflineModelDir optionally holds a non-streaming model for whole
	// recordings (KooKoo): a transducer (encoder/decoder/joiner) or a CTC
	// model (model*.onnx whose metadata model_type is tdnn or a NeMo CTC
	// type), with tokens.txt. Empty: recordings go through the streaming
	// model.
	OfflineModelDir string
	// DataDir is where hotword lists are written. Required.
	DataDir string
	// SampleRate is the rate the models were trained on; koel's 8 kHz
	// telephone audio is resampled to it. Default 16000; 8000 for models
	// trained on telephone audio.
	SampleRate int
	// NumThreads per model run. Default 1.
	NumThreads int
	// PoolSize bounds the streams decoding at once. Default 4.
	PoolSize int
	// HotwordsScore is the context-biasing bonus per token of a vocabulary
	// phrase (sherpa-onnx's hotwords_score). Default 1.5; negative turns
	// hotwords off.
	HotwordsScore float64
	// MaxVocabularies bounds the recognisers kept loaded with distinct
	// hotword lists (sherpa-onnx fixes hotwords per recogniser, and each
	// holds its own copy of the model). Default 2.
	MaxVocabularies int
	// Probe, if set, is a command (program and arguments) that runs
	// [RunSherpaProbe] in a child process: NewSherpa has it load the
	// models and decode a second of audio before loading them in this
	// process, so a model sherpa-onnx or onnxruntime aborts on fails
	// start-up with its log instead of ending the server. koel serve
	// passes its own binary with the hidden command sherpa-probe.
	Probe []string
	// ProbeTimeout bounds the probe. Default 2 minutes.
	ProbeTimeout time.Duration
	// Logger receives warnings and debug lines. Default: discard.
	Logger *slog.Logger
	// Registerer, if set, receives the backend's metrics (the same
	// koel_stt_* names as the pocketsphinx backend).
	Registerer prometheus.Registerer
}

// sherpaProbeRequest is what the probe process is told on stdin.
type sherpaProbeRequest struct {
	ModelDir        string  `json:"model_dir"`
	OfflineModelDir string  `json:"offline_model_dir"`
	SampleRate      int     `json:"sample_rate"`
	NumThreads      int     `json:"num_threads"`
	HotwordsScore   float64 `json:"hotwords_score"`
}

// Limits of the sherpa backend's inputs.
const (
	maxTokens          = 1 << 20
	maxTokensFileBytes = 64 << 20
	maxSherpaThreads   = 64
	maxSherpaPool      = 256
	maxSherpaVocabs    = 64
)

func (c SherpaConfig) withDefaults() (SherpaConfig, error) {
	if c.ModelDir == "" {
		return c, errors.New("stt: sherpa: ModelDir is required")
	}
	if c.DataDir == "" {
		return c, errors.New("stt: sherpa: DataDir is required")
	}
	if c.SampleRate == 0 {
		c.SampleRate = 16000
	}
	if c.NumThreads <= 0 {
		c.NumThreads = 1
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 4
	}
	if c.HotwordsScore == 0 {
		c.HotwordsScore = 1.5
	}
	if c.MaxVocabularies <= 0 {
		c.MaxVocabularies = 2
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.SampleRate < 8000 || c.SampleRate > 48000:
		return c, fmt.Errorf("stt: sherpa: sample rate %d Hz: want 8000 to 48000", c.SampleRate)
	case c.NumThreads > maxSherpaThreads:
		return c, fmt.Errorf("stt: sherpa: %d threads: at most %d", c.NumThreads, maxSherpaThreads)
	case c.PoolSize > maxSherpaPool:
		return c, fmt.Errorf("stt: sherpa: pool size %d: at most %d", c.PoolSize, maxSherpaPool)
	case c.MaxVocabularies > maxSherpaVocabs:
		return c, fmt.Errorf("stt: sherpa: %d vocabularies: at most %d", c.MaxVocabularies, maxSherpaVocabs)
	}
	return c, nil
}

// sherpaModelKind is what a model directory holds.
type sherpaModelKind int

const (
	kindTransducer sherpaModelKind = iota + 1
	kindTdnnCTC
	kindNemoCTC
)

// sherpaModel is a validated model directory.
type sherpaModel struct {
	dir                      string
	kind                     sherpaModelKind
	encoder, decoder, joiner string // transducer
	model                    string // CTC
	tokens                   string
	bpeVocab                 string // "" when absent: no hotwords
	modelType                string // metadata model_type
	featureDim               int
	vocabSize                int
	upperCase                bool // word pieces are upper case (hotwords must match)
}

// requiredEncoderMeta lists the metadata each streaming transducer type
// must carry (sherpa-onnx exits the process when one is missing). From
// sherpa-onnx v1.12.25's online-*-transducer-model.cc.
var requiredEncoderMeta = map[string][]string{
	"lstm":          {"num_encoder_layers", "T", "decode_chunk_len", "rnn_hidden_size", "d_model"},
	"conformer":     {"num_encoder_layers", "T", "decode_chunk_len", "left_context", "encoder_dim", "pad_length", "cnn_module_kernel"},
	"zipformer":     {"encoder_dims", "attention_dims", "num_encoder_layers", "cnn_module_kernels", "left_context_len", "T", "decode_chunk_len"},
	"zipformer2":    {"encoder_dims", "query_head_dims", "value_head_dims", "num_heads", "num_encoder_layers", "cnn_module_kernels", "left_context_len", "T", "decode_chunk_len"},
	"ebranchformer": {"decode_chunk_len", "T", "num_hidden_layers", "hidden_size", "intermediate_size", "csgu_kernel_size", "merge_conv_kernel", "left_context_len", "num_heads", "head_dim"},
}

// offlineTransducerTypes are the encoder model_type values sherpa-onnx
// v1.12.25 loads as icefall offline transducers (it exits on others).
var offlineTransducerTypes = []string{"conformer", "zipformer", "zipformer2"}

// nemoCTCTypes are the model_type values sherpa-onnx loads as NeMo CTC.
var nemoCTCTypes = []string{"EncDecCTCModelBPE", "EncDecCTCModel", "EncDecHybridRNNTCTCBPEModel"}

// inspectSherpaModel validates a model directory before sherpa-onnx sees
// it. streaming says whether a streaming transducer is required. Errors
// wrap ErrUnavailable and name the file and what is wrong with it.
func inspectSherpaModel(dir string, streaming bool) (sherpaModel, error) {
	m, err := inspectModelDir(dir, streaming)
	if err != nil {
		return sherpaModel{}, fmt.Errorf("%w: sherpa model %s: %w", ErrUnavailable, dir, err)
	}
	return m, nil
}

func inspectModelDir(dir string, streaming bool) (sherpaModel, error) {
	m := sherpaModel{dir: dir}
	st, err := os.Stat(dir)
	if err != nil {
		return m, err
	}
	if !st.IsDir() {
		return m, errors.New("not a directory")
	}
	m.tokens = filepath.Join(dir, "tokens.txt")
	tokens, err := readTokens(m.tokens)
	if err != nil {
		return m, err
	}
	if p := filepath.Join(dir, "bpe.vocab"); fileExists(p) {
		m.bpeVocab = p
	}
	m.upperCase = mostlyUpper(tokens)

	enc, err := pickONNX(dir, "encoder")
	if err != nil {
		return m, err
	}
	if enc == "" {
		if streaming {
			return m, errors.New("no encoder*.onnx: a streaming transducer (encoder, decoder, joiner, tokens.txt) is needed")
		}
		return inspectCTC(m, len(tokens))
	}
	m.kind, m.encoder = kindTransducer, enc
	if m.decoder, err = pickONNX(dir, "decoder"); err == nil && m.decoder == "" {
		err = errors.New("no decoder*.onnx beside the encoder")
	}
	if err != nil {
		return m, err
	}
	if m.joiner, err = pickONNX(dir, "joiner"); err == nil && m.joiner == "" {
		err = errors.New("no joiner*.onnx beside the encoder")
	}
	if err != nil {
		return m, err
	}
	encInfo, err := readONNX(m.encoder)
	if err != nil {
		return m, err
	}
	decInfo, err := readONNX(m.decoder)
	if err != nil {
		return m, err
	}
	joinInfo, err := readONNX(m.joiner)
	if err != nil {
		return m, err
	}
	m.modelType = encInfo.meta["model_type"]
	if !streaming && !slices.Contains(offlineTransducerTypes, m.modelType) {
		return m, fmt.Errorf("%s: metadata model_type %q is not an offline transducer sherpa-onnx loads (want one of %s)", filepath.Base(m.encoder), m.modelType, strings.Join(offlineTransducerTypes, ", "))
	}
	if streaming {
		keys, ok := requiredEncoderMeta[m.modelType]
		if !ok {
			return m, fmt.Errorf("%s: metadata model_type %q is not a streaming transducer sherpa-onnx knows (want one of lstm, conformer, zipformer, zipformer2, ebranchformer)", filepath.Base(m.encoder), m.modelType)
		}
		if err := requireMeta(m.encoder, encInfo, keys...); err != nil {
			return m, err
		}
	}
	if err := requireMeta(m.decoder, decInfo, "vocab_size", "context_size"); err != nil {
		return m, err
	}
	m.vocabSize, _ = strconv.Atoi(decInfo.meta["vocab_size"])
	context, _ := strconv.Atoi(decInfo.meta["context_size"])
	if m.vocabSize != len(tokens) {
		return m, fmt.Errorf("%s: vocab_size %d but tokens.txt has %d tokens", filepath.Base(m.decoder), m.vocabSize, len(tokens))
	}
	if len(encInfo.inputs) == 0 || len(encInfo.outputs) == 0 || len(decInfo.inputs) != 1 || len(decInfo.outputs) != 1 ||
		len(joinInfo.inputs) != 2 || len(joinInfo.outputs) != 1 {
		return m, errors.New("encoder, decoder and joiner do not have a transducer's inputs and outputs (decoder: 1 in, 1 out; joiner: 2 in, 1 out)")
	}
	if streaming && m.modelType == "lstm" && (len(encInfo.inputs) != 3 || len(encInfo.outputs) != 3) {
		return m, fmt.Errorf("%s: an lstm encoder takes x, h, c and returns encoder_out, next_h, next_c; this one has %d inputs and %d outputs",
			filepath.Base(m.encoder), len(encInfo.inputs), len(encInfo.outputs))
	}
	checks := []struct {
		what string
		a, b int64
	}{
		{"encoder output width vs joiner's first input", encInfo.outputs[0].lastDim(), joinInfo.inputs[0].lastDim()},
		{"decoder output width vs joiner's second input", decInfo.outputs[0].lastDim(), joinInfo.inputs[1].lastDim()},
		{"joiner output width vs vocab_size", joinInfo.outputs[0].lastDim(), int64(m.vocabSize)},
		{"decoder input context vs context_size", decInfo.inputs[0].dim(1), int64(context)},
	}
	for _, c := range checks {
		if c.a > 0 && c.b > 0 && c.a != c.b {
			return m, fmt.Errorf("models do not fit together: %s: %d != %d", c.what, c.a, c.b)
		}
	}
	m.featureDim = int(encInfo.inputs[0].lastDim())
	if m.featureDim <= 0 {
		m.featureDim = 80
	}
	return m, nil
}

// inspectCTC validates a directory holding one CTC model.
func inspectCTC(m sherpaModel, tokens int) (sherpaModel, error) {
	model, err := pickONNX(m.dir, "model")
	if err != nil {
		return m, err
	}
	if model == "" {
		return m, errors.New("no encoder*.onnx (transducer) and no model*.onnx (CTC) in the directory")
	}
	info, err := readONNX(model)
	if err != nil {
		return m, err
	}
	m.model, m.modelType = model, info.meta["model_type"]
	switch {
	case m.modelType == "tdnn":
		m.kind = kindTdnnCTC
		err = requireMeta(model, info, "vocab_size")
	case slices.Contains(nemoCTCTypes, m.modelType):
		m.kind = kindNemoCTC
		err = requireMeta(model, info, "vocab_size", "subsampling_factor")
	default:
		return m, fmt.Errorf("%s: metadata model_type %q: koel loads offline transducers, tdnn and NeMo CTC (%s) models", filepath.Base(model), m.modelType, strings.Join(nemoCTCTypes, ", "))
	}
	if err != nil {
		return m, err
	}
	m.vocabSize, _ = strconv.Atoi(info.meta["vocab_size"])
	if m.vocabSize != tokens {
		return m, fmt.Errorf("%s: vocab_size %d but tokens.txt has %d tokens", filepath.Base(model), m.vocabSize, tokens)
	}
	if len(info.inputs) == 0 || len(info.outputs) == 0 {
		return m, fmt.Errorf("%s: no graph inputs or outputs", filepath.Base(model))
	}
	if d := info.outputs[0].lastDim(); d > 0 && d != int64(m.vocabSize) {
		return m, fmt.Errorf("%s: output width %d but vocab_size %d", filepath.Base(model), d, m.vocabSize)
	}
	m.featureDim = int(info.inputs[0].lastDim())
	if m.featureDim <= 0 {
		m.featureDim = 80
	}
	return m, nil
}

// requireMeta checks that info carries each key as a non-negative integer
// or a comma-separated list of them (sherpa-onnx's _VEC keys).
func requireMeta(path string, info onnxInfo, keys ...string) error {
	for _, k := range keys {
		v, ok := info.meta[k]
		if !ok || v == "" {
			return fmt.Errorf("%s: metadata %q is missing (export the model with icefall's or sherpa-onnx's export script)", filepath.Base(path), k)
		}
		for _, part := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(part)); err != nil || n < 0 {
				return fmt.Errorf("%s: metadata %q = %q: want non-negative integers", filepath.Base(path), k, v)
			}
		}
	}
	return nil
}

// pickONNX finds the one prefix*.onnx file in dir, preferring an int8
// variant when there are several. "" means none.
func pickONNX(dir, prefix string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, prefix+"*.onnx"))
	if err != nil {
		return "", err
	}
	switch len(matches) {
	case 0:
		return "", nil
	case 1:
		return matches[0], nil
	}
	var int8s []string
	for _, p := range matches {
		if strings.HasSuffix(p, ".int8.onnx") {
			int8s = append(int8s, p)
		}
	}
	if len(int8s) == 1 {
		return int8s[0], nil
	}
	names := make([]string, len(matches))
	for i, p := range matches {
		names[i] = filepath.Base(p)
	}
	return "", fmt.Errorf("several %s*.onnx files (%s): keep one, or one .int8.onnx variant", prefix, strings.Join(names, ", "))
}

// readTokens reads sherpa-onnx's tokens.txt: "piece id" per line, ids 0 to
// n-1 each once.
func readTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if st.Size() > maxTokensFileBytes {
		return nil, fmt.Errorf("tokens.txt: %d bytes: at most %d", st.Size(), maxTokensFileBytes)
	}
	var pieces []string
	seen := map[int]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" {
			continue
		}
		i := strings.LastIndexAny(text, " \t")
		id, err := strconv.Atoi(text[i+1:])
		if i < 0 || err != nil || id < 0 || id >= maxTokens || seen[id] {
			return nil, fmt.Errorf("tokens.txt line %d: want \"piece id\" with a new id, got %q", line, snippet([]byte(text)))
		}
		seen[id] = true
		piece := text[:max(i, 0)]
		if id >= len(pieces) {
			pieces = append(pieces, make([]string, id+1-len(pieces))...)
		}
		pieces[id] = piece
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens.txt: %w", err)
	}
	if len(pieces) == 0 {
		return nil, errors.New("tokens.txt is empty")
	}
	if len(seen) != len(pieces) {
		return nil, fmt.Errorf("tokens.txt: ids are not 0 to %d each once", len(pieces)-1)
	}
	return pieces, nil
}

// mostlyUpper says whether the word pieces' letters are mostly upper case
// (the LibriSpeech and GigaSpeech models), so hotwords are written the
// same way.
func mostlyUpper(pieces []string) bool {
	var upper, lower int
	for _, p := range pieces {
		for _, r := range p {
			switch {
			case r >= 'A' && r <= 'Z':
				upper++
			case r >= 'a' && r <= 'z':
				lower++
			}
		}
	}
	return upper > lower
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
