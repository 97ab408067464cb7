package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
)

// Run runs the behaviour suite against stores made by open, a fresh empty
// store per sub-test. Every implementation of [store.Store] must pass it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Businesses", testBusinesses},
		{"BusinessExplicitIDThenAuto", testBusinessExplicitID},
		{"Connections", testConnections},
		{"Users", testUsers},
		{"Conversations", testConversations},
		{"Messages", testMessages},
		{"MessagesDuplicateRollsBack", testMessagesDuplicate},
		{"AppendMessagesThen", testAppendMessagesThen},
		{"AppendInbound", testAppendInbound},
		{"InvalidInput", testInvalidInput},
		{"Calls", testCalls},
		{"Turns", testTurns},
		{"FAQ", testFAQ},
		{"FAQFailureKeepsPrevious", testFAQFailure},
		{"Tasks", testTasks},
		{"Outbox", testOutbox},
		{"OutboxConversationOrder", testOutboxConversationOrder},
		{"OutboxSkipAndRelease", testOutboxSkipAndRelease},
		{"OutboxChannelAndRecipient", testOutboxChannelAndRecipient},
		{"OutboxDeadLetters", testOutboxDeadLetters},
		{"OutboxExpire", testOutboxExpire},
		{"Timestamps", testTimestamps},
		{"RaceUpdateCall", testRaceUpdateCall},
		{"RaceClaimOutbox", testRaceClaimOutbox},
		{"RaceOpenConversation", testRaceOpenConversation},
		{"RaceEnsureUser", testRaceEnsureUser},
		{"RaceAppendInbound", testRaceAppendInbound},
		{"RaceAcquireCallLock", testRaceAcquireCallLock},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// Clock is a manual clock for [RunClocked].
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// RunClocked runs the time-dependent part of the suite (lock leases, row
// timestamps) against stores made by open with the given clock (pass it
// to [store.WithClock]).
func RunClocked(t *testing.T, open func(t *testing.T, now func() time.Time) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, c *Clock)
	}{
		{"CallLocks", testCallLocks},
		{"ClockStampsRows", testClockStamps},
		{"OutboxStats", testOutboxStats},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock(time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC))
			tc.fn(t, open(t, c.Now), c)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// seed creates a business, a connection, a user and an open conversation.
type fixture struct {
	biz  ivr.Business
	conn ivr.Connection
	user ivr.User
	conv ivr.Conversation
}

func seed(t *testing.T, s store.Store) fixture {
	t.Helper()
	ctx := ctxT(t)
	var f fixture
	f.biz = ivr.Business{Name: "Bluebird", ClientID: "bb", FallbackMessage: "Sorry?", Active: true, TokenHash: []byte{1, 2, 3}}
	must(t, s.CreateBusiness(ctx, &f.biz))
	f.conn = ivr.Connection{BusinessID: f.biz.ID, Channel: ivr.ChannelWebhook, Identifier: "bb-" + fmt.Sprint(f.biz.ID), Active: true,
		Settings: ivr.ConnectionSettings{WelcomeMessage: "Hi", SilencePeriod: 2}}
	must(t, s.CreateConnection(ctx, &f.conn))
	var err error
	f.user, err = s.EnsureUser(ctx, f.biz.ID, ivr.ChannelWebhook, "+919800000001", true)
	must(t, err)
	f.conv, err = s.OpenConversation(ctx, f.biz.ID, f.user.ID)
	must(t, err)
	return f
}

func testBusinesses(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := ivr.Business{Name: "Acme", TokenHash: []byte("hash"), ClientID: "acme", FallbackMessage: "Pardon?", Active: true}
	must(t, s.CreateBusiness(ctx, &b))
	if b.ID == 0 || b.CreatedAt.IsZero() {
		t.Fatalf("CreateBusiness did not set ID/CreatedAt: %+v", b)
	}
	got, err := s.GetBusiness(ctx, b.ID)
	must(t, err)
	diff(t, "business", got, b)

	b.Name, b.ClientID, b.FallbackMessage, b.Active, b.TokenHash = "Acme 2", "acme2", "What?", false, nil
	must(t, s.UpdateBusiness(ctx, b))
	got, err = s.GetBusiness(ctx, b.ID)
	must(t, err)
	diff(t, "updated business", got, b)

	_, err = s.GetBusiness(ctx, b.ID+100)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.UpdateBusiness(ctx, ivr.Business{ID: b.ID + 100, Name: "x"}), store.ErrNotFound)
	dup := ivr.Business{ID: b.ID, Name: "dup"}
	wantErr(t, s.CreateBusiness(ctx, &dup), store.ErrConflict)
}

func testBusinessExplicitID(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	demo := ivr.Business{ID: 1, Name: "demo", Active: true}
	must(t, s.CreateBusiness(ctx, &demo))
	if demo.ID != 1 {
		t.Fatalf("explicit id: got %d", demo.ID)
	}
	next := ivr.Business{Name: "next"}
	must(t, s.CreateBusiness(ctx, &next))
	if next.ID <= 1 {
		t.Fatalf("auto id after explicit id 1 = %d, want > 1", next.ID)
	}
	high := ivr.Business{ID: 50, Name: "high"}
	must(t, s.CreateBusiness(ctx, &high))
	after := ivr.Business{Name: "after"}
	must(t, s.CreateBusiness(ctx, &after))
	if after.ID <= 50 {
		t.Fatalf("auto id after explicit id 50 = %d, want > 50", after.ID)
	}
}

