package voiceeval

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr"
	ivrbot "github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/kookoo"
)

// Stack is a real koel voice stack on loopback: a SQLite store in a
// directory of its own holding the demo business, the FAQ bot on the demo
// FAQ, the engine, pocketsphinx and the KooKoo app, served over HTTP on
// 127.0.0.1, with a recording host on 127.0.0.1 that serves the callers'
// recordings from memory. Each question is one KooKoo call: NewCall, then
// Record events, exactly as KooKoo delivers them.
type Stack struct {
	store  store.Store
	sphinx *stt.Sphinx     // nil when StackConfig.Transcriber replaced it
	stt    stt.Transcriber // sphinx or StackConfig.Transcriber
	bot    *faq.Bot
	app    *http.Server
	recs   *http.Server
	appURL string
	recURL string
	client *http.Client

	cleanup func()

	mu    sync.Mutex
	files map[string][]byte
	seq   atomic.Int64
}

// StackConfig configures a [Stack].
type StackConfig struct {
	// DataDir holds the store and the recogniser's builds ("" = a new
	// temporary directory removed by Close).
	DataDir string
	// Sphinx overrides the recogniser's configuration; DataDir and
	// Logger are filled in.
	Sphinx stt.SphinxConfig
	// PoolSize is the number of decoders (0 = 2, the cores of the test
	// machine).
	PoolSize int
	// BotThreshold is the FAQ bot's match threshold (0 =
	// faq.DefaultThreshold).
	BotThreshold float64
	// LatticeWeight is the FAQ bot's share of the recogniser's lattice
	// evidence in a node's score (0 = off; see faq.Options). Sphinx.Lattice
	// must be on for the recogniser to pass any.
	LatticeWeight float64
	// MinConfidence is the transcript confidence under which the caller
	// is asked again (0 = stt.DefaultMinConfidence).
	MinConfidence float64
	// Transcriber, when set, replaces pocketsphinx (Sphinx and PoolSize
	// are then unused).
	Transcriber stt.Transcriber
	// Logger receives the stack's warnings (nil = discard).
	Logger *slog.Logger
}

