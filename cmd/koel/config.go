package main

import (
	"go.opentelemetry.io/otel/trace"

	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/provision"
	"github.com/koelvoice/koel/kookoo"
)

// Config is koel serve's configuration. Sources, later ones winning:
// defaults, the YAML file given with --config, environment variables
// (KOEL_*), command-line flags. Zero values mean "the default".
type Config struct {
	// Addr is the HTTP listen address (KOEL_ADDR, --addr; ":8080").
	Addr string `yaml:"addr"`
	// DataDir holds the SQLite database, speech models and caches
	// (KOEL_DATA_DIR, --data-dir; "./data").
	DataDir string `yaml:"data_dir"`
	// DatabaseURL selects PostgreSQL (postgres://...); empty means SQLite
	// in DataDir (KOEL_DATABASE_URL, --database-url). Secret: its password
	// is never logged.
	DatabaseURL string `yaml:"database_url"`
	// PublicURL is how callers and KooKoo reach this server, used for the
	// URLs koel hands out (KOEL_PUBLIC_URL; default http://<addr>).
	PublicURL string `yaml:"public_url"`
	// StreamKey signs the per-call URLs of KooKoo stream mode
	// (KOEL_STREAM_KEY, at least 32 bytes, the same on every node); empty
	// means a random key per process, so streams work on one node only.
	// Secret.
	StreamKey string `yaml:"stream_key"`
	// Dev relaxes production safety for local work: recordings may be
	// fetched from loopback (KOEL_DEV=1, --dev).
	Dev bool `yaml:"dev"`
	// LogLevel is debug, info, warn or error (KOEL_LOG_LEVEL; info).
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json (KOEL_LOG_FORMAT; text).
	LogFormat string `yaml:"log_format"`
	// DrainTimeout bounds the graceful drain on SIGTERM (KOEL_DRAIN_TIMEOUT; 30s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// DrainDelay is how long /readyz answers 503 while every request is
	// still served, before the listener closes (KOEL_DRAIN_DELAY; 5s for
	// koel serve, 0 when a Config is built in code).
	DrainDelay time.Duration `yaml:"drain_delay"`

	// AdminToken guards the admin API under /admin/v1 (KOEL_ADMIN_TOKEN);
	// empty disables it. Secret.
	AdminToken string `yaml:"admin_token"`

	Demo DemoConfig `yaml:"demo"`
	Bot  BotConfig  `yaml:"bot"`
	STT  STTConfig  `yaml:"stt"`
	TTS  TTSConfig  `yaml:"tts"`
	// Recordings configures fetching KooKoo recordings.
	Recordings RecordingsConfig `yaml:"recordings"`
	Outbox     OutboxConfig     `yaml:"outbox"`
	Sim        SimConfig        `yaml:"sim"`
	Tracing    TracingConfig    `yaml:"tracing"`
	// TracerProvider, set in code (tests), receives the spans instead of
	// an OTLP exporter built from Tracing.
	TracerProvider trace.TracerProvider `yaml:"-"`
	// Businesses are bots declared in the file, applied at every start
	// (see package provision).
	Businesses []provision.Business `yaml:"businesses"`
}

// DemoConfig configures the demo business.
type DemoConfig struct {
	// Disabled skips creating the demo business (KOEL_DEMO=0).
	Disabled bool `yaml:"disabled"`
	// Token is the demo business's API token (KOEL_DEMO_TOKEN); empty
	// generates one, printed once at start. Secret.
	Token string `yaml:"token"`
	// WebhookURL is where the demo webhook connection delivers replies
	// (KOEL_DEMO_WEBHOOK_URL).
	WebhookURL string `yaml:"webhook_url"`
	// WebhookSecret signs the demo webhook's deliveries
	// (KOEL_DEMO_WEBHOOK_SECRET); empty generates one. Secret.
	WebhookSecret string `yaml:"webhook_secret"`
}

// BotConfig selects the bot.
type BotConfig struct {
	// Kind is "faq" (default) or "remote".
	Kind string `yaml:"kind"`
	// RemoteURL is the Rasa REST-webhook URL of a remote bot (KOEL_BOT_URL).
	RemoteURL string `yaml:"remote_url"`
	// Timeout bounds one reply (KOEL_BOT_TIMEOUT; 3s).
	Timeout time.Duration `yaml:"timeout"`
	// Threshold is the FAQ matcher's confidence threshold (0 = default).
	Threshold float64 `yaml:"threshold"`
}

