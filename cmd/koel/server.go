package main

import (
	"go.opentelemetry.io/otel/trace"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/provision"
	"github.com/koelvoice/koel/ivr/store"
)

// Server is a running koel: the store, the bot, the engine, every channel
// and the HTTP server, wired from a Config. Tests start it on a random
// loopback port with a temp data dir.
type Server struct {
	cfg Config
	// tracing gets the spans per turn (a no-op provider when off);
	// stopTracing flushes and stops it.
	tracing     trace.TracerProvider
	stopTracing func(context.Context) error
	log         *slog.Logger
	registry    *prometheus.Registry
	store       store.Store
	bot         bot.Bot
	engine      *ivr.Engine
	outbox      *outbox.Dispatcher
	router      *mux.Router
	http        *http.Server
	listener    net.Listener
	metrics     *httpMetrics
	voice       *voiceStack
	handoffs    *ivr.Handoffs
	getenv      func(string) string

	// channelMetrics are the text channels' collectors (koel_channel_*),
	// shared by the webhook channel and the platforms' adapters.
	channelMetrics *platform.Metrics

	// faqImport serves the FAQ import API; its worker runs in Start.
	faqImport *api.FAQImport
	// orders is the demo's fake order API (nil with the demo disabled).
	orders *demoOrders

	// DemoToken is the demo API token when this start generated or set it.
	DemoToken string

	ready    atomic.Bool
	stopBG   context.CancelFunc
	bg       sync.WaitGroup
	closeErr error
	closed   sync.Once
	// skipDelay ends the drain delay early (a second SIGTERM).
	skipDelay     chan struct{}
	skipDelayOnce sync.Once
}

// NewServer builds every component of koel serve. Nothing listens yet; call
// Start.
func NewServer(ctx context.Context, cfg Config, logger *slog.Logger) (*Server, error) {
	return newServer(ctx, cfg, logger, os.Getenv)
}