// NewStack starts a stack. A missing pocketsphinx returns an error
// wrapping stt.ErrUnavailable.
func NewStack(ctx context.Context, cfg StackConfig) (_ *Stack, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := cfg.DataDir
	cleanup := func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "koel-voiceeval-"); err != nil {
			return nil, fmt.Errorf("voiceeval: data dir: %w", err)
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	s := &Stack{files: map[string][]byte{}, client: &http.Client{Timeout: time.Minute}}
	defer func() {
		if err != nil {
			s.Close()
			cleanup()
		}
	}()
	s.store, err = store.OpenSQLite(ctx, filepath.Join(dir, store.SQLiteFile), log)
	if err != nil {
		return nil, fmt.Errorf("voiceeval: store: %w", err)
	}
	if _, err = demo.Bootstrap(ctx, s.store, demo.Options{LoadFAQ: func(ctx context.Context, id int64, csv []byte) error {
		_, err := faq.Import(ctx, s.store, id, bytes.NewReader(csv), faq.ImportOptions{})
		return err
	}}); err != nil {
		return nil, fmt.Errorf("voiceeval: demo business: %w", err)
	}
	bot := faq.New(s.store, faq.Options{Logger: log, Threshold: cfg.BotThreshold, LatticeWeight: cfg.LatticeWeight})
	s.bot = bot
	engine, err := ivr.NewEngine(ivr.EngineConfig{Store: s.store, Bot: bot, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("voiceeval: engine: %w", err)
	}
	s.stt = cfg.Transcriber
	if s.stt == nil {
		sc := cfg.Sphinx
		sc.DataDir = filepath.Join(dir, "stt")
		sc.Logger = log
		if sc.PoolSize == 0 {
			sc.PoolSize = cfg.PoolSize
		}
		if sc.PoolSize == 0 {
			sc.PoolSize = 2
		}
		s.sphinx, err = stt.NewSphinx(sc)
		if err != nil {
			return nil, err
		}
		s.stt = s.sphinx
	}
	fetcher, err := kookoo.NewFetcher(kookoo.FetcherConfig{AllowLoopback: true, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("voiceeval: fetcher: %w", err)
	}
	app, err := kookoo.NewApp(kookoo.AppConfig{
		Store: s.store, Engine: engine, STT: s.stt, Vocabulary: bot, Fetcher: fetcher, Logger: log,
		MinConfidence: cfg.MinConfidence,
	})
	if err != nil {
		return nil, fmt.Errorf("voiceeval: kookoo app: %w", err)
	}
	router := mux.NewRouter()
	router.Handle("/kookoo/{identifier}", app).Methods(http.MethodGet, http.MethodPost)
	if s.app, s.appURL, err = serveLoopback(router); err != nil {
		return nil, err
	}
	if s.recs, s.recURL, err = serveLoopback(http.HandlerFunc(s.serveRecording)); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		s.cleanup = cleanup
	}
	return s, nil
}

// serveLoopback serves h on a new 127.0.0.1 port.
func serveLoopback(h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("voiceeval: listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String(), nil
}

func (s *Stack) serveRecording(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b, ok := s.files[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	_, _ = w.Write(b)
}

// Close stops the servers and frees the recogniser and the store.
func (s *Stack) Close() error {
	var errs []error
	for _, srv := range []*http.Server{s.app, s.recs} {
		if srv != nil {
			errs = append(errs, srv.Close())
		}
	}
	if s.sphinx != nil {
		errs = append(errs, s.sphinx.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.cleanup != nil {
		s.cleanup()
	}
	return errors.Join(errs...)
}

// RecogniserCPU is the CPU time pocketsphinx's streams have spent so far
// (see [stt.Sphinx.CPU]); 0 when StackConfig.Transcriber replaced it.
func (s *Stack) RecogniserCPU() time.Duration {
	if s.sphinx == nil {
		return 0
	}
	return s.sphinx.CPU()
}

// Understand runs the recogniser and the FAQ bot on pcm directly, without
// a call: the transcript with its N-best alternatives goes to the bot as a
// voice request carrying them (what the voice turn passes once it forwards
// alternatives). It measures the recogniser and the matcher without the
// call state machine.
func (s *Stack) Understand(ctx context.Context, pcm audio.PCM) (stt.Result, ivrbot.Response, time.Duration, error) {
	phrases, version, err := s.bot.Phrases(ctx, demo.BusinessID)
	if err != nil {
		return stt.Result{}, ivrbot.Response{}, 0, err
	}
	v := stt.Vocabulary{Key: fmt.Sprintf("biz%d-v%d", demo.BusinessID, version), Phrases: phrases}
	start := time.Now()
	res, err := stt.Transcribe(ctx, s.stt, v, pcm.Samples)
	took := time.Since(start)
	if err != nil {
		return stt.Result{}, ivrbot.Response{}, took, fmt.Errorf("voiceeval: transcribe: %w", err)
	}
	req := ivrbot.Request{BusinessID: demo.BusinessID, UserID: "voiceeval", Text: res.Text, Voice: true}
	for _, a := range res.Alternatives {
		req.Alternatives = append(req.Alternatives, ivrbot.Alternative{Text: a.Text, Weight: a.Posterior})
	}
	for _, w := range res.Lattice {
		req.Lattice = append(req.Lattice, ivrbot.WordCount{Word: w.Word, Count: w.Count})
	}
	resp, err := s.bot.Reply(ctx, req)
	if err != nil {
		return res, ivrbot.Response{}, took, fmt.Errorf("voiceeval: bot: %w", err)
	}
	return res, resp, took, nil
}

// Call is one KooKoo call on the stack.
type Call struct {
	s   *Stack
	sid string
	n   int
}

// NewCall starts a call: the NewCall event, answered with the welcome.
func (s *Stack) NewCall(ctx context.Context) (*Call, Reply, error) {
	c := &Call{s: s, sid: "ve" + strconv.FormatInt(s.seq.Add(1), 10)}
	r, _, err := c.event(ctx, url.Values{"event": {"NewCall"}, "cid": {"09876543210"}, "called_number": {"918065740671"}})
	return c, r, err
}

// Say delivers pcm as the caller's next recording (a Record event) and
// returns koel's reply and how long the event took.
func (c *Call) Say(ctx context.Context, pcm audio.PCM) (Reply, time.Duration, error) {
	var buf bytes.Buffer
	if err := audio.EncodeWAV(&buf, pcm, audio.EncodingPCM16); err != nil {
		return Reply{}, 0, fmt.Errorf("voiceeval: encode recording: %w", err)
	}
	c.n++
	path := fmt.Sprintf("/rec/%s-%d.wav", c.sid, c.n)
	c.s.mu.Lock()
	c.s.files[path] = buf.Bytes()
	c.s.mu.Unlock()
	defer func() {
		c.s.mu.Lock()
		delete(c.s.files, path)
		c.s.mu.Unlock()
	}()
	return c.event(ctx, url.Values{"event": {"Record"}, "data": {c.s.recURL + path}, "status": {"silence"}})
}

// Hangup ends the call.
func (c *Call) Hangup(ctx context.Context) error {
	_, _, err := c.event(ctx, url.Values{"event": {"Hangup"}, "process": {"record"}, "total_call_duration": {"30"}})
	return err
}

// Turns returns the call's stored turns.
func (c *Call) Turns(ctx context.Context) ([]ivr.Turn, error) {
	return c.s.store.ListTurns(ctx, c.sid)
}

func (c *Call) event(ctx context.Context, v url.Values) (Reply, time.Duration, error) {
	v.Set("sid", c.sid)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.s.appURL+"/kookoo/"+demo.Identifier+"?"+v.Encode(), nil)
	if err != nil {
		return Reply{}, 0, fmt.Errorf("voiceeval: request: %w", err)
	}
	start := time.Now()
	resp, err := c.s.client.Do(req)
	if err != nil {
		return Reply{}, 0, fmt.Errorf("voiceeval: %s event: %w", v.Get("event"), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	took := time.Since(start)
	if err != nil {
		return Reply{}, took, fmt.Errorf("voiceeval: %s event: %w", v.Get("event"), err)
	}
	if resp.StatusCode != http.StatusOK {
		return Reply{}, took, fmt.Errorf("voiceeval: %s event: status %d: %s", v.Get("event"), resp.StatusCode, body)
	}
	r, err := parseReply(body)
	return r, took, err
}

// Reply is what koel answered to one event.
type Reply struct {
	// Texts are the prompts spoken, in order.
	Texts []string
	// Record is true when the reply ends listening to the caller again.
	Record bool
	// Dial is true when the reply transfers the call.
	Dial bool
	// Hangup is true when the reply ends the call.
	Hangup bool
}

// Text returns the prompts joined by spaces.
func (r Reply) Text() string { return strings.Join(r.Texts, " ") }

// parseReply reads a KooKoo response document.
func parseReply(body []byte) (Reply, error) {
	var r Reply
	d := xml.NewDecoder(bytes.NewReader(body))
	var in string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return r, nil
		}
		if err != nil {
			return Reply{}, fmt.Errorf("voiceeval: response %q: %w", body, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			in = strings.ToLower(t.Name.Local)
			switch in {
			case "record":
				r.Record = true
			case "dial":
				r.Dial = true
			case "hangup":
				r.Hangup = true
			}
		case xml.CharData:
			if in == "playtext" {
				if s := strings.TrimSpace(string(t)); s != "" {
					r.Texts = append(r.Texts, s)
				}
			}
		case xml.EndElement:
			in = ""
		}
	}
}
