package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/audio/tts"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/kookoo"
	"github.com/koelvoice/koel/sim"
)

// voiceStack is the voice side of koel: speech engines, the KooKoo app and
// the softphone.
type voiceStack struct {
	stt stt.Transcriber
	// recordings transcribes whole KooKoo recordings: stt, or sherpa's
	// offline model when one is configured.
	recordings stt.Transcriber
	sphinx     *stt.Sphinx
	sherpa     *stt.Sherpa
	sttState   string
	tts        tts.Synthesizer
	app        *kookoo.App
	stream     *kookoo.StreamServer
	sim        *sim.Sim
}

// unavailableSTT answers every transcription with the reason speech
// recognition is off, so calls get the break message instead of a crash.
type unavailableSTT struct{ err error }

func (u unavailableSTT) Start(context.Context, stt.Vocabulary) (stt.Stream, error) { return nil, u.err }

func newVoiceStack(ctx context.Context, s *Server) (*voiceStack, error) {
	cfg, log := s.cfg, s.log
	v := &voiceStack{}
	ok := false
	defer func() {
		if !ok {
			_ = v.close()
		}
	}()

	switch cfg.STT.Engine {
	case "sphinx":
		sp, err := stt.NewSphinx(stt.SphinxConfig{
			DataDir:    filepath.Join(cfg.DataDir, "stt"),
			PoolSize:   cfg.STT.PoolSize,
			Logger:     log.With("component", "stt"),
			Registerer: s.registry,
		})
		if err != nil {
			if !errors.Is(err, stt.ErrUnavailable) {
				return nil, fmt.Errorf("speech-to-text: %w", err)
			}
			log.Warn("speech-to-text unavailable; calls will hear the break message", "error", err)
			v.stt, v.sttState = unavailableSTT{err}, "unavailable: "+err.Error()
			break
		}
		v.sphinx, v.stt, v.sttState = sp, sp, "ok"
	case "sherpa":
		sc := cfg.STT.Sherpa
		sh, err := stt.NewSherpa(stt.SherpaConfig{
			ModelDir:        sc.ModelDir,
			OfflineModelDir: sc.OfflineModelDir,
			DataDir:         filepath.Join(cfg.DataDir, "stt"),
			SampleRate:      sc.SampleRate,
			NumThreads:      sc.NumThreads,
			PoolSize:        cfg.STT.PoolSize,
			HotwordsScore:   sc.HotwordsScore,
			MaxVocabularies: sc.MaxVocabularies,
			Probe:           sherpaProbe(log),
			Logger:          log.With("component", "stt"),
			Registerer:      s.registry,
		})
		if err != nil {
			if !errors.Is(err, stt.ErrUnavailable) {
				return nil, fmt.Errorf("speech-to-text: %w", err)
			}
			log.Error("speech-to-text (sherpa) did not load; calls will hear the break message and /readyz answers 503", "error", err)
			v.stt, v.sttState = unavailableSTT{err}, "unavailable: "+err.Error()
			break
		}
		v.sherpa, v.stt, v.recordings, v.sttState = sh, sh, sh.Recordings(), "ok"
	case "http":
		h, err := stt.NewHTTP(stt.HTTPConfig{BaseURL: cfg.STT.URL, APIKey: cfg.STT.APIKey, Model: cfg.STT.Model})
		if err != nil {
			return nil, fmt.Errorf("speech-to-text: %w", err)
		}
		v.stt, v.sttState = h, "ok"
	default: // none
		v.stt, v.sttState = unavailableSTT{fmt.Errorf("%w: stt.engine is none", stt.ErrUnavailable)}, "disabled"
	}

	if v.recordings == nil {
		v.recordings = v.stt
	}

	var synth tts.Synthesizer
	switch cfg.TTS.Engine {
	case "http":
		h, err := tts.NewHTTP(tts.HTTPConfig{BaseURL: cfg.TTS.URL, APIKey: cfg.TTS.APIKey, Model: cfg.TTS.Model, DefaultVoice: cfg.TTS.Voice})
		if err != nil {
			return nil, fmt.Errorf("text-to-speech: %w", err)
		}
		synth = h
	default:
		e, err := tts.NewEspeak(tts.EspeakConfig{DefaultVoice: tts.Voice{Name: cfg.TTS.Voice, Rate: cfg.TTS.Rate}, Logger: log.With("component", "tts")})
		if err != nil {
			return nil, fmt.Errorf("text-to-speech: %w", err)
		}
		synth = e
	}
	cache, err := tts.NewCache(synth, tts.CacheConfig{Dir: filepath.Join(cfg.DataDir, "tts-cache"), Logger: log.With("component", "tts")})
	if err != nil {
		return nil, fmt.Errorf("text-to-speech cache: %w", err)
	}
	metered, err := tts.NewMetered(cache, s.registry)
	if err != nil {
		return nil, fmt.Errorf("text-to-speech metrics: %w", err)
	}
	v.tts = metered.Traced(s.tracing)

	vocab, _ := s.bot.(bot.Vocabulary)
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + loopbackAddr(cfg.Addr)
	}

	if !cfg.Sim.Disabled {
		v.sim, err = sim.New(sim.Config{
			Logger:        log.With("component", "sim"),
			Registerer:    s.registry,
			TTS:           v.tts,
			STT:           v.stt,
			Vocabulary:    connectionVocabulary(s.store, vocab),
			App:           s.router,
			AllowURL:      softphoneURLPolicy(cfg.Dev),
			PublicBaseURL: publicURL,
			MaxCalls:      cfg.Sim.MaxCalls,
			MaxHandshakes: cfg.Sim.MaxHandshakes,
			Voice:         tts.Voice{Name: cfg.TTS.Voice, Rate: cfg.TTS.Rate},
			Open:          cfg.Dev,
			Token:         cfg.Sim.Token,
			CheckConnection: func(ctx context.Context, id string) error {
				_, err := s.store.GetConnection(ctx, ivr.ChannelKooKoo, id)
				if errors.Is(err, ivr.ErrNotFound) {
					return fmt.Errorf("%w: %q", sim.ErrUnknownConnection, id)
				}
				return err
			},
		})
		if err != nil {
			return nil, fmt.Errorf("softphone: %w", err)
		}
		v.sim.Routes(s.router)
	}

	fetcher, err := kookoo.NewFetcher(kookoo.FetcherConfig{
		AllowedHosts:  cfg.Recordings.AllowedHosts,
		AllowLoopback: cfg.Dev,
		MaxBytes:      cfg.Recordings.MaxBytes,
		Logger:        log.With("component", "fetch"),
	})
	if err != nil {
		return nil, fmt.Errorf("recording fetcher: %w", err)
	}
	appCfg := kookoo.AppConfig{
		Store:      s.store,
		Engine:     s.engine,
		STT:        v.recordings,
		Vocabulary: vocab,
		Fetcher:    fetcher,
		NodeID:     nodeID(),
		Logger:     log.With("channel", "kookoo"),
		Registerer: s.registry,
		// s.tracing is a no-op provider unless tracing is configured.
		TracerProvider: s.tracing,
	}
	if s.handoffs != nil {
		appCfg.Handoff = s.handoffs
	}
	if v.sim != nil {
		appCfg.PreTranscribed = v.sim
	}
	v.app, err = kookoo.NewApp(appCfg)
	if err != nil {
		return nil, fmt.Errorf("kookoo app: %w", err)
	}
	s.router.Handle("/kookoo/{identifier}", v.app).Methods(http.MethodGet, http.MethodPost, http.MethodHead)
	// KooKoo stream mode (kookoo/stream_server.go, stream.go).
	if v.stream, err = newStreamServer(cfg, v.app, v.stt, vocab, v.tts, publicURL, log, s.registry); err != nil {
		return nil, err
	}
	s.router.Handle("/kookoo/{identifier}/stream", v.stream).Methods(http.MethodGet)
	ok = true
	return v, nil
}

