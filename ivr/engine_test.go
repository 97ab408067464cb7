package ivr_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// scriptedBot answers "echo: <text>", or runs fn when set.
type scriptedBot struct {
	mu    sync.Mutex
	calls []string
	fn    func(ctx context.Context, req bot.Request) (bot.Response, error)
}

func (b *scriptedBot) Reply(ctx context.Context, req bot.Request) (bot.Response, error) {
	b.mu.Lock()
	b.calls = append(b.calls, req.Text)
	b.mu.Unlock()
	if b.fn != nil {
		return b.fn(ctx, req)
	}
	return bot.Response{Messages: []bot.Message{{Text: "echo: " + req.Text}}, Node: "echo", Confidence: 0.9}, nil
}

func (b *scriptedBot) Calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.calls)
}

type fixture struct {
	st     store.Store
	bot    *scriptedBot
	engine *ivr.Engine
	reg    *prometheus.Registry
	biz    ivr.Business
	conn   ivr.Connection
}

func newFixture(t *testing.T, botTimeout time.Duration) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{st: storetest.NewSQLite(t), bot: &scriptedBot{}, reg: prometheus.NewRegistry()}
	f.biz = ivr.Business{Name: "test", TokenHash: ivr.HashToken("tok"), ClientID: "c", FallbackMessage: "fallback", Active: true}
	if err := f.st.CreateBusiness(ctx, &f.biz); err != nil {
		t.Fatal(err)
	}
	f.conn = ivr.Connection{BusinessID: f.biz.ID, Channel: ivr.ChannelWebhook, Identifier: "t", Active: true,
		Settings: ivr.ConnectionSettings{BreakMessage: "connection break message"}}
	if err := f.st.CreateConnection(ctx, &f.conn); err != nil {
		t.Fatal(err)
	}
	m, err := ivr.NewMetrics(f.reg)
	if err != nil {
		t.Fatal(err)
	}
	f.engine, err = ivr.NewEngine(ivr.EngineConfig{Store: f.st, Bot: f.bot, BotTimeout: botTimeout, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) inbound(user, text string) ivr.Inbound {
	return ivr.Inbound{BusinessID: f.biz.ID, Connection: f.conn, Channel: ivr.ChannelWebhook, UserExternalID: user, Text: text}
}

func transcript(t *testing.T, st store.Store, convID int64) []string {
	t.Helper()
	msgs, err := st.ListMessages(context.Background(), convID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Sender+": "+m.Text)
	}
	return out
}

func TestEngineStoresInboundAndReplyInOneConversation(t *testing.T) {
	f := newFixture(t, time.Second)
	ctx := context.Background()
	r1, err := f.engine.Handle(ctx, f.inbound("u1", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := f.engine.Handle(ctx, f.inbound("u1", "again"))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Conversation.ID != r2.Conversation.ID {
		t.Fatalf("second message opened conversation %d, want %d", r2.Conversation.ID, r1.Conversation.ID)
	}
	if got := r2.Messages[0].Text; got != "echo: again" {
		t.Fatalf("reply = %q", got)
	}
	if r1.Inbound.ID == 0 || len(r1.Stored) != 1 || r1.Stored[0].ID == 0 {
		t.Fatalf("messages not stored with ids: inbound %d, stored %+v", r1.Inbound.ID, r1.Stored)
	}
	want := []string{"user: hello", "bot: echo: hello", "user: again", "bot: echo: again"}
	if got := transcript(t, f.st, r1.Conversation.ID); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("transcript = %q, want %q", got, want)
	}
}

func TestEngineBotFailureAnswersWithBreakMessage(t *testing.T) {
	tests := []struct {
		name       string
		fn         func(ctx context.Context, req bot.Request) (bot.Response, error)
		wantReason string
	}{
		{
			name: "timeout",
			fn: func(ctx context.Context, req bot.Request) (bot.Response, error) {
				<-ctx.Done() // a bot that never answers
				return bot.Response{}, ctx.Err()
			},
			wantReason: "timeout",
		},
		{
			name: "error",
			fn: func(ctx context.Context, req bot.Request) (bot.Response, error) {
				return bot.Response{}, fmt.Errorf("remote down: %w", bot.ErrUnavailable)
			},
			wantReason: "error",
		},
		{
			name: "no messages",
			fn: func(ctx context.Context, req bot.Request) (bot.Response, error) {
				return bot.Response{}, nil
			},
			wantReason: "error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 50*time.Millisecond)
			f.bot.fn = tt.fn
			r, err := f.engine.Handle(context.Background(), f.inbound("u1", "hi"))
			if err != nil {
				t.Fatal(err)
			}
			if !r.Failed || r.FailReason != tt.wantReason {
				t.Fatalf("Failed=%v FailReason=%q, want true %q", r.Failed, r.FailReason, tt.wantReason)
			}
			if len(r.Messages) != 1 || r.Messages[0].Text != "connection break message" {
				t.Fatalf("reply = %+v, want the connection's break message", r.Messages)
			}
			if got := counterValue(t, f.reg, "koel_bot_failures_total", tt.wantReason); got != 1 {
				t.Fatalf("koel_bot_failures_total{reason=%q} = %v, want 1", tt.wantReason, got)
			}
			want := []string{"user: hi", "bot: connection break message"}
			if got := transcript(t, f.st, r.Conversation.ID); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("transcript = %q, want %q", got, want)
			}
		})
	}
}

