package kookoo

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// The demo connection's voice settings used by the app tests.
var demoSettings = ivr.ConnectionSettings{
	WelcomeMessage: "Welcome to Bluebird Electronics. Ask me a question after the tone.",
	BreakMessage:   "Sorry, I could not process that. Please try again.",
	GoodbyeMessage: "Thank you for calling Bluebird. Goodbye.",
	SilencePeriod:  3,
	MaxRecordTime:  10,
	MaxFailures:    3,
	AgentNumber:    "09876543210",
	CallerID:       "918065740671",
}

// recordingServer serves recordings over loopback, like KooKoo's recording
// host: /missing is a 404, /slow/... never answers (until the test ends),
// everything else comes from the files put there.
type recordingServer struct {
	*httptest.Server
	mu      sync.Mutex
	files   map[string][]byte
	hits    atomic.Int64
	release chan struct{}
}

func newRecordingServer(t testing.TB) *recordingServer {
	rs := &recordingServer{files: map[string][]byte{}, release: make(chan struct{})}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.hits.Add(1)
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			select {
			case <-r.Context().Done():
			case <-rs.release:
			}
			return
		}
		rs.mu.Lock()
		data, ok := rs.files[r.URL.Path]
		rs.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "audio/wav")
		_, _ = w.Write(data)
	}))
	t.Cleanup(func() {
		close(rs.release)
		rs.Close()
	})
	return rs
}

// put serves data at path and returns its URL.
func (rs *recordingServer) put(path string, data []byte) string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.files[path] = data
	return rs.URL + path
}

// putPCM serves p as a 16-bit WAV at path.
func (rs *recordingServer) putPCM(t testing.TB, path string, p audio.PCM) string {
	t.Helper()
	var b bytes.Buffer
	if err := audio.EncodeWAV(&b, p, audio.EncodingPCM16); err != nil {
		t.Fatal(err)
	}
	return rs.put(path, b.Bytes())
}

// transcripts is a [TranscriptSource] keyed by recording URL, the way the
// softphone reports what it already transcribed.
type transcripts struct {
	mu sync.Mutex
	m  map[string]stt.Result
	// held is the audio the softphone holds for a recording it
	// transcribed ([HeldRecordings]).
	held map[string][]int16
}

func (ts *transcripts) LookupRecordingPCM(u string) ([]int16, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	p, ok := ts.held[u]
	return p, ok
}

func (ts *transcripts) LookupTranscript(u string) (stt.Result, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	r, ok := ts.m[u]
	return r, ok
}

func (ts *transcripts) set(u, text string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.m == nil {
		ts.m = map[string]stt.Result{}
	}
	conf := 0.0
	if text != "" {
		conf = 0.9
	}
	ts.m[u] = stt.Result{Text: text, Confidence: conf, Words: len(strings.Fields(text))}
}

// unavailableSTT is the transcriber of a build without pocketsphinx: every
// transcription fails with stt.ErrUnavailable. Conformance cases that need
// words use the pre-transcribed path; the end-to-end tests use the real
// recogniser.
type unavailableSTT struct{}

func (unavailableSTT) Start(context.Context, stt.Vocabulary) (stt.Stream, error) {
	return nil, stt.ErrUnavailable
}

type harnessOptions struct {
	store        store.Store                                 // nil = a fresh SQLite store
	bot          bot.Bot                                     // nil = the FAQ bot on the demo FAQ
	wrap         func(inner bot.Bot, st store.Store) bot.Bot // wraps the bot (API steps); nil = none
	stt          stt.Transcriber                             // nil = unavailableSTT
	botTimeout   time.Duration
	fetchTimeout time.Duration
	resolver     Resolver
	nodeID       string
	noSetup      bool // the store already holds the demo business
	lockWait     time.Duration
	logger       *slog.Logger
	pre          *transcripts // shared with another harness; nil = a new one
	now          func() time.Time
	maxWork      int
	queueWait    time.Duration
}

// harness is a KooKoo app on a real store, engine and FAQ bot, mounted on a
// router the way cmd/koel mounts it, with a loopback recording server.
type harness struct {
	t      testing.TB
	store  store.Store
	app    *App
	router *mux.Router
	recs   *recordingServer
	pre    *transcripts
	reg    *prometheus.Registry
	biz    ivr.Business
	dialed *atomic.Int32
	engine *ivr.Engine
}

func demoFAQ(t testing.TB) []byte {
	t.Helper()
	return demo.FAQ()
}

