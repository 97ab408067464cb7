package tts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/koelvoice/koel/audio"
)

// maxSpeechResponseBytes caps the WAV a remote server may return.
const maxSpeechResponseBytes = 32 << 20

// defaultEspeakRate is espeak-ng's default rate; Voice.Rate is sent to an
// OpenAI server as speed = Rate / defaultEspeakRate.
const defaultEspeakRate = 175

// HTTPConfig configures the OpenAI-compatible speech backend.
type HTTPConfig struct {
	// BaseURL is the server root, e.g. "http://127.0.0.1:8000"; requests go
	// to BaseURL + "/v1/audio/speech". Required.
	BaseURL string
	// APIKey is sent as a bearer token. Secret: never logged.
	APIKey string
	// Model is the "model" field; default "tts-1".
	Model string
	// DefaultVoice is the "voice" when Voice.Name is empty; default "alloy".
	DefaultVoice string
	// Client is the HTTP client; default a new client.
	Client *http.Client
	// Timeout bounds one request; default 30 s.
	Timeout time.Duration
	// MaxTextBytes caps the text; default DefaultMaxTextBytes.
	MaxTextBytes int
}

// HTTP synthesizes with an OpenAI-compatible POST /v1/audio/speech server,
// asking for WAV and resampling it to 8 kHz. Safe for concurrent use.
type HTTP struct {
	endpoint string
	key      string
	model    string
	voice    string
	client   *http.Client
	timeout  time.Duration
	max      int
}

var _ Synthesizer = (*HTTP)(nil)

// NewHTTP checks cfg and returns the backend.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tts: HTTPConfig.BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	h := &HTTP{
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/v1/audio/speech",
		key:      cfg.APIKey, model: cfg.Model, voice: cfg.DefaultVoice,
		client: cfg.Client, timeout: cfg.Timeout, max: cfg.MaxTextBytes,
	}
	if h.model == "" {
		h.model = "tts-1"
	}
	if h.voice == "" {
		h.voice = "alloy"
	}
	if h.client == nil {
		h.client = &http.Client{}
	}
	if h.timeout == 0 {
		h.timeout = 30 * time.Second
	}
	if h.max == 0 {
		h.max = DefaultMaxTextBytes
	}
	if h.timeout < 0 || h.max < 0 {
		return nil, fmt.Errorf("tts: negative Timeout or MaxTextBytes")
	}
	return h, nil
}

type speechRequest struct {
	Model          string  `json:"model"`
	Input          string  `json:"input"`
	Voice          string  `json:"voice"`
	ResponseFormat string  `json:"response_format"`
	Speed          float64 `json:"speed,omitempty"`
}

// Synthesize posts the text and decodes the WAV answer.
func (h *HTTP) Synthesize(ctx context.Context, text string, v Voice) (audio.PCM, error) {
	t, err := checkText(text, h.max)
	if err != nil {
		return audio.PCM{}, err
	}
	if err := checkVoice(v); err != nil {
		return audio.PCM{}, err
	}
	req := speechRequest{Model: h.model, Input: t, Voice: v.Name, ResponseFormat: "wav"}
	if req.Voice == "" {
		req.Voice = h.voice
	}
	if v.Rate != 0 {
		req.Speed = float64(v.Rate) / defaultEspeakRate
	}
	body, err := json.Marshal(req)
	if err != nil {
		return audio.PCM{}, fmt.Errorf("tts: encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.endpoint, bytes.NewReader(body))
	if err != nil {
		return audio.PCM{}, fmt.Errorf("tts: build request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "audio/wav")
	if h.key != "" {
		hr.Header.Set("Authorization", "Bearer "+h.key)
	}
	resp, err := h.client.Do(hr)
	if err != nil {
		return audio.PCM{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return audio.PCM{}, fmt.Errorf("%w: status %d: %s", ErrRemote, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	p, err := audio.DecodeWAV(resp.Body, maxSpeechResponseBytes)
	if err != nil {
		return audio.PCM{}, fmt.Errorf("%w: decode audio: %w", ErrRemote, err)
	}
	if len(p.Samples) == 0 {
		return audio.PCM{}, fmt.Errorf("%w: empty audio", ErrRemote)
	}
	return to8k(p)
}