func testConnections(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := ivr.Business{Name: "b"}
	must(t, s.CreateBusiness(ctx, &b))
	settings := ivr.ConnectionSettings{
		WelcomeMessage: "Welcome to Bluebird", BreakMessage: "One moment", SilencePeriod: 2, MaxRecordTime: 15,
		SecretKey: "s3cret", AutoRegister: true, Extra: map[string]string{"region": "in"},
	}
	c2 := ivr.Connection{BusinessID: b.ID, Channel: ivr.ChannelWebhook, Identifier: "demo", Active: true}
	c1 := ivr.Connection{BusinessID: b.ID, Channel: ivr.ChannelKooKoo, Identifier: "demo", Active: true, Settings: settings}
	must(t, s.CreateConnection(ctx, &c1))
	must(t, s.CreateConnection(ctx, &c2))
	if c1.ID == 0 || c2.ID <= c1.ID || c1.CreatedAt.IsZero() {
		t.Fatalf("ids/created: %d %d %v", c1.ID, c2.ID, c1.CreatedAt)
	}
	got, err := s.GetConnection(ctx, ivr.ChannelKooKoo, "demo")
	must(t, err)
	diff(t, "connection by identifier", got, c1)
	got, err = s.GetConnectionByID(ctx, c2.ID)
	must(t, err)
	diff(t, "connection by id", got, c2)
	list, err := s.ListConnections(ctx, b.ID)
	must(t, err)
	diff(t, "list", list, []ivr.Connection{c1, c2})

	dup := ivr.Connection{BusinessID: b.ID, Channel: ivr.ChannelKooKoo, Identifier: "demo"}
	wantErr(t, s.CreateConnection(ctx, &dup), store.ErrConflict)
	if dup.ID != 0 {
		t.Errorf("failed create set ID %d", dup.ID)
	}
	orphan := ivr.Connection{BusinessID: b.ID + 99, Channel: ivr.ChannelJio, Identifier: "x"}
	wantErr(t, s.CreateConnection(ctx, &orphan), store.ErrNotFound)

	c1.Active = false
	c1.Settings.WelcomeMessage = "Hello again"
	c1.Settings.Extra = nil
	must(t, s.UpdateConnection(ctx, c1))
	got, err = s.GetConnectionByID(ctx, c1.ID)
	must(t, err)
	diff(t, "updated connection", got, c1)
	wantErr(t, s.UpdateConnection(ctx, ivr.Connection{ID: c2.ID + 99}), store.ErrNotFound)
	_, err = s.GetConnection(ctx, ivr.ChannelFacebook, "demo")
	wantErr(t, err, store.ErrNotFound)
	list, err = s.ListConnections(ctx, b.ID+99)
	must(t, err)
	if len(list) != 0 {
		t.Errorf("list of unknown business: %v", list)
	}
}

func testUsers(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := ivr.Business{Name: "b"}
	must(t, s.CreateBusiness(ctx, &b))
	b2 := ivr.Business{Name: "b2"}
	must(t, s.CreateBusiness(ctx, &b2))

	_, err := s.GetUser(ctx, b.ID, ivr.ChannelWebhook, "u1")
	wantErr(t, err, store.ErrNotFound)

	u, err := s.EnsureUser(ctx, b.ID, ivr.ChannelWebhook, "u1", false)
	must(t, err)
	if u.ID == 0 || u.Registered || u.BusinessID != b.ID || u.Channel != ivr.ChannelWebhook || u.ExternalID != "u1" || u.CreatedAt.IsZero() {
		t.Fatalf("EnsureUser created %+v", u)
	}
	again, err := s.EnsureUser(ctx, b.ID, ivr.ChannelWebhook, "u1", true)
	must(t, err)
	diff(t, "existing user is returned unchanged", again, u)

	reg, err := s.RegisterUser(ctx, b.ID, ivr.ChannelWebhook, "u1")
	must(t, err)
	want := u
	want.Registered = true
	diff(t, "registered", reg, want)

	fresh, err := s.RegisterUser(ctx, b.ID, ivr.ChannelWebhook, "u2")
	must(t, err)
	if !fresh.Registered || fresh.ID == u.ID {
		t.Errorf("RegisterUser of a new user: %+v", fresh)
	}

	other, err := s.EnsureUser(ctx, b.ID, ivr.ChannelWhatsApp, "u1", true)
	must(t, err)
	otherBiz, err := s.EnsureUser(ctx, b2.ID, ivr.ChannelWebhook, "u1", true)
	must(t, err)
	if other.ID == u.ID || otherBiz.ID == u.ID || other.ID == otherBiz.ID {
		t.Errorf("users on another channel/business share ids: %d %d %d", u.ID, other.ID, otherBiz.ID)
	}

	got, err := s.GetUser(ctx, b.ID, ivr.ChannelWebhook, "u1")
	must(t, err)
	diff(t, "GetUser", got, want)
	got, err = s.GetUserByID(ctx, u.ID)
	must(t, err)
	diff(t, "GetUserByID", got, want)
	_, err = s.GetUserByID(ctx, 1<<40)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.EnsureUser(ctx, b.ID+99, ivr.ChannelWebhook, "u1", true)
	wantErr(t, err, store.ErrNotFound)
}

