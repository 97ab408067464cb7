package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// benchUsers is how many distinct users the turn benchmarks spread over.
const benchUsers = 1000

type benchEnv struct {
	s    store.Store
	biz  ivr.Business
	conn ivr.Connection
}

func newBenchEnv(b *testing.B, s store.Store) benchEnv {
	b.Helper()
	ctx := context.Background()
	e := benchEnv{s: s, biz: ivr.Business{Name: "bench", Active: true}}
	if err := s.CreateBusiness(ctx, &e.biz); err != nil {
		b.Fatal(err)
	}
	e.conn = ivr.Connection{BusinessID: e.biz.ID, Channel: ivr.ChannelWebhook, Identifier: "bench", Active: true}
	if err := s.CreateConnection(ctx, &e.conn); err != nil {
		b.Fatal(err)
	}
	return e
}

// turn is what the engine does for one inbound message: dedupe lookup,
// EnsureUser, OpenConversation, AppendMessages(inbound), AppendMessages(
// reply + one outbox item).
func (e benchEnv) turn(ctx context.Context, n int64) error {
	ext := fmt.Sprintf("m-%d", n)
	userExt := fmt.Sprintf("+91980%07d", n%benchUsers)
	if _, err := e.s.GetMessageByExternalID(ctx, e.biz.ID, ivr.ChannelWebhook, ext); err == nil {
		return fmt.Errorf("message %s exists", ext)
	}
	u, err := e.s.EnsureUser(ctx, e.biz.ID, ivr.ChannelWebhook, userExt, true)
	if err != nil {
		return err
	}
	c, err := e.s.OpenConversation(ctx, e.biz.ID, u.ID)
	if err != nil {
		return err
	}
	in := &ivr.Message{BusinessID: e.biz.ID, ConversationID: c.ID, UserID: u.ID, Sender: ivr.SenderUser,
		Text: "what are your opening hours?", Channel: ivr.ChannelWebhook, ExternalID: ext}
	if err := e.s.AppendMessages(ctx, []*ivr.Message{in}, nil); err != nil {
		return err
	}
	out := &ivr.Message{BusinessID: e.biz.ID, ConversationID: c.ID, UserID: u.ID, Sender: ivr.SenderBot,
		Text: "We are open 9 to 5, Monday to Saturday.", QuickReplies: []string{"Thanks"}, Channel: ivr.ChannelWebhook,
		Node: "hours", Confidence: 0.9}
	item := &ivr.OutboxItem{ConnectionID: e.conn.ID, IdempotencyKey: "reply-" + ext, URL: "https://integrator.example/hook",
		Body: []byte(`{"text":"We are open 9 to 5, Monday to Saturday."}`), ContentType: "application/json", MaxAttempts: 5}
	return e.s.AppendMessages(ctx, []*ivr.Message{out}, []*ivr.OutboxItem{item})
}

func benchSuite(b *testing.B, open func(testing.TB) store.Store) {
	b.Run("EnsureUserExisting", func(b *testing.B) {
		e := newBenchEnv(b, open(b))
		ctx := context.Background()
		if _, err := e.s.EnsureUser(ctx, e.biz.ID, ivr.ChannelWebhook, "u", true); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := e.s.EnsureUser(ctx, e.biz.ID, ivr.ChannelWebhook, "u", true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EnsureUserNew", func(b *testing.B) {
		e := newBenchEnv(b, open(b))
		ctx := context.Background()
		i := 0
		for b.Loop() {
			i++
			if _, err := e.s.EnsureUser(ctx, e.biz.ID, ivr.ChannelWebhook, fmt.Sprint(i), true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OpenConversationExisting", func(b *testing.B) {
		e := newBenchEnv(b, open(b))
		ctx := context.Background()
		u, err := e.s.EnsureUser(ctx, e.biz.ID, ivr.ChannelWebhook, "u", true)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := e.s.OpenConversation(ctx, e.biz.ID, u.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendInbound", func(b *testing.B) {
		e := newBenchEnv(b, open(b))
		ctx := context.Background()
		u, _ := e.s.EnsureUser(ctx, e.biz.ID, ivr.ChannelWebhook, "u", true)
		c, err := e.s.OpenConversation(ctx, e.biz.ID, u.ID)
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			m := &ivr.Message{BusinessID: e.biz.ID, ConversationID: c.ID, UserID: u.ID, Sender: ivr.SenderUser,
				Text: "hello", Channel: ivr.ChannelWebhook, ExternalID: fmt.Sprint(i)}
			if err := e.s.AppendMessages(ctx, []*ivr.Message{m}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendReplyWithOutbox", func(b *testing.B) {
		e := newBenchEnv(b, open(b))
		ctx := context.Background()
		u, _ := e.s.EnsureUser(ctx, e.biz.ID, ivr.ChannelWebhook, "u", true)
		c, err := e.s.OpenConversation(ctx, e.biz.ID, u.ID)
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			m := &ivr.Message{BusinessID: e.biz.ID, ConversationID: c.ID, UserID: u.ID, Sender: ivr.SenderBot,
				Text: "We are open 9 to 5.", Channel: ivr.ChannelWebhook}
			o := &ivr.OutboxItem{IdempotencyKey: fmt.Sprint(i), URL: "https://x/", Body: []byte(`{"text":"We are open 9 to 5."}`)}
			if err := e.s.AppendMessages(ctx, []*ivr.Message{m}, []*ivr.OutboxItem{o}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MessageTurn", func(b *testing.B) {
		e := newBenchEnv(b, open(b))
		ctx := context.Background()
		var n int64
		for b.Loop() {
			n++
			if err := e.turn(ctx, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	// MessageTurnParallel is the throughput figure: ns/op is the wall time
	// per inbound message with GOMAXPROCS×4 concurrent handlers.
	b.Run("MessageTurnParallel", func(b *testing.B) {
		e := newBenchEnv(b, open(b))
		ctx := context.Background()
		var n atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := e.turn(ctx, n.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

func BenchmarkSQLite(b *testing.B) {
	benchSuite(b, func(tb testing.TB) store.Store { return storetest.NewSQLite(tb) })
}

func BenchmarkPostgres(b *testing.B) {
	benchSuite(b, func(tb testing.TB) store.Store { return storetest.NewPostgres(tb) })
}
