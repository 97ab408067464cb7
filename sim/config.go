package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/audio/tts"
)

// Dial outcomes the emulator reports for a <dial> (KooKoo's Dial event
// status).
const (
	DialAnswered    = "answered"
	DialNotAnswered = "not_answered"
	// DialBusy is not in KooKoo's documentation, which lists answered and
	// not_answered only; the emulator offers it to drive an app's third
	// branch.
	DialBusy = "busy"
)

// Defaults applied by [New] to zero fields of [Config].
const (
	DefaultMaxCalls          = 100
	DefaultAppTimeout        = 10 * time.Second
	DefaultMaxAppBodyBytes   = 1 << 20
	DefaultMaxAudioBytes     = 20 << 20 // KooKoo's cache takes WAVs under 20 MB
	DefaultMaxRecordingBytes = 256 << 20
	DefaultRecordingTTL      = time.Hour
	DefaultMaxCallDuration   = 30 * time.Minute
	DefaultCalledNumber      = "918065740671"
	DefaultInitialSilence    = 5 * time.Second
	DefaultDialRingTime      = 2 * time.Second
	DefaultOffersPerMinute   = 10
)

// Config configures a [Sim]. Zero values mean the documented default.
type Config struct {
	// Logger receives the sim's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the sim's metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// TTS speaks playtext and say-as (8 kHz out). Required.
	TTS tts.Synthesizer
	// STT transcribes the caller while a <record> runs, for the fast path
	// and the page's live transcript. Nil disables both.
	STT stt.Transcriber
	// Vocabulary returns the speech vocabulary of a connection for the
	// fast path. Nil uses an empty vocabulary (the engine's default).
	Vocabulary func(ctx context.Context, connection string) (stt.Vocabulary, error)
	// App is koel's router; in-process calls go to /kookoo/{connection} on
	// it, as do playaudio and gotourl URLs under PublicBaseURL. Nil
	// disables connection calls (only app URLs work).
	App http.Handler
	// AllowURL is the policy for every URL the sim fetches from the
	// network on a user's or an app's behalf (app URLs, gotourl, playaudio):
	// a non-nil error refuses the URL. Nil allows any http or https URL;
	// servers reachable from the internet must pass a policy.
	AllowURL func(*url.URL) error
	// PublicBaseURL is how recording URLs are written, e.g.
	// http://127.0.0.1:8080 (no trailing slash needed). Default
	// http://127.0.0.1:8080.
	PublicBaseURL string
	// MaxCalls caps concurrent calls (default 100); more get 503.
	MaxCalls int
	// MaxHandshakes caps the offers negotiating at once, from the offer
	// to the media connected (ICE and DTLS); more wait for a slot, up to
	// 15 s, then get 503 (default 8). A burst of new calls so queues
	// instead of starving the media of the calls in progress.
	MaxHandshakes int
	// DialOutcome is the simulated result of <dial> when the offer does
	// not choose one: [DialAnswered], [DialNotAnswered] (default) or
	// [DialBusy].
	DialOutcome string
	// DialDuration is how long an answered <dial> talks (callduration)
	// when the offer does not say; default 0.
	DialDuration time.Duration
	// DialRingTime is how long a <dial> rings before a not_answered or
	// busy outcome, and before an answered one connects (default 2 s), so
	// that an app that redials on not_answered does not spin.
	DialRingTime time.Duration
	// Open accepts offers without a token and without a rate limit:
	// development mode. Otherwise an offer needs Token (see
	// [Sim.SignLink]) and each client address gets OffersPerMinute.
	Open bool
	// Token authorizes offers outside development mode, as
	// "Authorization: Bearer <Token>" or a link token signed with it.
	// Empty (and not Open) refuses every offer.
	Token string
	// OffersPerMinute caps offers per client address outside development
	// mode (default 10, bursts of half that).
	OffersPerMinute int
	// CheckConnection reports whether a koel connection exists before an
	// offer for it takes a slot; an error wrapping [ErrUnknownConnection]
	// is answered 404. Nil accepts any well-formed identifier.
	CheckConnection func(ctx context.Context, connection string) error
	// Voice is the text-to-speech voice for playtext and say-as.
	Voice tts.Voice

	// AppTimeout bounds each request to the app (default 10 s).
	AppTimeout time.Duration
	// MaxAppBodyBytes caps an app's response (default 1 MiB).
	MaxAppBodyBytes int64
	// MaxAudioBytes caps a playaudio download (default 20 MiB).
	MaxAudioBytes int64
	// MaxRecordingBytes caps the WAV bytes kept in memory for
	// /sim/recordings (default 256 MiB); the oldest go first.
	MaxRecordingBytes int64
	// RecordingTTL is how long a recording stays served (default 1 h).
	RecordingTTL time.Duration
	// MaxCallDuration ends calls that run longer (default 30 min).
	MaxCallDuration time.Duration
	// InitialSilence is how long a <record> waits for speech to start
	// before it ends with no input (default 5 s, at most the record's
	// maxduration).
	InitialSilence time.Duration
	// CalledNumber is the DID sent as called_number (default 918065740671).
	CalledNumber string
	// HTTPClient fetches app URLs and playaudio URLs; nil uses a client
	// with AppTimeout and the URL policy applied to every redirect.
	HTTPClient *http.Client
}

