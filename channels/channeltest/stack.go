package channeltest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// Stack is a real koel core for adapter tests: a SQLite store holding the
// demo business and its FAQ, the FAQ bot, the engine and the channel
// pipeline, with metrics on a private registry.
type Stack struct {
	Store    store.Store
	Engine   *ivr.Engine
	Registry *prometheus.Registry
	Metrics  *platform.Metrics
	Pipeline *platform.Pipeline
	Outbox   *outbox.Dispatcher
	// Client sends to the loopback fakes (loopback allowed).
	Client *http.Client
}

// NewStack builds a Stack on a fresh SQLite store.
func NewStack(t testing.TB) *Stack {
	t.Helper()
	ctx := context.Background()
	st := storetest.NewSQLite(t)
	_, err := demo.Bootstrap(ctx, st, demo.Options{Token: "channeltest-token", LoadFAQ: func(ctx context.Context, id int64, csv []byte) error {
		_, err := faq.Import(ctx, st, id, bytes.NewReader(csv), faq.ImportOptions{})
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := platform.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := ivr.NewEngine(ivr.EngineConfig{Store: st, Bot: faq.New(st, faq.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(outbox.Config{Store: st, Registerer: reg, BaseBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &Stack{
		Store: st, Engine: eng, Registry: reg, Metrics: m, Outbox: ob,
		Pipeline: &platform.Pipeline{Connections: st, Engine: eng, Metrics: m, Notifier: ob},
		Client:   platform.NewClient(platform.ClientOptions{AllowLoopback: true}),
	}
}

// HTTPSender returns a platform sender on the stack's client and metrics.
func (s *Stack) HTTPSender() *platform.Sender {
	return &platform.Sender{Client: s.Client, Metrics: s.Metrics}
}

// Connect creates an active connection of the demo business.
func (s *Stack) Connect(t testing.TB, ch ivr.Channel, identifier string, settings ivr.ConnectionSettings) ivr.Connection {
	t.Helper()
	c := ivr.Connection{BusinessID: demo.BusinessID, Channel: ch, Identifier: identifier, Active: true, Settings: settings}
	if err := s.Store.CreateConnection(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Register makes s the outbox sender of ch.
func (s *Stack) Register(ch ivr.Channel, snd outbox.Sender) { s.Outbox.Register(ch, snd) }

// DeliverDue runs one outbox pass (claim the due items, send each once) and
// returns how many items were attempted.
func (s *Stack) DeliverDue(t testing.TB) int {
	t.Helper()
	n, err := s.Outbox.DeliverDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// RunOutbox runs the dispatcher until the test ends.
func (s *Stack) RunOutbox(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Outbox.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// OutboxCounts returns the demo business's outbox items by status.
func (s *Stack) OutboxCounts(t testing.TB) map[ivr.OutboxStatus]int {
	t.Helper()
	out := map[ivr.OutboxStatus]int{}
	for _, st := range []ivr.OutboxStatus{ivr.OutboxPending, ivr.OutboxDelivered, ivr.OutboxDead} {
		items, err := s.Store.ListOutbox(context.Background(), st, 1000)
		if err != nil {
			t.Fatal(err)
		}
		out[st] = len(items)
	}
	return out
}

// UserExists reports whether the demo business has a user with the
// platform id on ch (nothing is stored for a refused request).
func (s *Stack) UserExists(t testing.TB, ch ivr.Channel, externalID string) bool {
	t.Helper()
	_, err := s.Store.GetUser(context.Background(), demo.BusinessID, ch, externalID)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// Messages returns the texts of the open conversation of a user, oldest
// first, as "sender: text".
func (s *Stack) Messages(t testing.TB, ch ivr.Channel, externalID string) []string {
	t.Helper()
	ctx := context.Background()
	u, err := s.Store.GetUser(ctx, demo.BusinessID, ch, externalID)
	if err != nil {
		t.Fatalf("user %s/%s: %v", ch, externalID, err)
	}
	conv, err := s.Store.OpenConversation(ctx, demo.BusinessID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Store.ListMessages(ctx, conv.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.Sender+": "+m.Text)
	}
	return out
}

// Serve runs one request through h and returns the recorded response.
func Serve(h http.Handler, method, target string, body []byte, header http.Header) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// CounterValue returns the value of a counter or gauge of reg with the
// given labels (0 when absent).
func CounterValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