func testConversations(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := seed(t, s)
	c := f.conv
	if c.ConversationNo != 1 || !c.Open || c.Handoff != ivr.HandoffBot || c.UserID != f.user.ID || c.BusinessID != f.biz.ID || c.CreatedAt.IsZero() || !c.ClosedAt.IsZero() {
		t.Fatalf("first conversation: %+v", c)
	}
	again, err := s.OpenConversation(ctx, f.biz.ID, f.user.ID)
	must(t, err)
	diff(t, "open conversation again", again, c)

	must(t, s.SetHandoff(ctx, c.ID, ivr.HandoffPending))
	got, err := s.GetConversation(ctx, c.ID)
	must(t, err)
	if got.Handoff != ivr.HandoffPending {
		t.Errorf("handoff = %q", got.Handoff)
	}
	wantErr(t, s.SetHandoff(ctx, c.ID, "robot"), store.ErrInvalid)
	wantErr(t, s.SetHandoff(ctx, c.ID+99, ivr.HandoffAgent), store.ErrNotFound)

	must(t, s.CloseConversation(ctx, c.ID))
	closed, err := s.GetConversation(ctx, c.ID)
	must(t, err)
	if closed.Open || closed.ClosedAt.IsZero() {
		t.Fatalf("closed conversation: %+v", closed)
	}
	must(t, s.CloseConversation(ctx, c.ID))
	closedAgain, err := s.GetConversation(ctx, c.ID)
	must(t, err)
	diff(t, "closing twice keeps the first close", closedAgain, closed)
	wantErr(t, s.CloseConversation(ctx, c.ID+99), store.ErrNotFound)

	second, err := s.OpenConversation(ctx, f.biz.ID, f.user.ID)
	must(t, err)
	if second.ID == c.ID || second.ConversationNo != 2 || !second.Open || second.Handoff != ivr.HandoffBot {
		t.Fatalf("second conversation: %+v", second)
	}
	byNo, err := s.GetConversationByNo(ctx, f.user.ID, 1)
	must(t, err)
	diff(t, "by number", byNo, closed)
	_, err = s.GetConversationByNo(ctx, f.user.ID, 3)
	wantErr(t, err, store.ErrNotFound)

	// Numbers count per user.
	u2, err := s.EnsureUser(ctx, f.biz.ID, ivr.ChannelWebhook, "other", true)
	must(t, err)
	c2, err := s.OpenConversation(ctx, f.biz.ID, u2.ID)
	must(t, err)
	if c2.ConversationNo != 1 {
		t.Errorf("another user's first conversation no = %d", c2.ConversationNo)
	}

	_, err = s.OpenConversation(ctx, f.biz.ID, 1<<40)
	wantErr(t, err, store.ErrNotFound)
	b2 := ivr.Business{Name: "b2"}
	must(t, s.CreateBusiness(ctx, &b2))
	_, err = s.OpenConversation(ctx, b2.ID, f.user.ID)
	wantErr(t, err, store.ErrInvalid)
}

func msg(f fixture, sender, text, ext string) *ivr.Message {
	return &ivr.Message{BusinessID: f.biz.ID, ConversationID: f.conv.ID, UserID: f.user.ID, Sender: sender, Text: text,
		Channel: ivr.ChannelWebhook, ExternalID: ext}
}

func deref(ms []*ivr.Message) []ivr.Message {
	out := make([]ivr.Message, len(ms))
	for i, m := range ms {
		out[i] = *m
	}
	return out
}

func testMessages(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := seed(t, s)
	in := msg(f, ivr.SenderUser, "what are your hours?", "wamid.1")
	must(t, s.AppendMessages(ctx, []*ivr.Message{in}, nil))
	if in.ID == 0 || in.CreatedAt.IsZero() {
		t.Fatalf("inbound not stamped: %+v", in)
	}
	reply := msg(f, ivr.SenderBot, "9 to 5", "")
	reply.QuickReplies = []string{"Thanks", "Talk to a human"}
	reply.Node, reply.Confidence = "hours", 0.875
	agent := msg(f, ivr.AgentSender("Asha"), "Anything else?", "")
	item := &ivr.OutboxItem{ConnectionID: f.conn.ID, IdempotencyKey: "k1", URL: "https://example.com/hook",
		Body: []byte(`{"text":"9 to 5"}`), ContentType: "application/json", MaxAttempts: 5}
	must(t, s.AppendMessages(ctx, []*ivr.Message{reply, agent}, []*ivr.OutboxItem{item}))
	if !(in.ID < reply.ID && reply.ID < agent.ID) || item.ID == 0 || item.Status != ivr.OutboxPending || item.NextAttemptAt.IsZero() {
		t.Fatalf("ids/outbox: %d %d %d %+v", in.ID, reply.ID, agent.ID, item)
	}
	all, err := s.ListMessages(ctx, f.conv.ID, 0)
	must(t, err)
	diff(t, "all messages", all, deref([]*ivr.Message{in, reply, agent}))
	newest, err := s.ListMessages(ctx, f.conv.ID, 2)
	must(t, err)
	diff(t, "newest two, oldest first", newest, deref([]*ivr.Message{reply, agent}))
	after, err := s.MessagesAfter(ctx, f.conv.ID, in.ID)
	must(t, err)
	diff(t, "after inbound", after, deref([]*ivr.Message{reply, agent}))
	none, err := s.MessagesAfter(ctx, f.conv.ID, agent.ID)
	must(t, err)
	if len(none) != 0 {
		t.Errorf("after last: %v", none)
	}
	byExt, err := s.GetMessageByExternalID(ctx, f.biz.ID, ivr.ChannelWebhook, "wamid.1")
	must(t, err)
	diff(t, "by external id", byExt, *in)
	_, err = s.GetMessageByExternalID(ctx, f.biz.ID, ivr.ChannelWhatsApp, "wamid.1")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetMessageByExternalID(ctx, f.biz.ID, ivr.ChannelWebhook, "")
	wantErr(t, err, store.ErrNotFound)

	stored, err := s.GetOutboxItem(ctx, item.ID)
	must(t, err)
	diff(t, "outbox item", stored, *item)

	// The same external id on another channel is another message.
	wa := msg(f, ivr.SenderUser, "hi", "wamid.1")
	wa.Channel = ivr.ChannelWhatsApp
	must(t, s.AppendMessages(ctx, []*ivr.Message{wa}, nil))
	// Nothing to append is a no-op.
	must(t, s.AppendMessages(ctx, nil, nil))

	orphan := msg(f, ivr.SenderUser, "x", "")
	orphan.ConversationID = f.conv.ID + 99
	wantErr(t, s.AppendMessages(ctx, []*ivr.Message{orphan}, nil), store.ErrNotFound)
}