func (c *Config) setDefaults() error {
	if c.TTS == nil {
		return fmt.Errorf("%w: config: TTS is required", ErrBadRequest)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.AllowURL == nil {
		c.AllowURL = allowHTTP
	}
	if c.PublicBaseURL == "" {
		c.PublicBaseURL = "http://127.0.0.1:8080"
	}
	c.PublicBaseURL = strings.TrimRight(c.PublicBaseURL, "/")
	if u, err := url.Parse(c.PublicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: config: PublicBaseURL %q is not an absolute http(s) URL", ErrBadRequest, c.PublicBaseURL)
	}
	if c.MaxCalls < 0 {
		return fmt.Errorf("%w: config: MaxCalls %d < 0", ErrBadRequest, c.MaxCalls)
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = DefaultMaxCalls
	}
	if c.MaxHandshakes < 0 {
		return fmt.Errorf("%w: config: MaxHandshakes %d < 0", ErrBadRequest, c.MaxHandshakes)
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	switch c.DialOutcome {
	case "":
		c.DialOutcome = DialNotAnswered
	case DialAnswered, DialNotAnswered, DialBusy:
	default:
		return fmt.Errorf("%w: config: DialOutcome %q is not %q, %q or %q", ErrBadRequest, c.DialOutcome, DialAnswered, DialNotAnswered, DialBusy)
	}
	if c.DialDuration < 0 || c.DialRingTime < 0 || c.OffersPerMinute < 0 {
		return fmt.Errorf("%w: config: DialDuration, DialRingTime and OffersPerMinute must not be negative", ErrBadRequest)
	}
	if c.DialRingTime == 0 {
		c.DialRingTime = DefaultDialRingTime
	}
	if c.OffersPerMinute == 0 {
		c.OffersPerMinute = DefaultOffersPerMinute
	}
	if c.AppTimeout <= 0 {
		c.AppTimeout = DefaultAppTimeout
	}
	if c.MaxAppBodyBytes <= 0 {
		c.MaxAppBodyBytes = DefaultMaxAppBodyBytes
	}
	if c.MaxAudioBytes <= 0 {
		c.MaxAudioBytes = DefaultMaxAudioBytes
	}
	if c.MaxRecordingBytes <= 0 {
		c.MaxRecordingBytes = DefaultMaxRecordingBytes
	}
	if c.RecordingTTL <= 0 {
		c.RecordingTTL = DefaultRecordingTTL
	}
	if c.MaxCallDuration <= 0 {
		c.MaxCallDuration = DefaultMaxCallDuration
	}
	if c.InitialSilence <= 0 {
		c.InitialSilence = DefaultInitialSilence
	}
	if c.CalledNumber == "" {
		c.CalledNumber = DefaultCalledNumber
	}
	if c.HTTPClient == nil {
		allow := c.AllowURL
		c.HTTPClient = &http.Client{
			Timeout: c.AppTimeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return fmt.Errorf("%w: too many redirects", ErrURLNotAllowed)
				}
				if err := allow(req.URL); err != nil {
					return fmt.Errorf("%w: redirect to %s: %w", ErrURLNotAllowed, redactURL(req.URL), err)
				}
				return nil
			},
		}
	}
	return nil
}

// allowHTTP is the default URL policy: absolute http and https URLs without
// credentials.
func allowHTTP(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("url has no host")
	}
	if u.User != nil {
		return fmt.Errorf("url carries credentials")
	}
	return nil
}

// redactURL renders u for logs and events without its query string or
// credentials (app URLs may carry tokens).
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}