// setupDemo creates the demo business with its FAQ and its KooKoo
// connections: demo (active), off (inactive) and noagent (no agent number).
func setupDemo(t testing.TB, st store.Store) ivr.Business {
	t.Helper()
	ctx := context.Background()
	biz := ivr.Business{Name: "Bluebird Electronics", FallbackMessage: "Sorry, I did not get that. Please ask again.", Active: true}
	if err := st.CreateBusiness(ctx, &biz); err != nil {
		t.Fatal(err)
	}
	if _, err := faq.Import(ctx, st, biz.ID, bytes.NewReader(demoFAQ(t)), faq.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	noAgent := demoSettings
	noAgent.AgentNumber = ""
	for _, c := range []ivr.Connection{
		{BusinessID: biz.ID, Channel: ivr.ChannelKooKoo, Identifier: "demo", Active: true, Settings: demoSettings},
		{BusinessID: biz.ID, Channel: ivr.ChannelKooKoo, Identifier: "off", Active: false, Settings: demoSettings},
		{BusinessID: biz.ID, Channel: ivr.ChannelKooKoo, Identifier: "noagent", Active: true, Settings: noAgent},
	} {
		if err := st.CreateConnection(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	return biz
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, store: o.store, recs: newRecordingServer(t), pre: &transcripts{}, reg: prometheus.NewRegistry(), dialed: &atomic.Int32{}}
	if h.store == nil {
		h.store = storetest.NewSQLite(t)
	}
	if o.pre != nil {
		h.pre = o.pre
	}
	if !o.noSetup {
		h.biz = setupDemo(t, h.store)
	}
	faqBot := faq.New(h.store, faq.Options{})
	var b bot.Bot = faqBot
	if o.bot != nil {
		b = o.bot
	}
	if o.wrap != nil {
		b = o.wrap(b, h.store)
	}
	engine, err := ivr.NewEngine(ivr.EngineConfig{Store: h.store, Bot: b, BotTimeout: o.botTimeout})
	if err != nil {
		t.Fatal(err)
	}
	h.engine = engine
	resolver := o.resolver
	if resolver == nil {
		resolver = mapResolver{"localhost": {netip.MustParseAddr("127.0.0.1")}}
	}
	var fetcherT *testing.T
	if tt, ok := t.(*testing.T); ok {
		fetcherT = tt
	}
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			if fetcherT != nil {
				fetcherT.Errorf("recording fetch dialled non-loopback address %q", address)
			}
			return nil, io.ErrUnexpectedEOF
		}
		h.dialed.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	fetcher, err := NewFetcher(FetcherConfig{
		AllowedHosts:  []string{"*.kookoo.test"},
		AllowLoopback: true,
		Timeout:       o.fetchTimeout,
		Resolver:      resolver,
		Dial:          dial,
	})
	if err != nil {
		t.Fatal(err)
	}
	transcriber := o.stt
	if transcriber == nil {
		transcriber = unavailableSTT{}
	}
	now := o.now
	if now == nil {
		now = time.Now
	}
	logger := o.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h.app, err = NewApp(AppConfig{
		Store:          h.store,
		Engine:         engine,
		STT:            transcriber,
		Vocabulary:     faqBot,
		Fetcher:        fetcher,
		PreTranscribed: h.pre,
		NodeID:         o.nodeID,
		LockWait:       o.lockWait,
		Logger:         logger,
		Registerer:     h.reg,
		Now:            now,

		MaxRecordingWork:   o.maxWork,
		RecordingQueueWait: o.queueWait,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.router = mux.NewRouter()
	h.router.Handle("/kookoo/{identifier}", h.app).Methods("GET", "HEAD", "POST")
	return h
}

// get sends a KooKoo GET to /kookoo/{identifier}?{query} and returns the
// status and body.
func (h *harness) get(identifier, query string) (int, string) {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/kookoo/"+identifier+"?"+query, nil)
	return h.serve(req)
}

func (h *harness) serve(req *http.Request) (int, string) {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.router.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (h *harness) call(sid string) ivr.Call {
	h.t.Helper()
	c, err := h.store.GetCall(context.Background(), sid)
	if err != nil {
		h.t.Fatalf("get call %s: %v", sid, err)
	}
	return c
}

func (h *harness) turns(sid string) []ivr.Turn {
	h.t.Helper()
	ts, err := h.store.ListTurns(context.Background(), sid)
	if err != nil {
		h.t.Fatalf("list turns %s: %v", sid, err)
	}
	return ts
}