// STTConfig selects speech-to-text.
type STTConfig struct {
	// Engine is "sphinx" (default), "sherpa", "http" or "none".
	Engine string `yaml:"engine"`
	// URL is the OpenAI-compatible server's base URL (engine http).
	URL string `yaml:"url"`
	// APIKey for the HTTP engine (KOEL_STT_API_KEY). Secret.
	APIKey string `yaml:"api_key"`
	Model  string `yaml:"model"`
	// PoolSize bounds warm pocketsphinx decoders, or sherpa streams
	// decoding at once (0 = default).
	PoolSize int `yaml:"pool_size"`
	// Sherpa configures engine sherpa (see README, "Neural speech
	// recognition (sherpa-onnx)").
	Sherpa SherpaSTTConfig `yaml:"sherpa"`
}

// SherpaSTTConfig points engine sherpa at downloaded sherpa-onnx models.
type SherpaSTTConfig struct {
	// ModelDir holds a streaming transducer (KOEL_STT_SHERPA_MODEL_DIR).
	ModelDir string `yaml:"model_dir"`
	// OfflineModelDir optionally holds a non-streaming model for KooKoo
	// recordings (KOEL_STT_SHERPA_OFFLINE_MODEL_DIR).
	OfflineModelDir string `yaml:"offline_model_dir"`
	// SampleRate the models were trained on (0 = 16000).
	SampleRate int `yaml:"sample_rate"`
	// NumThreads per model run (0 = 1).
	NumThreads int `yaml:"num_threads"`
	// HotwordsScore biases towards the bot's phrases (0 = 1.5, < 0 off).
	HotwordsScore float64 `yaml:"hotwords_score"`
	// MaxVocabularies bounds recognisers kept with distinct hotwords (0 = 2).
	MaxVocabularies int `yaml:"max_vocabularies"`
}

// TTSConfig selects text-to-speech.
type TTSConfig struct {
	// Engine is "espeak" (default) or "http".
	Engine string `yaml:"engine"`
	URL    string `yaml:"url"`
	// APIKey for the HTTP engine (KOEL_TTS_API_KEY). Secret.
	APIKey string `yaml:"api_key"`
	Model  string `yaml:"model"`
	// Voice and Rate (words per minute) of the synthesized speech.
	Voice string `yaml:"voice"`
	Rate  int    `yaml:"rate"`
}

// RecordingsConfig configures the SSRF-safe recording fetcher.
type RecordingsConfig struct {
	// AllowedHosts lists hosts recordings may come from (default: KooKoo's
	// recording hosts).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// MaxBytes caps one recording (default 10 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
}

// OutboxConfig configures deliveries.
type OutboxConfig struct {
	// MaxAttempts, when positive, dead-letters an item after that many
	// attempts even inside its retry horizon (default: no cap).
	MaxAttempts int `yaml:"max_attempts"`
	// RetryHorizon is how long a reply is retried before it is
	// dead-lettered, from when it was stored or redelivered (24h).
	RetryHorizon time.Duration `yaml:"retry_horizon"`
	// AllowPrivateDestinations lets webhook deliveries reach private
	// addresses (10/8, 172.16/12, 192.168/16, CGNAT, fc00::/7): an
	// integrator on the operator's own network. Loopback is allowed only
	// in development mode (--dev).
	AllowPrivateDestinations bool `yaml:"allow_private_destinations"`
	// BaseBackoff is the first retry delay, doubled each attempt (1s).
	BaseBackoff time.Duration `yaml:"base_backoff"`
	// MaxBackoff caps the retry delay (10m).
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// SimConfig configures the softphone.
type SimConfig struct {
	// Disabled turns the softphone off (KOEL_SIM=0).
	Disabled bool `yaml:"disabled"`
	// MaxCalls caps concurrent softphone calls (default 100).
	MaxCalls int `yaml:"max_calls"`
	// MaxHandshakes caps the softphone offers negotiating (ICE, DTLS) at
	// once; more queue for a slot (default 8).
	MaxHandshakes int `yaml:"max_handshakes"`
	// Token lets callers use the softphone outside development mode
	// (KOEL_SIM_TOKEN): `koel call --token`, or links from GET /sim/link.
	// Secret.
	Token string `yaml:"token"`
}

// defaults fills in every zero field.
func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Bot.Kind == "" {
		c.Bot.Kind = "faq"
	}
	if c.Bot.Timeout <= 0 {
		c.Bot.Timeout = 3 * time.Second
	}
	if c.STT.Engine == "" {
		c.STT.Engine = "sphinx"
	}
	if c.TTS.Engine == "" {
		c.TTS.Engine = "espeak"
	}
	if c.Recordings.MaxBytes <= 0 {
		c.Recordings.MaxBytes = 10 << 20
	}
	if c.Sim.MaxCalls <= 0 {
		c.Sim.MaxCalls = 100
	}
}