// sherpaProbe is the command that checks sherpa models in a child process
// (koel sherpa-probe): onnxruntime aborts the process on some faulty
// models, and that should not be the server.
func sherpaProbe(log *slog.Logger) []string {
	exe, err := os.Executable()
	if err != nil {
		log.Warn("cannot find koel's own binary; sherpa models are loaded without a probe process", "error", err)
		return nil
	}
	return []string{exe, "sherpa-probe"}
}

// connectionVocabulary gives the softphone the same recognition vocabulary
// the KooKoo app uses for a connection's business.
func connectionVocabulary(st interface {
	GetConnection(ctx context.Context, channel ivr.Channel, identifier string) (ivr.Connection, error)
}, vocab bot.Vocabulary) func(ctx context.Context, connection string) (stt.Vocabulary, error) {
	return func(ctx context.Context, connection string) (stt.Vocabulary, error) {
		conn, err := st.GetConnection(ctx, ivr.ChannelKooKoo, connection)
		if err != nil {
			return stt.Vocabulary{}, fmt.Errorf("connection %q: %w", connection, err)
		}
		if vocab == nil {
			return stt.Vocabulary{Key: "biz" + strconv.FormatInt(conn.BusinessID, 10) + "-none"}, nil
		}
		phrases, version, err := vocab.Phrases(ctx, conn.BusinessID)
		if err != nil {
			return stt.Vocabulary{}, err
		}
		return stt.Vocabulary{Key: fmt.Sprintf("biz%d-v%d", conn.BusinessID, version), Phrases: phrases}, nil
	}
}