func testMessagesDuplicate(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := seed(t, s)
	first := msg(f, ivr.SenderUser, "hello", "m-1")
	must(t, s.AppendMessages(ctx, []*ivr.Message{first}, nil))

	ok := msg(f, ivr.SenderUser, "fine", "m-2")
	dup := msg(f, ivr.SenderUser, "hello again", "m-1")
	item := &ivr.OutboxItem{IdempotencyKey: "dup-k", URL: "https://example.com/"}
	err := s.AppendMessages(ctx, []*ivr.Message{ok, dup}, []*ivr.OutboxItem{item})
	wantErr(t, err, store.ErrConflict)
	if ok.ID != 0 || dup.ID != 0 || item.ID != 0 {
		t.Errorf("failed append set ids: %d %d %d", ok.ID, dup.ID, item.ID)
	}
	all, err := s.ListMessages(ctx, f.conv.ID, 0)
	must(t, err)
	diff(t, "messages after failed append", all, []ivr.Message{*first})
	_, err = s.GetMessageByExternalID(ctx, f.biz.ID, ivr.ChannelWebhook, "m-2")
	wantErr(t, err, store.ErrNotFound)
	pending, err := s.ListOutbox(ctx, ivr.OutboxPending, 0)
	must(t, err)
	if len(pending) != 0 {
		t.Errorf("outbox after failed append: %v", pending)
	}

	// A duplicate idempotency key rolls back the messages too.
	m := msg(f, ivr.SenderBot, "reply", "")
	must(t, s.AppendMessages(ctx, nil, []*ivr.OutboxItem{{IdempotencyKey: "k", URL: "https://example.com/"}}))
	err = s.AppendMessages(ctx, []*ivr.Message{m}, []*ivr.OutboxItem{{IdempotencyKey: "k", URL: "https://example.com/"}})
	wantErr(t, err, store.ErrConflict)
	all, err = s.ListMessages(ctx, f.conv.ID, 0)
	must(t, err)
	if len(all) != 1 {
		t.Errorf("messages after duplicate outbox key: %d, want 1", len(all))
	}
}

func testAppendMessagesThen(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := seed(t, s)
	a, b := msg(f, ivr.SenderBot, "one", ""), msg(f, ivr.SenderBot, "two", "")
	var items []*ivr.OutboxItem
	err := s.AppendMessagesThen(ctx, []*ivr.Message{a, b}, func(stored []*ivr.Message) ([]*ivr.OutboxItem, error) {
		for _, m := range stored {
			if m.ID == 0 {
				return nil, errors.New("message id not set before then")
			}
			items = append(items, &ivr.OutboxItem{IdempotencyKey: fmt.Sprintf("msg-%d", m.ID), URL: "https://example.com/",
				Body: []byte(m.Text)})
		}
		return items, nil
	})
	must(t, err)
	for i, it := range items {
		got, err := s.GetOutboxItem(ctx, it.ID)
		must(t, err)
		if got.IdempotencyKey != fmt.Sprintf("msg-%d", []*ivr.Message{a, b}[i].ID) {
			t.Errorf("item %d key %q", i, got.IdempotencyKey)
		}
	}

	boom := errors.New("boom")
	c := msg(f, ivr.SenderBot, "three", "")
	err = s.AppendMessagesThen(ctx, []*ivr.Message{c}, func([]*ivr.Message) ([]*ivr.OutboxItem, error) { return nil, boom })
	wantErr(t, err, boom)
	if c.ID != 0 || !c.CreatedAt.IsZero() {
		t.Errorf("failed AppendMessagesThen left ID/CreatedAt set: %+v", c)
	}
	// then returning an invalid item fails the whole call.
	d := msg(f, ivr.SenderBot, "four", "")
	err = s.AppendMessagesThen(ctx, []*ivr.Message{d}, func([]*ivr.Message) ([]*ivr.OutboxItem, error) {
		return []*ivr.OutboxItem{{URL: "https://example.com/"}}, nil
	})
	wantErr(t, err, store.ErrInvalid)
	all, err := s.ListMessages(ctx, f.conv.ID, 0)
	must(t, err)
	diff(t, "messages", all, deref([]*ivr.Message{a, b}))
	must(t, s.AppendMessagesThen(ctx, []*ivr.Message{msg(f, ivr.SenderBot, "five", "")}, nil))
}

func testInvalidInput(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := seed(t, s)
	long := strings.Repeat("x", store.MaxKeyBytes+1)
	cases := []struct {
		name string
		run  func() error
	}{
		{"empty identifier", func() error {
			return s.CreateConnection(ctx, &ivr.Connection{BusinessID: f.biz.ID, Channel: ivr.ChannelJio})
		}},
		{"oversized identifier", func() error {
			return s.CreateConnection(ctx, &ivr.Connection{BusinessID: f.biz.ID, Channel: ivr.ChannelJio, Identifier: long})
		}},
		{"invalid UTF-8 in settings", func() error {
			return s.CreateConnection(ctx, &ivr.Connection{BusinessID: f.biz.ID, Channel: ivr.ChannelJio, Identifier: "j",
				Settings: ivr.ConnectionSettings{WelcomeMessage: "\xff"}})
		}},
		{"empty external id", func() error {
			_, err := s.EnsureUser(ctx, f.biz.ID, ivr.ChannelWebhook, "", true)
			return err
		}},
		{"NUL in text", func() error {
			return s.AppendMessages(ctx, []*ivr.Message{msg(f, ivr.SenderUser, "a\x00b", "")}, nil)
		}},
		{"invalid UTF-8 in text", func() error {
			return s.AppendMessages(ctx, []*ivr.Message{msg(f, ivr.SenderUser, "\xc3\x28", "")}, nil)
		}},
		{"nil message", func() error { return s.AppendMessages(ctx, []*ivr.Message{nil}, nil) }},
		{"empty sender", func() error { return s.AppendMessages(ctx, []*ivr.Message{msg(f, "", "x", "")}, nil) }},
		{"outbox without key", func() error {
			return s.AppendMessages(ctx, nil, []*ivr.OutboxItem{{URL: "https://example.com/"}})
		}},
		{"outbox recipient with NUL", func() error {
			return s.AppendMessages(ctx, nil, []*ivr.OutboxItem{{IdempotencyKey: "k", Recipient: "a\x00b"}})
		}},
		{"too many messages", func() error {
			ms := make([]*ivr.Message, store.MaxBatch+1)
			for i := range ms {
				ms[i] = msg(f, ivr.SenderBot, "x", "")
			}
			return s.AppendMessages(ctx, ms, nil)
		}},
		{"empty call sid", func() error { return s.CreateCall(ctx, &ivr.Call{}) }},
		{"empty lock owner", func() error { return s.AcquireCallLock(ctx, "sid", "", time.Second) }},
		{"zero lock ttl", func() error { return s.AcquireCallLock(ctx, "sid", "me", 0) }},
		{"empty task id", func() error { return s.CreateTask(ctx, &ivr.Task{BusinessID: f.biz.ID}) }},
		{"unknown task status", func() error { return s.CreateTask(ctx, &ivr.Task{ID: "t", Status: "exploded"}) }},
		{"claim limit 0", func() error { _, err := s.ClaimOutbox(ctx, time.Now(), 0, time.Second); return err }},
		{"claim lease 0", func() error { _, err := s.ClaimOutbox(ctx, time.Now(), 1, 0); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.run(), store.ErrInvalid) })
	}
	all, err := s.ListMessages(ctx, f.conv.ID, 0)
	must(t, err)
	if len(all) != 0 {
		t.Errorf("invalid input stored %d messages", len(all))
	}
	conns, err := s.ListConnections(ctx, f.biz.ID)
	must(t, err)
	if len(conns) != 1 {
		t.Errorf("invalid input stored connections: %d", len(conns))
	}
}