func newServer(ctx context.Context, cfg Config, logger *slog.Logger, getenv func(string) string) (*Server, error) {
	s := &Server{cfg: cfg, log: logger, registry: prometheus.NewRegistry(), getenv: getenv, skipDelay: make(chan struct{})}
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "koel_ready",
			Help: "1 while this node takes new work (/readyz may still fail its store or engine check), 0 before it listens and while it drains.",
		}, func() float64 {
			if s.ready.Load() {
				return 1
			}
			return 0
		}),
	)
	ok := false
	defer func() {
		if !ok {
			s.closeComponents()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var err error
	if s.tracing, s.stopTracing, err = newTracing(ctx, cfg); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir, logger.With("component", "store"), store.WithMetrics(s.registry))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.store = st
	if cfg.DatabaseURL == "" {
		logger.Info("store ready", "backend", "sqlite", "path", filepath.Join(cfg.DataDir, "koel.db"))
	} else {
		logger.Info("store ready", "backend", "postgres", "url", redactURL(cfg.DatabaseURL))
	}

	loadFAQ := func(ctx context.Context, businessID int64, csv []byte) error {
		_, err := faq.Import(ctx, st, businessID, bytes.NewReader(csv), faq.ImportOptions{})
		return err
	}

	// prov writes businesses, connections, teams, agents and API steps for
	// the YAML, the demo and the admin API alike.
	prov := &provision.Service{Store: st, Logger: logger.With("component", "provision")}

	if s.bot, err = newBot(st, cfg.Bot, logger); err != nil {
		return nil, err
	}

	engineMetrics, err := ivr.NewMetrics(s.registry)
	if err != nil {
		return nil, fmt.Errorf("engine metrics: %w", err)
	}
	s.handoffs, err = ivr.NewHandoffs(ivr.HandoffsConfig{Store: st, Deliver: agentDelivery(cfg.Outbox.MaxAttempts),
		Notifier: notifyFunc(func() {
			if s.outbox != nil {
				s.outbox.Notify()
			}
		}), Logger: logger.With("component", "handoff"), Registerer: s.registry})
	if err != nil {
		return nil, err
	}
	if !cfg.Demo.Disabled {
		if s.orders, err = newDemoOrders(); err != nil {
			return nil, err
		}
	}
	s.engine, err = ivr.NewEngine(ivr.EngineConfig{
		Store:      st,
		Bot:        withAPISteps(s.bot, st, cfg, getenv, s.orders, logger.With("component", "api_step")),
		BotTimeout: cfg.Bot.Timeout,
		Logger:     logger.With("component", "engine"),
		Metrics:    engineMetrics,
		Handoff:    s.handoffs,
		// s.tracing is a no-op provider unless tracing is configured.
		TracerProvider: s.tracing,
	})
	if err != nil {
		return nil, err
	}

	if !cfg.Demo.Disabled {
		res, err := demo.Bootstrap(ctx, st, demo.Options{
			Token:         cfg.Demo.Token,
			WebhookURL:    cfg.Demo.WebhookURL,
			WebhookSecret: cfg.Demo.WebhookSecret,
			LoadFAQ:       loadFAQ,
		})
		if err != nil {
			return nil, fmt.Errorf("demo business: %w", err)
		}
		s.DemoToken = res.Token
	}

	for _, b := range cfg.Businesses {
		res, err := prov.Apply(ctx, b, provision.Options{Getenv: s.getenv, ReadFile: os.ReadFile, LoadFAQ: loadFAQ})
		if err != nil {
			return nil, err
		}
		logger.Info("business provisioned", "business_id", b.ID, "created", res.Created,
			"connections", len(b.Connections), "faq_imported", res.FAQImported)
	}

	s.outbox, err = outbox.New(outbox.Config{
		Store:          st,
		Logger:         logger.With("component", "outbox"),
		Registerer:     s.registry,
		TracerProvider: s.tracing,
		BaseBackoff:    cfg.Outbox.BaseBackoff,
		MaxBackoff:     cfg.Outbox.MaxBackoff,
		RetryHorizon:   cfg.Outbox.RetryHorizon,
		Stats:          st,
	})
	if err != nil {
		return nil, err
	}
	if s.channelMetrics, err = platform.NewMetrics(s.registry); err != nil {
		return nil, err
	}
	webhookSender := webhook.NewSender(webhook.NewGuardedClient(outbox.DialPolicy{
		AllowLoopback: cfg.Dev, AllowPrivate: cfg.Outbox.AllowPrivateDestinations}), nil)
	webhookSender.Metrics = s.channelMetrics
	s.outbox.Register(ivr.ChannelWebhook, webhookSender)

	s.metrics, err = newHTTPMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	// SkipClean: "//x" and "/a/../b" get the JSON 404 below, never
	// gorilla/mux's 301 to a cleaned path.
	s.router = mux.NewRouter().SkipClean(true)
	s.router.Use(s.metrics.middleware, recoverMiddleware(logger))
	s.router.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	s.router.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	s.router.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry})).Methods(http.MethodGet)
	s.router.Handle(api.OpenAPIPath, api.OpenAPIHandler()).Methods(http.MethodGet)
	s.router.Handle("/api/bots/{business_id}/converse", &api.Converse{Businesses: st, Engine: s.engine, Logger: logger}).Methods(http.MethodPost)
	(&webhook.Channel{
		Store:       st,
		Engine:      s.engine,
		Notifier:    s.outbox,
		Logger:      logger.With("channel", "webhook"),
		Metrics:     s.channelMetrics,
		MaxAttempts: cfg.Outbox.MaxAttempts,
	}).Routes(s.router)
	(&api.Handoff{Store: st, Handoffs: s.handoffs, AdminToken: cfg.AdminToken, Logger: logger.With("component", "handoff")}).Routes(s.router)
	(&api.History{Store: st, Logger: logger.With("component", "history")}).Routes(s.router)
	s.faqImport = &api.FAQImport{Store: st, Logger: logger.With("component", "faq_import")}
	s.faqImport.Routes(s.router)
	if s.orders != nil {
		s.router.Handle(demo.OrdersPath, s.orders.handler()).Methods(http.MethodGet)
	}
	if err := s.addTextChannels(); err != nil {
		return nil, fmt.Errorf("text channels: %w", err)
	}

	admin := s.router.PathPrefix("/admin/v1").Subrouter()
	admin.Use(outbox.RequireAdminToken(cfg.AdminToken))
	(&outbox.Admin{Store: st, Notifier: s.outbox, Logger: logger.With("component", "admin")}).Routes(admin)
	(&api.Admin{Provision: prov, Logger: logger.With("component", "admin")}).Routes(admin)
	(&liveHandler{store: st, now: time.Now, logger: logger.With("component", "live")}).routes(admin)
	pprofRoutes(admin)

	s.voice, err = newVoiceStack(ctx, s)
	if err != nil {
		return nil, err
	}
	s.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "no such endpoint"))
	})
	s.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, api.Errorf(http.StatusMethodNotAllowed, "method not allowed"))
	})

	s.http = &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ok = true
	return s, nil
}