// validate reports configuration errors a user can fix.
func (c *Config) validate() error {
	var errs []error
	if c.DrainDelay < 0 {
		errs = append(errs, fmt.Errorf("drain_delay %v is negative", c.DrainDelay))
	} else if c.DrainDelay >= c.DrainTimeout {
		errs = append(errs, fmt.Errorf("drain_delay %v must be shorter than drain_timeout %v", c.DrainDelay, c.DrainTimeout))
	}
	switch c.Bot.Kind {
	case "faq":
	case "remote":
		if c.Bot.RemoteURL == "" {
			errs = append(errs, errors.New("bot.kind remote needs bot.remote_url (KOEL_BOT_URL)"))
		}
	default:
		errs = append(errs, fmt.Errorf("bot.kind %q: want faq or remote", c.Bot.Kind))
	}
	switch c.STT.Engine {
	case "sphinx", "none":
	case "sherpa":
		if c.STT.Sherpa.ModelDir == "" {
			errs = append(errs, errors.New("stt.engine sherpa needs stt.sherpa.model_dir (KOEL_STT_SHERPA_MODEL_DIR), a downloaded streaming transducer"))
		}
	case "http":
		if c.STT.URL == "" {
			errs = append(errs, errors.New("stt.engine http needs stt.url"))
		}
	default:
		errs = append(errs, fmt.Errorf("stt.engine %q: want sphinx, sherpa, http or none", c.STT.Engine))
	}
	switch c.TTS.Engine {
	case "espeak":
	case "http":
		if c.TTS.URL == "" {
			errs = append(errs, errors.New("tts.engine http needs tts.url"))
		}
	default:
		errs = append(errs, fmt.Errorf("tts.engine %q: want espeak or http", c.TTS.Engine))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("database_url must be a postgres:// URL (empty means SQLite in the data dir)"))
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("public_url %q must be an absolute http(s) URL", c.PublicURL))
		}
	}
	if c.StreamKey != "" && len(c.StreamKey) < kookoo.MinStreamKeyBytes {
		errs = append(errs, fmt.Errorf("stream_key must be at least %d bytes", kookoo.MinStreamKeyBytes))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format %q: want text or json", c.LogFormat))
	}
	ids := map[int64]bool{}
	for _, b := range c.Businesses {
		if err := b.Validate(); err != nil {
			errs = append(errs, err)
		}
		if ids[b.ID] {
			errs = append(errs, fmt.Errorf("business id %d declared twice", b.ID))
		}
		ids[b.ID] = true
		if b.ID == demo.BusinessID && !c.Demo.Disabled {
			errs = append(errs, fmt.Errorf("business id %d is the demo business; use another id or set demo.disabled", b.ID))
		}
	}
	return errors.Join(errs...)
}