func testCalls(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := seed(t, s)
	c := ivr.Call{SID: "sid-1", ConnectionID: f.conn.ID, BusinessID: f.biz.ID, UserID: f.user.ID, ConversationID: f.conv.ID,
		Caller: "09800000001", CalledNumber: "08040000000", State: ivr.CallStateListening, Turn: 1}
	must(t, s.CreateCall(ctx, &c))
	if c.Version != 1 || c.StartedAt.IsZero() || c.UpdatedAt.IsZero() {
		t.Fatalf("created call: %+v", c)
	}
	got, err := s.GetCall(ctx, "sid-1")
	must(t, err)
	diff(t, "call", got, c)
	dup := ivr.Call{SID: "sid-1"}
	wantErr(t, s.CreateCall(ctx, &dup), store.ErrConflict)

	n, err := s.CountActiveCalls(ctx)
	must(t, err)
	if n != 1 {
		t.Errorf("active calls = %d, want 1", n)
	}

	stale := c
	c.Turn, c.Failures, c.LastEventKey, c.LastResponse = 2, 1, "Record:abc", "<response sid=\"sid-1\"/>"
	must(t, s.UpdateCall(ctx, &c))
	if c.Version != 2 {
		t.Fatalf("version after update = %d", c.Version)
	}
	got, err = s.GetCall(ctx, "sid-1")
	must(t, err)
	diff(t, "updated call", got, c)

	stale.State = ivr.CallStateMenu
	wantErr(t, s.UpdateCall(ctx, &stale), store.ErrVersionConflict)
	if stale.Version != 1 {
		t.Errorf("losing update changed version to %d", stale.Version)
	}
	got, err = s.GetCall(ctx, "sid-1")
	must(t, err)
	diff(t, "call after lost update", got, c)
	wantErr(t, s.UpdateCall(ctx, &ivr.Call{SID: "nope", Version: 1}), store.ErrNotFound)
	_, err = s.GetCall(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	c.State, c.Outcome, c.EndedAt = ivr.CallStateEnded, "completed", time.Now()
	must(t, s.UpdateCall(ctx, &c))
	got, err = s.GetCall(ctx, "sid-1")
	must(t, err)
	diff(t, "ended call", got, c)
	n, err = s.CountActiveCalls(ctx)
	must(t, err)
	if n != 0 {
		t.Errorf("active calls after end = %d", n)
	}
}

func testTurns(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	must(t, s.CreateCall(ctx, &ivr.Call{SID: "s1"}))
	must(t, s.CreateCall(ctx, &ivr.Call{SID: "s2"}))
	t2 := ivr.Turn{CallSID: "s1", Seq: 2, RecordingURL: "https://kookoo.in/rec/2.wav", EndReason: "silence", Transcript: "opening hours",
		Confidence: 0.5, Reply: "9 to 5", MessageID: 7, SpeechMS: 1200, FetchMS: 30, DecodeMS: 2, STTMS: 80, BotMS: 5, TotalMS: 130}
	t1 := ivr.Turn{CallSID: "s1", Seq: 1, RecordStatus: "ok", Error: "stt timeout"}
	other := ivr.Turn{CallSID: "s2", Seq: 1}
	for _, tt := range []*ivr.Turn{&t2, &t1, &other} {
		must(t, s.AddTurn(ctx, tt))
		if tt.ID == 0 || tt.CreatedAt.IsZero() {
			t.Fatalf("turn not stamped: %+v", tt)
		}
	}
	got, err := s.ListTurns(ctx, "s1")
	must(t, err)
	diff(t, "turns in seq order", got, []ivr.Turn{t1, t2})
	wantErr(t, s.AddTurn(ctx, &ivr.Turn{CallSID: "missing", Seq: 1}), store.ErrNotFound)
}

func testCallLocks(t *testing.T, s store.Store, c *Clock) {
	ctx := ctxT(t)
	must(t, s.AcquireCallLock(ctx, "sid", "node-a", 10*time.Second))
	wantErr(t, s.AcquireCallLock(ctx, "sid", "node-b", 10*time.Second), store.ErrLocked)
	must(t, s.AcquireCallLock(ctx, "other", "node-b", 10*time.Second))

	c.Advance(8 * time.Second)
	must(t, s.AcquireCallLock(ctx, "sid", "node-a", 10*time.Second)) // extend to t=18s
	c.Advance(5 * time.Second)                                       // t=13s: the original lease is over, the extension is not
	wantErr(t, s.AcquireCallLock(ctx, "sid", "node-b", 10*time.Second), store.ErrLocked)

	must(t, s.ReleaseCallLock(ctx, "sid", "node-b")) // not the owner: no effect, no error
	wantErr(t, s.AcquireCallLock(ctx, "sid", "node-b", 10*time.Second), store.ErrLocked)

	c.Advance(5 * time.Second) // t=18s: expired
	must(t, s.AcquireCallLock(ctx, "sid", "node-b", 10*time.Second))
	wantErr(t, s.AcquireCallLock(ctx, "sid", "node-a", 10*time.Second), store.ErrLocked)
	must(t, s.ReleaseCallLock(ctx, "sid", "node-b"))
	must(t, s.AcquireCallLock(ctx, "sid", "node-a", 10*time.Second))
	must(t, s.ReleaseCallLock(ctx, "never-locked", "node-a"))
}

func testClockStamps(t *testing.T, s store.Store, c *Clock) {
	ctx := ctxT(t)
	want := c.Now().Truncate(time.Microsecond)
	b := ivr.Business{Name: "b"}
	must(t, s.CreateBusiness(ctx, &b))
	if !b.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt = %v, want the injected clock's %v", b.CreatedAt, want)
	}
	got, err := s.GetBusiness(ctx, b.ID)
	must(t, err)
	if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("stored CreatedAt = %v", got.CreatedAt)
	}
	c.Advance(time.Hour)
	task := ivr.Task{ID: "t1", BusinessID: b.ID, Kind: "faq_import"}
	must(t, s.CreateTask(ctx, &task))
	if !task.CreatedAt.Equal(want.Add(time.Hour)) {
		t.Errorf("task CreatedAt = %v", task.CreatedAt)
	}
}

