package stt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/koelvoice/koel/audio"
)

// maxTranscriptionResponseBytes caps a remote server's answer.
const maxTranscriptionResponseBytes = 1 << 20

// maxPromptBytes caps the vocabulary hint sent as "prompt".
const maxPromptBytes = 800

// HTTPConfig configures the OpenAI-compatible transcription backend.
type HTTPConfig struct {
	// BaseURL is the server root, e.g. "http://127.0.0.1:8080"; requests go
	// to BaseURL + "/v1/audio/transcriptions". Required.
	BaseURL string
	// APIKey is sent as a bearer token. Secret: never logged.
	APIKey string
	// Model is the "model" form field; default "whisper-1".
	Model string
	// Language is the optional ISO-639-1 "language" field, e.g. "en".
	Language string
	// Client is the HTTP client; default a new client.
	Client *http.Client
	// Timeout bounds one request; default 30 s.
	Timeout time.Duration
}

// HTTP transcribes with an OpenAI-compatible POST /v1/audio/transcriptions
// server (for example a whisper server). Streams buffer the audio and send
// it as one 8 kHz WAV on Close; Partial is always "". The vocabulary's
// phrases are sent as the "prompt" hint. Safe for concurrent use.
type HTTP struct {
	endpoint string
	key      string
	model    string
	language string
	client   *http.Client
	timeout  time.Duration
}

var _ Transcriber = (*HTTP)(nil)

// NewHTTP checks cfg and returns the backend.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("stt: HTTPConfig.BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	h := &HTTP{
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/v1/audio/transcriptions",
		key:      cfg.APIKey, model: cfg.Model, language: cfg.Language,
		client: cfg.Client, timeout: cfg.Timeout,
	}
	if h.model == "" {
		h.model = "whisper-1"
	}
	if h.client == nil {
		h.client = &http.Client{}
	}
	if h.timeout == 0 {
		h.timeout = 30 * time.Second
	}
	if h.timeout < 0 {
		return nil, fmt.Errorf("stt: negative HTTPConfig.Timeout")
	}
	return h, nil
}

// Start begins a buffered utterance.
func (h *HTTP) Start(ctx context.Context, v Vocabulary) (Stream, error) {
	if err := validateVocabulary(v); err != nil {
		return nil, err
	}
	return &httpStream{h: h, prompt: prompt(v.Phrases)}, nil
}

// prompt joins phrases into a hint of at most maxPromptBytes.
func prompt(phrases []string) string {
	var b strings.Builder
	for _, p := range phrases {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if b.Len()+len(p)+2 > maxPromptBytes {
			break
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p)
	}
	return b.String()
}

type httpStream struct {
	h      *HTTP
	prompt string
	pcm    []int16
	closed bool
}

func (s *httpStream) Write(pcm []int16) error {
	if s.closed {
		return ErrClosed
	}
	if len(s.pcm)+len(pcm) > maxUtteranceSamples {
		return fmt.Errorf("%w: more than %d s", ErrTooLong, MaxUtteranceSeconds)
	}
	s.pcm = append(s.pcm, pcm...)
	return nil
}

func (s *httpStream) Partial() string { return "" }

// transcription is the JSON answer (response_format=json or
// verbose_json).
type transcription struct {
	Text     string `json:"text"`
	Segments []struct {
		AvgLogprob   float64 `json:"avg_logprob"`
		NoSpeechProb float64 `json:"no_speech_prob"`
	} `json:"segments"`
}

func (s *httpStream) Close(ctx context.Context) (Result, error) {
	if s.closed {
		return Result{}, ErrClosed
	}
	s.closed = true
	pcm := s.pcm
	s.pcm = nil
	if len(pcm) == 0 {
		return Result{}, ErrEmptyAudio
	}
	h := s.h
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "utterance.wav")
	if err != nil {
		return Result{}, fmt.Errorf("stt: build request: %w", err)
	}
	if err := audio.EncodeWAV(fw, audio.PCM{Rate: sampleRate, Samples: pcm}, audio.EncodingPCM16); err != nil {
		return Result{}, fmt.Errorf("stt: encode audio: %w", err)
	}
	fields := [][2]string{{"model", h.model}, {"response_format", "verbose_json"}, {"temperature", "0"}}
	if h.language != "" {
		fields = append(fields, [2]string{"language", h.language})
	}
	if s.prompt != "" {
		fields = append(fields, [2]string{"prompt", s.prompt})
	}
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return Result{}, fmt.Errorf("stt: build request: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return Result{}, fmt.Errorf("stt: build request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.endpoint, &body)
	if err != nil {
		return Result{}, fmt.Errorf("stt: build request: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if h.key != "" {
		req.Header.Set("Authorization", "Bearer "+h.key)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTranscriptionResponseBytes+1))
	if err != nil {
		return Result{}, fmt.Errorf("%w: read answer: %w", ErrRemote, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("%w: status %d: %s", ErrRemote, resp.StatusCode, snippet(data))
	}
	if len(data) > maxTranscriptionResponseBytes {
		return Result{}, fmt.Errorf("%w: answer larger than %d bytes", ErrRemote, maxTranscriptionResponseBytes)
	}
	return parseTranscription(data)
}

// parseTranscription reads a JSON transcription answer. Confidence comes
// from the segments when the server sends them (verbose_json: the mean
// per-token probability, times the probability that there was speech),
// else it is 1 for a non-empty text.
func parseTranscription(data []byte) (Result, error) {
	var t transcription
	if err := json.Unmarshal(data, &t); err != nil {
		return Result{}, fmt.Errorf("%w: decode answer: %w", ErrRemote, err)
	}
	words := normalize(t.Text)
	if len(words) == 0 {
		return Result{}, nil
	}
	conf := 1.0
	if len(t.Segments) > 0 {
		var lp, ns float64
		for _, s := range t.Segments {
			lp += s.AvgLogprob
			ns += s.NoSpeechProb
		}
		n := float64(len(t.Segments))
		conf = clamp01(expNeg(-lp/n) * (1 - ns/n))
	}
	return Result{Text: strings.Join(words, " "), Confidence: conf, Words: len(words)}, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