// loadConfigFile reads a YAML configuration, refusing unknown keys.
func loadConfigFile(path string, c *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// applyEnv overlays KOEL_* variables read through getenv.
func applyEnv(c *Config, getenv func(string) string) error {
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	boolean := func(name string, dst *bool, invert bool) {
		v := getenv(name)
		if v == "" {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want a boolean", name, v))
			return
		}
		*dst = b != invert
	}
	duration := func(name string, dst *time.Duration) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want a duration like 30s", name, v))
			return
		}
		*dst = d
	}
	str("KOEL_ADDR", &c.Addr)
	str("KOEL_DATA_DIR", &c.DataDir)
	str("KOEL_DATABASE_URL", &c.DatabaseURL)
	str("KOEL_PUBLIC_URL", &c.PublicURL)
	str("KOEL_STREAM_KEY", &c.StreamKey)
	boolean("KOEL_DEV", &c.Dev, false)
	str("KOEL_LOG_LEVEL", &c.LogLevel)
	str("KOEL_LOG_FORMAT", &c.LogFormat)
	str("KOEL_OTLP_ENDPOINT", &c.Tracing.OTLPEndpoint)
	duration("KOEL_DRAIN_TIMEOUT", &c.DrainTimeout)
	duration("KOEL_DRAIN_DELAY", &c.DrainDelay)
	boolean("KOEL_DEMO", &c.Demo.Disabled, true)
	str("KOEL_DEMO_TOKEN", &c.Demo.Token)
	str("KOEL_DEMO_WEBHOOK_URL", &c.Demo.WebhookURL)
	str("KOEL_DEMO_WEBHOOK_SECRET", &c.Demo.WebhookSecret)
	str("KOEL_BOT_URL", &c.Bot.RemoteURL)
	if c.Bot.RemoteURL != "" && getenv("KOEL_BOT_URL") != "" {
		c.Bot.Kind = "remote"
	}
	duration("KOEL_BOT_TIMEOUT", &c.Bot.Timeout)
	str("KOEL_STT_ENGINE", &c.STT.Engine)
	str("KOEL_STT_URL", &c.STT.URL)
	str("KOEL_STT_API_KEY", &c.STT.APIKey)
	str("KOEL_STT_SHERPA_MODEL_DIR", &c.STT.Sherpa.ModelDir)
	str("KOEL_STT_SHERPA_OFFLINE_MODEL_DIR", &c.STT.Sherpa.OfflineModelDir)
	str("KOEL_TTS_ENGINE", &c.TTS.Engine)
	str("KOEL_TTS_URL", &c.TTS.URL)
	str("KOEL_TTS_API_KEY", &c.TTS.APIKey)
	boolean("KOEL_SIM", &c.Sim.Disabled, true)
	str("KOEL_SIM_TOKEN", &c.Sim.Token)
	str("KOEL_ADMIN_TOKEN", &c.AdminToken)
	return errors.Join(errs...)
}

// parseServeConfig builds the configuration of koel serve from args, the
// environment and an optional YAML file.
func parseServeConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("koel serve", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	var (
		configPath = fs.String("config", "", "YAML configuration file")
		addr       = fs.String("addr", "", "listen address (default :8080)")
		dataDir    = fs.String("data-dir", "", "data directory (default ./data)")
		dbURL      = fs.String("database-url", "", "PostgreSQL URL (default: SQLite in the data dir)")
		dev        = fs.Bool("dev", false, "development mode: allow loopback recording URLs")
		logLevel   = fs.String("log-level", "", "debug, info, warn or error")
	)
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("koel serve: %w\n%s", err, serveUsage)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("koel serve: unexpected argument %q\n%s", fs.Arg(0), serveUsage)
	}
	c := Config{DrainDelay: drainDelayUnset}
	if *configPath != "" {
		if err := loadConfigFile(*configPath, &c); err != nil {
			return Config{}, err
		}
	}
	if err := applyEnv(&c, getenv); err != nil {
		return Config{}, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "addr":
			c.Addr = *addr
		case "data-dir":
			c.DataDir = *dataDir
		case "database-url":
			c.DatabaseURL = *dbURL
		case "dev":
			c.Dev = *dev
		case "log-level":
			c.LogLevel = *logLevel
		}
	})
	c.defaults()
	if c.DrainDelay == drainDelayUnset {
		// koel serve waits for load balancers by default, within the
		// drain timeout however short an operator made it.
		c.DrainDelay = min(DefaultDrainDelay, c.DrainTimeout/2)
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

const serveUsage = `usage: koel serve [--config FILE] [--addr :8080] [--data-dir ./data] [--database-url postgres://...] [--dev] [--log-level info]`

// redactURL hides what a URL may carry as credentials — user info, query
// values (?password=, ?api_key=), the fragment — for logs.
func redactURL(raw string) string { return outbox.RedactURL(raw) }