func testFAQ(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := ivr.Business{Name: "b"}
	must(t, s.CreateBusiness(ctx, &b))
	v1 := []ivr.FAQNode{
		{Name: "hours", UserSays: []string{"when are you open", "opening hours"}, BotSays: []string{"9 to 5"}},
		{Name: "Zebra", UserSays: []string{"z"}, BotSays: []string{"zz"}},
		{Name: "address", UserSays: []string{"where are you"}, BotSays: []string{"MG Road", "Bengaluru"}},
	}
	ver, err := s.ReplaceFAQ(ctx, b.ID, v1)
	must(t, err)
	if ver != 1 {
		t.Fatalf("first version = %d", ver)
	}
	nodes, err := s.ListFAQ(ctx, b.ID, true)
	must(t, err)
	names := func(ns []ivr.FAQNode) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		return out
	}
	// Byte order: upper case sorts before lower case on both backends.
	diff(t, "names", names(nodes), []string{"Zebra", "address", "hours"})
	for _, n := range nodes {
		if !n.Active || n.BusinessID != b.ID || n.ID == 0 || n.UpdatedAt.IsZero() {
			t.Errorf("node %+v", n)
		}
	}
	diff(t, "address bot says", nodes[1].BotSays, []string{"MG Road", "Bengaluru"})
	hoursID := nodes[2].ID

	v2 := []ivr.FAQNode{
		{Name: "hours", UserSays: []string{"timings"}, BotSays: []string{"10 to 6"}},
		{Name: "refund", UserSays: []string{"money back"}, BotSays: []string{"Within 7 days"}},
	}
	ver, err = s.ReplaceFAQ(ctx, b.ID, v2)
	must(t, err)
	if ver != 2 {
		t.Fatalf("second version = %d", ver)
	}
	active, err := s.ListFAQ(ctx, b.ID, true)
	must(t, err)
	diff(t, "active names", names(active), []string{"hours", "refund"})
	// An import writes a new generation (migration 00140): ids follow the
	// import's order, so the FAQ order (the topic menu's) is the file's.
	if active[0].ID == hoursID || active[0].ID > active[1].ID {
		t.Errorf("ids %d (hours, was %d), %d (refund): want fresh ids in import order", active[0].ID, hoursID, active[1].ID)
	}
	diff(t, "updated user says", active[0].UserSays, []string{"timings"})
	all, err := s.ListFAQ(ctx, b.ID, false)
	must(t, err)
	diff(t, "all names", names(all), []string{"Zebra", "address", "hours", "refund"})
	for _, n := range all {
		wantActive := n.Name == "hours" || n.Name == "refund"
		if n.Active != wantActive {
			t.Errorf("node %q active = %v", n.Name, n.Active)
		}
	}
	// Re-importing a retired node re-activates it.
	ver, err = s.ReplaceFAQ(ctx, b.ID, []ivr.FAQNode{{Name: "Zebra", BotSays: []string{"back"}}})
	must(t, err)
	if ver != 3 {
		t.Errorf("third version = %d", ver)
	}
	active, err = s.ListFAQ(ctx, b.ID, true)
	must(t, err)
	diff(t, "after third import", names(active), []string{"Zebra"})
	got, err := s.GetBusiness(ctx, b.ID)
	must(t, err)
	if got.FAQVersion != 3 {
		t.Errorf("business FAQVersion = %d", got.FAQVersion)
	}
	// An empty import retires everything.
	ver, err = s.ReplaceFAQ(ctx, b.ID, nil)
	must(t, err)
	active, err = s.ListFAQ(ctx, b.ID, true)
	must(t, err)
	if ver != 4 || len(active) != 0 {
		t.Errorf("empty import: version %d, active %v", ver, names(active))
	}
	_, err = s.ReplaceFAQ(ctx, b.ID+99, v1)
	wantErr(t, err, store.ErrNotFound)
}

func testFAQFailure(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := ivr.Business{Name: "b"}
	must(t, s.CreateBusiness(ctx, &b))
	good := []ivr.FAQNode{{Name: "hours", UserSays: []string{"open?"}, BotSays: []string{"9 to 5"}}}
	_, err := s.ReplaceFAQ(ctx, b.ID, good)
	must(t, err)
	before, err := s.ListFAQ(ctx, b.ID, false)
	must(t, err)

	bad := map[string][]ivr.FAQNode{
		"duplicate name": {{Name: "refund"}, {Name: "hours"}, {Name: "refund"}},
		"empty name":     {{Name: "refund"}, {Name: "  "}},
		"invalid text":   {{Name: "refund", BotSays: []string{"\xff"}}},
	}
	for name, nodes := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := s.ReplaceFAQ(ctx, b.ID, nodes)
			wantErr(t, err, store.ErrInvalid)
			after, err := s.ListFAQ(ctx, b.ID, false)
			must(t, err)
			diff(t, "FAQ after failed import", after, before)
			got, err := s.GetBusiness(ctx, b.ID)
			must(t, err)
			if got.FAQVersion != 1 {
				t.Errorf("FAQVersion = %d after failed import", got.FAQVersion)
			}
		})
	}
}