// softphoneURLPolicy decides which app and audio URLs the softphone may
// fetch for a user. koel's own connections are served in process and never
// reach it. Calling other KooKoo apps by URL is a development feature: with
// --dev any http(s) URL is allowed (a developer's app on localhost is the
// point); otherwise none is, so a public koel cannot be used to reach
// addresses behind it.
func softphoneURLPolicy(dev bool) func(*url.URL) error {
	return func(u *url.URL) error {
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("only http and https URLs can be called, not %q", u.Scheme)
		}
		if !dev {
			return errors.New("calling KooKoo apps by URL needs development mode (KOEL_DEV=1); call a connection instead")
		}
		return nil
	}
}

// nodeID names this server in call locks: host, process and a random part,
// so two servers in one process (tests) or a restarted process never share
// an owner id.
func nodeID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "koel"
	}
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(rand.Uint64()&0xffffff, 16)
}

// loopbackAddr turns a listen address into one a local client can dial.
func loopbackAddr(addr string) string {
	if len(addr) > 0 && addr[0] == ':' {
		return "127.0.0.1" + addr
	}
	return addr
}

// refuseNewCalls makes the softphone answer new offers 503.
func (v *voiceStack) refuseNewCalls() {
	if v.sim != nil {
		v.sim.Drain()
	}
}

func (v *voiceStack) drain(ctx context.Context, log *slog.Logger) {
	// Calls in progress on KooKoo need nothing from us between requests;
	// softphone calls hold media and are given the drain time to finish.
	if v.sim == nil {
		return
	}
	v.sim.Drain()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for v.sim.ActiveCalls() > 0 {
		log.Info("waiting for softphone calls to finish", "active_calls", v.sim.ActiveCalls())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (v *voiceStack) close() error {
	var errs []error
	if v.stream != nil {
		v.stream.Close()
	}
	if v.sim != nil {
		errs = append(errs, v.sim.Close())
	}
	if v.sphinx != nil {
		errs = append(errs, v.sphinx.Close())
	}
	if v.sherpa != nil {
		errs = append(errs, v.sherpa.Close())
	}
	return errors.Join(errs...)
}

func (v *voiceStack) readiness() map[string]string {
	return map[string]string{"stt": v.sttState}
}