// Handler returns the server's router (for in-process tests and benchmarks).
func (s *Server) Handler() http.Handler { return s.router }

// Start listens on cfg.Addr (synchronously, so bind errors are returned),
// starts serving and the background workers, and marks the server ready.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	s.listener = ln
	if s.orders != nil {
		if err := s.orders.listening(ln.Addr()); err != nil {
			_ = ln.Close()
			return err
		}
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	s.stopBG = cancel
	s.bg.Add(3)
	go func() {
		defer s.bg.Done()
		_ = s.outbox.Run(bgCtx)
	}()
	go func() { defer s.bg.Done(); s.handoffs.Run(bgCtx) }()
	s.bg.Add(1)
	go func() { defer s.bg.Done(); _ = s.faqImport.Run(bgCtx) }()
	if s.voice != nil && s.voice.app != nil {
		s.bg.Add(1)
		go func() { defer s.bg.Done(); s.voice.app.RunSweeper(bgCtx, 0) }()
	}
	go func() {
		defer s.bg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "error", err)
		}
	}()
	s.ready.Store(true)
	s.log.Info("koel listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the server's base URL on loopback (after Start).
func (s *Server) URL() string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return "http://127.0.0.1:" + port
}

// Shutdown drains the server the way load balancers expect: readiness
// answers 503 and new softphone calls are refused at once, while every
// request is still served for cfg.DrainDelay (so balancers see the 503 and
// stop sending); then softphone calls in progress finish, the listener
// closes, in-flight requests complete (all until ctx ends), and every
// component is closed. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closed.Do(func() {
		s.beginDrain(ctx)
		var errs []error
		if s.voice != nil {
			s.voice.drain(ctx, s.log)
		}
		if s.listener != nil {
			if err := s.http.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http drain: %w", err))
				_ = s.http.Close()
			}
		}
		if s.stopBG != nil {
			s.stopBG()
		}
		s.bg.Wait()
		if err := s.closeComponents(); err != nil {
			errs = append(errs, err)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Server) closeComponents() error {
	var errs []error
	if s.voice != nil {
		errs = append(errs, s.voice.close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.stopTracing(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tracing: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		api.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: store unreachable", "error", err)
		api.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unreachable"})
		return
	}
	checks := map[string]string{"status": "ok", "store": "ok"}
	status := http.StatusOK
	if s.voice != nil {
		for k, v := range s.voice.readiness() {
			checks[k] = v
			if strings.HasPrefix(v, "unavailable") {
				// The configured engine failed to load: this node cannot
				// answer calls (set stt.engine none to run text only).
				checks["status"], status = k+" unavailable", http.StatusServiceUnavailable
			}
		}
	}
	api.WriteJSON(w, status, checks)
}

// newLogger builds the process logger.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
