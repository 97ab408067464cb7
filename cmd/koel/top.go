package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/kookoo"
)

// liveStore is what the live view reads: the open calls, their turns and
// the outbox's depth.
type liveStore interface {
	ListIdleCalls(ctx context.Context, before time.Time, limit int) ([]ivr.Call, error)
	ListTurns(ctx context.Context, sid string) ([]ivr.Turn, error)
	OutboxStats(ctx context.Context) ([]store.OutboxStat, error)
}

// maxLiveCalls caps the calls one live snapshot lists.
const maxLiveCalls = 200

// LiveCall is one call in progress as `koel top` shows it. The caller is
// masked; nothing else identifies a person.
type LiveCall struct {
	SID            string    `json:"sid"`
	Caller         string    `json:"caller"`
	State          string    `json:"state"`
	Turn           int       `json:"turn"`
	StartedAt      time.Time `json:"started_at"`
	LastTranscript string    `json:"last_transcript"`
	Confidence     float64   `json:"confidence"`
	Understanding  string    `json:"understanding"`
	LatencyMS      int64     `json:"latency_ms"`
}

// LiveQueue is the outbox depth of one channel and status.
type LiveQueue struct {
	Channel          string  `json:"channel"`
	Status           string  `json:"status"`
	Items            int64   `json:"items"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

// LiveSnapshot is the body of GET /admin/v1/live.
type LiveSnapshot struct {
	At     time.Time   `json:"at"`
	Calls  []LiveCall  `json:"calls"`
	Queues []LiveQueue `json:"queues"`
}

// liveHandler serves GET /admin/v1/live: the calls in progress across the
// cluster (read from the shared store) and the outbox queues.
type liveHandler struct {
	store  liveStore
	now    func() time.Time
	logger *slog.Logger
}

func (h *liveHandler) routes(r *mux.Router) {
	r.Handle("/live", h).Methods(http.MethodGet)
}

func (h *liveHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap, err := h.snapshot(r.Context())
	if err != nil {
		h.logger.Error("live snapshot", "err", err)
		api.WriteError(w, api.Errorf(http.StatusInternalServerError, "live view unavailable"))
		return
	}
	api.WriteJSON(w, http.StatusOK, snap)
}

func (h *liveHandler) snapshot(ctx context.Context) (LiveSnapshot, error) {
	now := h.now()
	// Every call not ended, however recently updated.
	calls, err := h.store.ListIdleCalls(ctx, now.Add(time.Hour), maxLiveCalls)
	if err != nil {
		return LiveSnapshot{}, fmt.Errorf("list calls: %w", err)
	}
	snap := LiveSnapshot{At: now, Calls: []LiveCall{}, Queues: []LiveQueue{}}
	for _, c := range calls {
		lc := LiveCall{SID: c.SID, Caller: kookoo.MaskNumber(c.Caller), State: string(c.State), Turn: c.Turn, StartedAt: c.StartedAt}
		turns, err := h.store.ListTurns(ctx, c.SID)
		if err != nil {
			return LiveSnapshot{}, fmt.Errorf("list turns: %w", err)
		}
		if n := len(turns); n > 0 {
			last := turns[n-1]
			lc.LastTranscript, lc.Confidence, lc.Understanding, lc.LatencyMS = last.Transcript, last.Confidence, last.Understanding, last.TotalMS
		}
		snap.Calls = append(snap.Calls, lc)
	}
	sort.Slice(snap.Calls, func(i, j int) bool { return snap.Calls[i].StartedAt.Before(snap.Calls[j].StartedAt) })
	stats, err := h.store.OutboxStats(ctx)
	if err != nil {
		return LiveSnapshot{}, fmt.Errorf("outbox stats: %w", err)
	}
	for _, st := range stats {
		q := LiveQueue{Channel: string(st.Channel), Status: string(st.Status), Items: st.Count}
		if !st.Oldest.IsZero() {
			q.OldestAgeSeconds = max(now.Sub(st.Oldest), 0).Seconds()
		}
		snap.Queues = append(snap.Queues, q)
	}
	sort.Slice(snap.Queues, func(i, j int) bool {
		a, b := snap.Queues[i], snap.Queues[j]
		return a.Channel < b.Channel || (a.Channel == b.Channel && a.Status < b.Status)
	})
	return snap, nil
}

// liveClient fetches snapshots from a koel server's admin API.
type liveClient struct {
	base, token string
	http        *http.Client
}

// maxLiveBody caps a snapshot read by koel top.
const maxLiveBody = 4 << 20

func (c *liveClient) fetch(ctx context.Context) (LiveSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.base, "/")+"/admin/v1/live", nil)
	if err != nil {
		return LiveSnapshot{}, fmt.Errorf("live request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return LiveSnapshot{}, fmt.Errorf("live request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLiveBody+1))
	if err != nil {
		return LiveSnapshot{}, fmt.Errorf("live response: %w", err)
	}
	if len(body) > maxLiveBody {
		return LiveSnapshot{}, errors.New("live response over 4 MiB")
	}
	if resp.StatusCode != http.StatusOK {
		return LiveSnapshot{}, fmt.Errorf("live view: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var snap LiveSnapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return LiveSnapshot{}, fmt.Errorf("live response: %w", err)
	}
	return snap, nil
}

// topModel is the bubbletea model of `koel top`.
type topModel struct {
	fetch    func(context.Context) (LiveSnapshot, error)
	interval time.Duration
	snap     LiveSnapshot
	err      error
	width    int
}

type snapshotMsg struct {
	snap LiveSnapshot
	err  error
}

type tickMsg struct{}

func (m topModel) load() tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := m.fetch(ctx)
		return snapshotMsg{s, err}
	}
}

// Init implements tea.Model.
func (m topModel) Init() tea.Cmd { return m.load() }

// Update implements tea.Model.
func (m topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case snapshotMsg:
		if msg.err != nil {
			m.err = msg.err
		} else {
			m.snap, m.err = msg.snap, nil
		}
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
	case tickMsg:
		return m, m.load()
	}
	return m, nil
}

// clip shortens s to n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// View implements tea.Model: the calls table, then the queues.
func (m topModel) View() string {
	var b strings.Builder
	at := "waiting for the first snapshot"
	if !m.snap.At.IsZero() {
		at = m.snap.At.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	fmt.Fprintf(&b, "koel top — %s — %d calls in progress   (q quits)\n", at, len(m.snap.Calls))
	if m.err != nil {
		fmt.Fprintf(&b, "error: %s\n", clip(m.err.Error(), 200))
	}
	fmt.Fprintf(&b, "\n%-14s %-14s %-10s %4s %8s %-10s %5s %8s  %s\n", "CALL", "CALLER", "STATE", "TURN", "AGE", "BAND", "CONF", "LATENCY", "LAST TRANSCRIPT")
	for _, c := range m.snap.Calls {
		age := "-"
		if !c.StartedAt.IsZero() && !m.snap.At.IsZero() {
			age = m.snap.At.Sub(c.StartedAt).Round(time.Second).String()
		}
		conf, lat := "-", "-"
		if c.LastTranscript != "" || c.LatencyMS > 0 {
			conf = fmt.Sprintf("%.2f", c.Confidence)
			lat = fmt.Sprintf("%dms", c.LatencyMS)
		}
		said := "-"
		if c.LastTranscript != "" {
			said = fmt.Sprintf("%q", c.LastTranscript)
		}
		band := c.Understanding
		if band == "" {
			band = "-"
		}
		fmt.Fprintf(&b, "%-14s %-14s %-10s %4d %8s %-10s %5s %8s  %s\n", clip(c.SID, 14), clip(c.Caller, 14), clip(c.State, 10), c.Turn, age,
			clip(band, 10), conf, lat, clip(said, 60))
	}
	if len(m.snap.Calls) == 0 {
		b.WriteString("(no calls in progress)\n")
	}
	fmt.Fprintf(&b, "\n%-12s %-10s %8s %12s\n", "CHANNEL", "STATUS", "ITEMS", "OLDEST")
	for _, q := range m.snap.Queues {
		fmt.Fprintf(&b, "%-12s %-10s %8d %12s\n", clip(q.Channel, 12), clip(q.Status, 10), q.Items, (time.Duration(q.OldestAgeSeconds) * time.Second).String())
	}
	if len(m.snap.Queues) == 0 {
		b.WriteString("(outbox empty)\n")
	}
	return b.String()
}

const topUsage = `koel top [--server http://127.0.0.1:8080] [--admin-token TOKEN] [--interval 1s]
  the admin token defaults to $KOEL_ADMIN_TOKEN`

// topCommand runs `koel top`: a live terminal view of the calls in
// progress and the outbox queues, read from GET /admin/v1/live.
func topCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("koel top", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("server", "http://127.0.0.1:8080", "koel server URL")
	token := fs.String("admin-token", "", "admin token (default $KOEL_ADMIN_TOKEN)")
	interval := fs.Duration("interval", time.Second, "refresh interval")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v\n%s", errUsage, err, topUsage)
	}
	if *token == "" {
		*token = getenv("KOEL_ADMIN_TOKEN")
	}
	if *token == "" || fs.NArg() != 0 || *interval < 100*time.Millisecond {
		return fmt.Errorf("%w: need an admin token and an interval of at least 100ms\n%s", errUsage, topUsage)
	}
	c := &liveClient{base: *server, token: *token, http: &http.Client{Timeout: 10 * time.Second}}
	m := topModel{fetch: c.fetch, interval: *interval}
	_, err := tea.NewProgram(m, tea.WithOutput(stdout), tea.WithAltScreen()).Run()
	return err
}