// counterValue reads one labelled counter from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, labelValue string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == labelValue {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestEngineFillsInTheBusinessFallback(t *testing.T) {
	f := newFixture(t, time.Second)
	f.bot.fn = func(ctx context.Context, req bot.Request) (bot.Response, error) {
		return bot.Response{Fallback: true}, nil // a remote bot's empty answer
	}
	r, err := f.engine.Handle(context.Background(), f.inbound("u1", "gibberish"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed || !r.Fallback || len(r.Messages) != 1 || r.Messages[0].Text != "fallback" {
		t.Fatalf("reply = %+v, want the business fallback message", r)
	}
}

func TestEngineDropsDuplicatePlatformMessages(t *testing.T) {
	f := newFixture(t, time.Second)
	in := f.inbound("u1", "hello")
	in.ExternalMessageID = "wamid.1"
	r1, err := f.engine.Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := f.engine.Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Duplicate || !r2.Duplicate {
		t.Fatalf("Duplicate = %v, %v; want false, true", r1.Duplicate, r2.Duplicate)
	}
	if r2.Inbound.ID != r1.Inbound.ID {
		t.Fatalf("duplicate points at message %d, want %d", r2.Inbound.ID, r1.Inbound.ID)
	}
	if f.bot.Calls() != 1 {
		t.Fatalf("bot asked %d times, want 1", f.bot.Calls())
	}
}

func TestEngineRefusesUnregisteredUsersAndStoresNothing(t *testing.T) {
	f := newFixture(t, time.Second)
	ctx := context.Background()
	in := f.inbound("stranger", "hello")
	in.RequireRegistered = true
	if _, err := f.engine.Handle(ctx, in); !errors.Is(err, ivr.ErrUserNotRegistered) {
		t.Fatalf("err = %v, want ErrUserNotRegistered", err)
	}
	if _, err := f.st.GetUser(ctx, f.biz.ID, ivr.ChannelWebhook, "stranger"); !errors.Is(err, ivr.ErrNotFound) {
		t.Fatalf("user stored despite refusal: err = %v", err)
	}
	if f.bot.Calls() != 0 {
		t.Fatal("bot was asked for an unregistered user")
	}
	if _, err := f.st.RegisterUser(ctx, f.biz.ID, ivr.ChannelWebhook, "stranger"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.engine.Handle(ctx, in); err != nil {
		t.Fatalf("after registration: %v", err)
	}
}

func TestEngineStaysQuietWhileAnAgentOwnsTheConversation(t *testing.T) {
	f := newFixture(t, time.Second)
	ctx := context.Background()
	r1, err := f.engine.Handle(ctx, f.inbound("u1", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetHandoff(ctx, r1.Conversation.ID, ivr.HandoffAgent); err != nil {
		t.Fatal(err)
	}
	r2, err := f.engine.Handle(ctx, f.inbound("u1", "are you there"))
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Suppressed || len(r2.Messages) != 0 {
		t.Fatalf("Suppressed=%v messages=%v, want true and none", r2.Suppressed, r2.Messages)
	}
	if f.bot.Calls() != 1 {
		t.Fatalf("bot asked %d times, want 1", f.bot.Calls())
	}
	if got := transcript(t, f.st, r1.Conversation.ID); got[len(got)-1] != "user: are you there" {
		t.Fatalf("inbound not stored: %q", got)
	}
}

type failingDeliverer struct{}

func (failingDeliverer) Deliveries(ivr.Inbound, ivr.User, ivr.Conversation, []*ivr.Message) ([]*ivr.OutboxItem, error) {
	return nil, errors.New("cannot encode")
}

type oneDelivery struct{ url string }

func (d oneDelivery) Deliveries(in ivr.Inbound, _ ivr.User, _ ivr.Conversation, reply []*ivr.Message) ([]*ivr.OutboxItem, error) {
	var items []*ivr.OutboxItem
	for _, m := range reply {
		if m.ID == 0 {
			return nil, errors.New("reply message has no id yet")
		}
		items = append(items, &ivr.OutboxItem{ConnectionID: in.Connection.ID, IdempotencyKey: fmt.Sprintf("k-%d", m.ID),
			URL: d.url, Body: []byte(m.Text), Status: ivr.OutboxPending, NextAttemptAt: time.Now()})
	}
	return items, nil
}

func TestEngineStoresReplyAndDeliveriesAtomically(t *testing.T) {
	ctx := context.Background()
	t.Run("deliveries stored with the reply", func(t *testing.T) {
		f := newFixture(t, time.Second)
		in := f.inbound("u1", "hello")
		in.Deliver = oneDelivery{url: "http://127.0.0.1:9/hook"}
		r, err := f.engine.Handle(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		items, err := f.st.ListOutbox(ctx, ivr.OutboxPending, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != 1 || items[0].IdempotencyKey != fmt.Sprintf("k-%d", r.Stored[0].ID) {
			t.Fatalf("outbox = %+v, want one item keyed by reply %d", items, r.Stored[0].ID)
		}
	})
	t.Run("a failing deliverer stores no reply", func(t *testing.T) {
		f := newFixture(t, time.Second)
		in := f.inbound("u1", "hello")
		in.Deliver = failingDeliverer{}
		if _, err := f.engine.Handle(ctx, in); err == nil {
			t.Fatal("Handle succeeded with a failing deliverer")
		}
		u, err := f.st.GetUser(ctx, f.biz.ID, ivr.ChannelWebhook, "u1")
		if err != nil {
			t.Fatal(err)
		}
		conv, err := f.st.OpenConversation(ctx, f.biz.ID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"user: hello"}
		if got := transcript(t, f.st, conv.ID); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("transcript = %q, want only the inbound %q", got, want)
		}
	})
}

func TestEngineSerializesTurnsOfOneUser(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	ctx := context.Background()
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.engine.Handle(ctx, f.inbound("u1", fmt.Sprintf("m%d", i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	u, err := f.st.GetUser(ctx, f.biz.ID, ivr.ChannelWebhook, "u1")
	if err != nil {
		t.Fatal(err)
	}
	conv, err := f.st.OpenConversation(ctx, f.biz.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := transcript(t, f.st, conv.ID)
	if len(got) != 2*n {
		t.Fatalf("%d messages stored, want %d", len(got), 2*n)
	}
	// Turns never interleave: every user message is followed by its reply.
	for i := 0; i < len(got); i += 2 {
		user, reply := got[i], got[i+1]
		if !strings.HasPrefix(user, "user: ") || reply != "bot: echo: "+strings.TrimPrefix(user, "user: ") {
			t.Fatalf("turns interleaved at %d: %q then %q", i, user, reply)
		}
	}
}

func TestEngineValidatesText(t *testing.T) {
	f := newFixture(t, time.Second)
	if _, err := f.engine.Handle(context.Background(), f.inbound("u1", "")); !errors.Is(err, ivr.ErrEmptyText) {
		t.Fatalf("empty text: err = %v", err)
	}
	long := strings.Repeat("a", ivr.MaxTextBytes+1)
	if _, err := f.engine.Handle(context.Background(), f.inbound("u1", long)); !errors.Is(err, ivr.ErrTextTooLong) {
		t.Fatalf("long text: err = %v", err)
	}
	if f.bot.Calls() != 0 {
		t.Fatal("bot asked for invalid input")
	}
}