func testTasks(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := ivr.Business{Name: "b"}
	must(t, s.CreateBusiness(ctx, &b))
	task := ivr.Task{ID: "task-1", BusinessID: b.ID, Kind: "faq_import", Total: 10}
	must(t, s.CreateTask(ctx, &task))
	if task.Status != ivr.TaskPending || task.CreatedAt.IsZero() || !task.UpdatedAt.Equal(task.CreatedAt) {
		t.Fatalf("created task %+v", task)
	}
	got, err := s.GetTask(ctx, "task-1")
	must(t, err)
	diff(t, "task", got, task)
	wantErr(t, s.CreateTask(ctx, &ivr.Task{ID: "task-1", BusinessID: b.ID}), store.ErrConflict)

	task.Status, task.Done, task.Errors = ivr.TaskFailed, 7, []string{"line 7: node_name is empty", "line 9: bot_says is empty"}
	must(t, s.UpdateTask(ctx, task))
	got, err = s.GetTask(ctx, "task-1")
	must(t, err)
	if got.UpdatedAt.Before(task.CreatedAt) {
		t.Errorf("UpdatedAt went back: %v", got.UpdatedAt)
	}
	task.UpdatedAt = got.UpdatedAt
	diff(t, "updated task", got, task)
	wantErr(t, s.UpdateTask(ctx, ivr.Task{ID: "nope", Status: ivr.TaskComplete}), store.ErrNotFound)
	_, err = s.GetTask(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
}

func testOutbox(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	items := []*ivr.OutboxItem{
		{IdempotencyKey: "a", Recipient: "ra", URL: "https://x/a", Body: []byte("A"), ContentType: "text/plain", MaxAttempts: 3, NextAttemptAt: t0},
		{IdempotencyKey: "b", Recipient: "rb", URL: "https://x/b", MaxAttempts: 3, NextAttemptAt: t0.Add(time.Minute)},
		{IdempotencyKey: "c", Recipient: "rc", URL: "https://x/c", MaxAttempts: 3, NextAttemptAt: t0.Add(-time.Minute)},
	}
	must(t, s.AppendMessages(ctx, nil, items))
	a, b, c := items[0], items[1], items[2]

	claimed, err := s.ClaimOutbox(ctx, t0, 10, 30*time.Second)
	must(t, err)
	ids := func(l []ivr.OutboxItem) []int64 {
		var out []int64
		for _, it := range l {
			out = append(out, it.ID)
		}
		return out
	}
	diff(t, "due items, oldest first", ids(claimed), []int64{a.ID, c.ID})
	if want := t0.Add(30 * time.Second); !claimed[0].LeaseUntil.Equal(want) {
		t.Errorf("lease until %v, want %v", claimed[0].LeaseUntil, want)
	}
	diff(t, "claimed body", claimed[0].Body, []byte("A"))

	again, err := s.ClaimOutbox(ctx, t0.Add(time.Second), 10, 30*time.Second)
	must(t, err)
	if len(again) != 0 {
		t.Errorf("leased items claimed again: %v", ids(again))
	}
	// After the lease expires, and b is due, all three are claimable; limit 2.
	later, err := s.ClaimOutbox(ctx, t0.Add(time.Minute), 2, 30*time.Second)
	must(t, err)
	diff(t, "limit 2 after lease expiry", ids(later), []int64{a.ID, b.ID})

	must(t, s.MarkDelivered(ctx, a.ID, t0.Add(2*time.Minute)))
	got, err := s.GetOutboxItem(ctx, a.ID)
	must(t, err)
	if got.Status != ivr.OutboxDelivered || got.Attempts != 1 || !got.DeliveredAt.Equal(t0.Add(2*time.Minute)) || !got.LeaseUntil.IsZero() {
		t.Errorf("delivered item %+v", got)
	}

	next := t0.Add(10 * time.Minute)
	must(t, s.MarkAttemptFailed(ctx, b.ID, "HTTP 503", next, false))
	got, err = s.GetOutboxItem(ctx, b.ID)
	must(t, err)
	if got.Status != ivr.OutboxPending || got.Attempts != 1 || got.LastError != "HTTP 503" || !got.NextAttemptAt.Equal(next) || !got.LeaseUntil.IsZero() {
		t.Errorf("failed item %+v", got)
	}
	notYet, err := s.ClaimOutbox(ctx, next.Add(-time.Second), 10, time.Second)
	must(t, err)
	diff(t, "before b's next attempt", ids(notYet), []int64{c.ID})
	must(t, s.MarkAttemptFailed(ctx, c.ID, "bad\xffutf8\x00 "+strings.Repeat("e", store.MaxTextBytes), next, true))
	got, err = s.GetOutboxItem(ctx, c.ID)
	must(t, err)
	if got.Status != ivr.OutboxDead || got.Attempts != 1 || len(got.LastError) > store.MaxTextBytes || !strings.HasPrefix(got.LastError, "bad") {
		t.Errorf("dead item status %q attempts %d error length %d", got.Status, got.Attempts, len(got.LastError))
	}
	dead, err := s.ListOutbox(ctx, ivr.OutboxDead, 0)
	must(t, err)
	diff(t, "dead", ids(dead), []int64{c.ID})
	pending, err := s.ListOutbox(ctx, ivr.OutboxPending, 1)
	must(t, err)
	diff(t, "pending, limit 1", ids(pending), []int64{b.ID})
	afterDead, err := s.ClaimOutbox(ctx, next.Add(time.Hour), 10, time.Second)
	must(t, err)
	diff(t, "only pending items are claimed", ids(afterDead), []int64{b.ID})

	// Many at once: all or nothing.
	pendingBefore, err := s.ListOutbox(ctx, ivr.OutboxPending, 0)
	must(t, err)
	wantErr(t, s.MarkDeliveredMany(ctx, []int64{b.ID, 1 << 40}, t0), store.ErrNotFound)
	pendingAfter, err := s.ListOutbox(ctx, ivr.OutboxPending, 0)
	must(t, err)
	diff(t, "a failed batch changes nothing", ids(pendingAfter), ids(pendingBefore))
	must(t, s.MarkDeliveredMany(ctx, []int64{b.ID, b.ID}, t0.Add(3*time.Minute)))
	got, err = s.GetOutboxItem(ctx, b.ID)
	must(t, err)
	if got.Status != ivr.OutboxDelivered || got.Attempts != 2 || !got.DeliveredAt.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("batch-delivered item %+v", got)
	}
	must(t, s.MarkDeliveredMany(ctx, nil, t0))
	wantErr(t, s.MarkDelivered(ctx, 1<<40, t0), store.ErrNotFound)
	wantErr(t, s.MarkAttemptFailed(ctx, 1<<40, "x", t0, false), store.ErrNotFound)
	_, err = s.GetOutboxItem(ctx, 1<<40)
	wantErr(t, err, store.ErrNotFound)
}

func testTimestamps(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	ist := time.FixedZone("IST", 5*3600+1800)
	start := time.Date(2026, 5, 6, 7, 8, 9, 987654321, ist)
	c := ivr.Call{SID: "ts", StartedAt: start}
	must(t, s.CreateCall(ctx, &c))
	want := start.Truncate(time.Microsecond).UTC()
	if !c.StartedAt.Equal(want) || c.StartedAt.Location() != time.UTC || c.StartedAt.Nanosecond()%1000 != 0 {
		t.Errorf("StartedAt set to %v, want %v", c.StartedAt, want)
	}
	got, err := s.GetCall(ctx, "ts")
	must(t, err)
	diff(t, "call times", got, c)
	if !got.EndedAt.IsZero() {
		t.Errorf("EndedAt = %v, want zero", got.EndedAt)
	}
}

// race starts n goroutines running fn at the same moment and returns their
// errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

const racers = 8

func testRaceUpdateCall(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	c := ivr.Call{SID: "race"}
	must(t, s.CreateCall(ctx, &c))
	errs := race(racers, func(i int) error {
		mine := c
		mine.Turn = i + 1
		return s.UpdateCall(ctx, &mine)
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrVersionConflict):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d updates won, want exactly 1", won)
	}
	got, err := s.GetCall(ctx, "race")
	must(t, err)
	if got.Version != 2 {
		t.Errorf("version = %d, want 2", got.Version)
	}
}

func testRaceClaimOutbox(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	const total = 60
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	items := make([]*ivr.OutboxItem, total)
	for i := range items {
		items[i] = &ivr.OutboxItem{IdempotencyKey: fmt.Sprintf("k%d", i), Recipient: fmt.Sprintf("r%d", i), URL: "https://x/", NextAttemptAt: now}
	}
	must(t, s.AppendMessages(ctx, nil, items))
	var mu sync.Mutex
	seen := map[int64]int{}
	errs := race(racers, func(int) error {
		for {
			got, err := s.ClaimOutbox(ctx, now, 3, time.Minute)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				return nil
			}
			mu.Lock()
			for _, it := range got {
				seen[it.ID]++
			}
			mu.Unlock()
		}
	})
	for _, err := range errs {
		must(t, err)
	}
	if len(seen) != total {
		t.Errorf("claimed %d distinct items, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("item %d claimed %d times", id, n)
		}
	}
}

func testRaceOpenConversation(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := ivr.Business{Name: "b"}
	must(t, s.CreateBusiness(ctx, &b))
	u, err := s.EnsureUser(ctx, b.ID, ivr.ChannelWebhook, "racer", true)
	must(t, err)
	convs := make([]ivr.Conversation, racers)
	errs := race(racers, func(i int) error {
		var err error
		convs[i], err = s.OpenConversation(ctx, b.ID, u.ID)
		return err
	})
	for i, err := range errs {
		must(t, err)
		if convs[i].ID != convs[0].ID {
			t.Errorf("racer %d got conversation %d, racer 0 got %d", i, convs[i].ID, convs[0].ID)
		}
	}
	if convs[0].ConversationNo != 1 {
		t.Errorf("conversation no = %d", convs[0].ConversationNo)
	}
}

func testRaceEnsureUser(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := ivr.Business{Name: "b"}
	must(t, s.CreateBusiness(ctx, &b))
	users := make([]ivr.User, racers)
	errs := race(racers, func(i int) error {
		var err error
		users[i], err = s.EnsureUser(ctx, b.ID, ivr.ChannelWhatsApp, "+15550001", true)
		return err
	})
	for i, err := range errs {
		must(t, err)
		if users[i].ID != users[0].ID {
			t.Errorf("racer %d got user %d, racer 0 got %d", i, users[i].ID, users[0].ID)
		}
	}
}

func testRaceAcquireCallLock(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	errs := race(racers, func(i int) error {
		return s.AcquireCallLock(ctx, "contended", fmt.Sprintf("node-%d", i), time.Minute)
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrLocked):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d owners got the lock, want exactly 1", won)
	}
}

func testCanceledContext(t *testing.T, s store.Store) {
	f := seed(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.AppendMessages(ctx, []*ivr.Message{msg(f, ivr.SenderUser, "late", "")}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("append with canceled context: %v", err)
	}
	_, err = s.GetBusiness(ctx, f.biz.ID)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("get with canceled context: %v", err)
	}
	all, err := s.ListMessages(ctxT(t), f.conv.ID, 0)
	must(t, err)
	if len(all) != 0 {
		t.Errorf("canceled append stored %d messages", len(all))
	}
	must(t, s.Ping(ctxT(t)))
}
