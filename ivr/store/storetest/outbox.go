package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
)

// Outbox groups of the behaviour suite beyond the basic lifecycle in
// testOutbox: conversation order, skipped connections, release, channels.

func outboxIDs(l []ivr.OutboxItem) []int64 {
	var out []int64
	for _, it := range l {
		out = append(out, it.ID)
	}
	return out
}

// testOutboxConversationOrder: the items of one conversation (connection
// and recipient) are claimed in id order, and an item waiting for a retry,
// or leased, holds back the later ones of its conversation only.
func testOutboxConversationOrder(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	items := []*ivr.OutboxItem{
		{ConnectionID: 1, Recipient: "alice", IdempotencyKey: "a1", NextAttemptAt: t0},
		{ConnectionID: 1, Recipient: "alice", IdempotencyKey: "a2", NextAttemptAt: t0},
		{ConnectionID: 1, Recipient: "bob", IdempotencyKey: "b1", NextAttemptAt: t0},
		{ConnectionID: 2, Recipient: "alice", IdempotencyKey: "c1", NextAttemptAt: t0},
		{ConnectionID: 1, Recipient: "alice", IdempotencyKey: "a3", NextAttemptAt: t0},
	}
	must(t, s.AppendMessages(ctx, nil, items))
	a1, a2, b1, c1, a3 := items[0], items[1], items[2], items[3], items[4]

	// Everything is due and nothing leased: all five, oldest first.
	got, err := s.ClaimOutbox(ctx, t0, 10, time.Minute)
	must(t, err)
	diff(t, "first claim", outboxIDs(got), []int64{a1.ID, a2.ID, b1.ID, c1.ID, a3.ID})
	must(t, s.ReleaseOutbox(ctx, outboxIDs(got), t0))

	// a1 is leased by a claim of one: a2 and a3 wait, bob and the other
	// connection's alice do not.
	got, err = s.ClaimOutbox(ctx, t0, 1, time.Minute)
	must(t, err)
	diff(t, "claim of one", outboxIDs(got), []int64{a1.ID})
	got, err = s.ClaimOutbox(ctx, t0, 10, time.Hour)
	must(t, err)
	diff(t, "while a1 is leased", outboxIDs(got), []int64{b1.ID, c1.ID})

	// a1 fails and waits a minute: a2 and a3 still wait, also after their
	// own leases would have expired.
	must(t, s.MarkAttemptFailed(ctx, a1.ID, "HTTP 500", t0.Add(time.Minute), false))
	got, err = s.ClaimOutbox(ctx, t0.Add(30*time.Second), 10, time.Second)
	must(t, err)
	diff(t, "while a1 waits for its retry", outboxIDs(got), []int64(nil))

	// a1 due again: it comes first, alone in its conversation's line when
	// the claim is of one.
	got, err = s.ClaimOutbox(ctx, t0.Add(2*time.Minute), 1, time.Minute)
	must(t, err)
	diff(t, "a1 retried first", outboxIDs(got), []int64{a1.ID})
	must(t, s.MarkDelivered(ctx, a1.ID, t0.Add(2*time.Minute)))
	// Dead items do not hold anything back.
	must(t, s.MarkAttemptFailed(ctx, a2.ID, "gone", t0, true))
	got, err = s.ClaimOutbox(ctx, t0.Add(3*time.Minute), 10, time.Minute)
	must(t, err)
	diff(t, "after a1 delivered and a2 dead", outboxIDs(got), []int64{a3.ID})
}

// testOutboxSkipAndRelease: skipped connections are left alone; released
// items are due again at the time given, with no attempt counted.
func testOutboxSkipAndRelease(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var items []*ivr.OutboxItem
	for i, conn := range []int64{1, 2, 3, 2} {
		items = append(items, &ivr.OutboxItem{ConnectionID: conn, Recipient: string(rune('a' + i)), IdempotencyKey: string(rune('k' + i)), NextAttemptAt: t0})
	}
	must(t, s.AppendMessages(ctx, nil, items))
	got, err := s.ClaimOutbox(ctx, t0, 10, time.Hour, 2, 3, 2)
	must(t, err)
	diff(t, "connections 2 and 3 skipped", outboxIDs(got), []int64{items[0].ID})
	got, err = s.ClaimOutbox(ctx, t0, 10, time.Hour)
	must(t, err)
	diff(t, "the rest", outboxIDs(got), []int64{items[1].ID, items[2].ID, items[3].ID})

	must(t, s.ReleaseOutbox(ctx, []int64{items[1].ID, items[3].ID, items[1].ID}, t0.Add(time.Minute)))
	got, err = s.ClaimOutbox(ctx, t0.Add(30*time.Second), 10, time.Minute)
	must(t, err)
	diff(t, "released items before their time", outboxIDs(got), []int64(nil))
	got, err = s.ClaimOutbox(ctx, t0.Add(time.Minute), 10, time.Minute)
	must(t, err)
	diff(t, "released items at their time", outboxIDs(got), []int64{items[1].ID, items[3].ID})
	// items[2] kept its lease.
	it, err := s.GetOutboxItem(ctx, items[1].ID)
	must(t, err)
	if it.Attempts != 0 || it.Status != ivr.OutboxPending {
		t.Errorf("released item %s with %d attempts, want pending with 0", it.Status, it.Attempts)
	}
	must(t, s.ReleaseOutbox(ctx, nil, t0))
	wantErr(t, s.ReleaseOutbox(ctx, make([]int64, store.MaxBatch+1), t0), store.ErrInvalid)
	_, err = s.ClaimOutbox(ctx, t0, 1, time.Minute, make([]int64, store.MaxBatch+1)...)
	wantErr(t, err, store.ErrInvalid)
}

// testOutboxChannelAndRecipient: channel, recipient and retry horizon start
// round-trip; an empty channel is stored as the webhook channel.
func testOutboxChannelAndRecipient(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	items := []*ivr.OutboxItem{
		{ConnectionID: 4, Channel: ivr.ChannelFacebook, Recipient: "psid-1", IdempotencyKey: "fb-1", Body: []byte(`{}`), ContentType: "application/json", NextAttemptAt: t0},
		{ConnectionID: 5, Recipient: "auth-1", IdempotencyKey: "wh-1", URL: "https://hooks.example.com/in", RetryFrom: t0.Add(-time.Hour), NextAttemptAt: t0},
	}
	must(t, s.AppendMessages(ctx, nil, items))
	if items[1].Channel != ivr.ChannelWebhook {
		t.Errorf("empty channel became %q on the argument, want webhook", items[1].Channel)
	}
	for _, want := range items {
		got, err := s.GetOutboxItem(ctx, want.ID)
		must(t, err)
		diff(t, "stored item", got, *want)
	}
	if items[0].RetryFrom.IsZero() || !items[1].RetryFrom.Equal(t0.Add(-time.Hour)) {
		t.Errorf("retry from %v and %v", items[0].RetryFrom, items[1].RetryFrom)
	}
}

// deadItems stores n items and dead-letters them, alternating connections
// 1 and 2; it returns them in id order.
func deadItems(t *testing.T, s store.Store, n int, at time.Time) []*ivr.OutboxItem {
	t.Helper()
	ctx := ctxT(t)
	var items []*ivr.OutboxItem
	for i := range n {
		items = append(items, &ivr.OutboxItem{ConnectionID: int64(1 + i%2), Recipient: fmt.Sprint("r", i), IdempotencyKey: fmt.Sprint("dead-", i),
			URL: "https://hooks.example.com/in", Body: []byte(`{}`), NextAttemptAt: at})
	}
	must(t, s.AppendMessages(ctx, nil, items))
	for _, it := range items {
		must(t, s.MarkAttemptFailed(ctx, it.ID, "receiver answered 500", at, true))
	}
	return items
}

// testOutboxDeadLetters: dead letters are listed a page at a time, by
// connection; redelivered (pending, due now, Attempts 0, a new retry
// horizon) and purged by id, by connection or all; an empty selection is
// refused; pending items are never purged.
func testOutboxDeadLetters(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	items := deadItems(t, s, 7, t0)
	live := &ivr.OutboxItem{ConnectionID: 1, Recipient: "live", IdempotencyKey: "live", NextAttemptAt: t0}
	must(t, s.AppendMessages(ctx, nil, []*ivr.OutboxItem{live}))

	page, err := s.QueryOutbox(ctx, store.OutboxQuery{Status: ivr.OutboxDead, Limit: 3})
	must(t, err)
	diff(t, "first page", outboxIDs(page), []int64{items[0].ID, items[1].ID, items[2].ID})
	page, err = s.QueryOutbox(ctx, store.OutboxQuery{Status: ivr.OutboxDead, Limit: 3, AfterID: items[2].ID})
	must(t, err)
	diff(t, "second page", outboxIDs(page), []int64{items[3].ID, items[4].ID, items[5].ID})
	page, err = s.QueryOutbox(ctx, store.OutboxQuery{Status: ivr.OutboxDead, ConnectionID: 2})
	must(t, err)
	diff(t, "connection 2", outboxIDs(page), []int64{items[1].ID, items[3].ID, items[5].ID})
	if page[0].Attempts != 1 || page[0].LastError != "receiver answered 500" {
		t.Errorf("dead letter %+v", page[0])
	}
	_, err = s.QueryOutbox(ctx, store.OutboxQuery{Status: "lost"})
	wantErr(t, err, store.ErrInvalid)
	_, err = s.QueryOutbox(ctx, store.OutboxQuery{Status: ivr.OutboxDead, Limit: store.MaxBatch + 1})
	wantErr(t, err, store.ErrInvalid)

	_, err = s.RedeliverOutbox(ctx, store.DeadLetters{}, t0)
	wantErr(t, err, store.ErrInvalid)
	_, err = s.PurgeOutbox(ctx, store.DeadLetters{})
	wantErr(t, err, store.ErrInvalid)

	t1 := t0.Add(48 * time.Hour)
	n, err := s.RedeliverOutbox(ctx, store.DeadLetters{IDs: []int64{items[0].ID, items[1].ID, live.ID, 1 << 40}}, t1)
	must(t, err)
	if n != 2 {
		t.Errorf("redelivered %d by id, want 2 (the live and unknown ids are not dead letters)", n)
	}
	got, err := s.GetOutboxItem(ctx, items[0].ID)
	must(t, err)
	if got.Status != ivr.OutboxPending || got.Attempts != 0 || !got.NextAttemptAt.Equal(t1) || !got.RetryFrom.Equal(t1) || got.LastError != "receiver answered 500" {
		t.Errorf("redelivered item %+v", got)
	}
	claimed, err := s.ClaimOutbox(ctx, t1, 10, time.Minute)
	must(t, err)
	diff(t, "redelivered items are claimable", outboxIDs(claimed), []int64{items[0].ID, items[1].ID, live.ID})

	n, err = s.RedeliverOutbox(ctx, store.DeadLetters{ConnectionID: 2, IDs: []int64{items[2].ID, items[3].ID}}, t1)
	must(t, err)
	if n != 1 {
		t.Errorf("redelivered %d of connection 2 among two ids, want 1", n)
	}
	// Connection 1 holds items 0 (pending again), 2, 4 and 6.
	n, err = s.PurgeOutbox(ctx, store.DeadLetters{ConnectionID: 1})
	must(t, err)
	if n != 3 {
		t.Errorf("purged %d of connection 1, want 3", n)
	}
	n, err = s.PurgeOutbox(ctx, store.DeadLetters{All: true})
	must(t, err)
	if n != 1 {
		t.Errorf("purged %d with all, want 1 (items[5])", n)
	}
	dead, err := s.ListOutbox(ctx, ivr.OutboxDead, 0)
	must(t, err)
	diff(t, "dead after purging all", outboxIDs(dead), []int64(nil))
	pending, err := s.ListOutbox(ctx, ivr.OutboxPending, 0)
	must(t, err)
	diff(t, "pending items survive purges", outboxIDs(pending), []int64{items[0].ID, items[1].ID, items[3].ID, live.ID})
}

// testOutboxExpire: pending, unleased items whose retry horizon started
// before the cut-off become dead with the reason; others stay.
func testOutboxExpire(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	items := []*ivr.OutboxItem{
		{ConnectionID: 1, Recipient: "old", IdempotencyKey: "old", RetryFrom: t0.Add(-25 * time.Hour), NextAttemptAt: t0},
		{ConnectionID: 1, Recipient: "old-leased", IdempotencyKey: "old-leased", RetryFrom: t0.Add(-25 * time.Hour), NextAttemptAt: t0.Add(-time.Second)},
		{ConnectionID: 1, Recipient: "young", IdempotencyKey: "young", RetryFrom: t0.Add(-time.Hour), NextAttemptAt: t0},
	}
	must(t, s.AppendMessages(ctx, nil, items))
	must(t, s.MarkAttemptFailed(ctx, items[0].ID, "receiver answered 503", t0, false))
	claimed, err := s.ClaimOutbox(ctx, t0.Add(-time.Second), 1, time.Hour)
	must(t, err)
	diff(t, "leased", outboxIDs(claimed), []int64{items[1].ID})

	n, err := s.ExpireOutbox(ctx, t0, t0.Add(-24*time.Hour), "retry horizon of 24h0m0s passed")
	must(t, err)
	if n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	got, err := s.GetOutboxItem(ctx, items[0].ID)
	must(t, err)
	if got.Status != ivr.OutboxDead || got.LastError != "retry horizon of 24h0m0s passed; last error: receiver answered 503" {
		t.Errorf("expired item %s %q", got.Status, got.LastError)
	}
	for _, it := range items[1:] {
		got, err := s.GetOutboxItem(ctx, it.ID)
		must(t, err)
		if got.Status != ivr.OutboxPending {
			t.Errorf("%s became %s", it.Recipient, got.Status)
		}
	}
	// Once the lease is over, the leased one expires too, with the reason
	// alone as it had no error yet.
	n, err = s.ExpireOutbox(ctx, t0.Add(2*time.Hour), t0.Add(-24*time.Hour), "retry horizon of 24h0m0s passed")
	must(t, err)
	got, err = s.GetOutboxItem(ctx, items[1].ID)
	must(t, err)
	if n != 1 || got.Status != ivr.OutboxDead || got.LastError != "retry horizon of 24h0m0s passed" {
		t.Errorf("after the lease: expired %d, item %s %q", n, got.Status, got.LastError)
	}
}

// testOutboxStats: counts and oldest creation time of pending and dead
// items per channel; delivered items are not counted.
func testOutboxStats(t *testing.T, s store.Store, c *Clock) {
	ctx := ctxT(t)
	first := c.Now()
	items := []*ivr.OutboxItem{
		{ConnectionID: 1, Channel: ivr.ChannelWebhook, Recipient: "a", IdempotencyKey: "s1"},
		{ConnectionID: 2, Channel: ivr.ChannelFacebook, Recipient: "b", IdempotencyKey: "s2"},
	}
	must(t, s.AppendMessages(ctx, nil, items))
	c.Advance(time.Minute)
	more := []*ivr.OutboxItem{
		{ConnectionID: 1, Channel: ivr.ChannelWebhook, Recipient: "c", IdempotencyKey: "s3"},
		{ConnectionID: 1, Channel: ivr.ChannelWebhook, Recipient: "d", IdempotencyKey: "s4"},
		{ConnectionID: 1, Channel: ivr.ChannelWebhook, Recipient: "e", IdempotencyKey: "s5"},
	}
	must(t, s.AppendMessages(ctx, nil, more))
	must(t, s.MarkAttemptFailed(ctx, more[1].ID, "x", c.Now(), true))
	must(t, s.MarkDelivered(ctx, more[2].ID, c.Now()))
	stats, err := s.OutboxStats(ctx)
	must(t, err)
	diff(t, "stats", stats, []store.OutboxStat{
		{Channel: ivr.ChannelFacebook, Status: ivr.OutboxPending, Count: 1, Oldest: storedTimeOf(first)},
		{Channel: ivr.ChannelWebhook, Status: ivr.OutboxDead, Count: 1, Oldest: storedTimeOf(first.Add(time.Minute))},
		{Channel: ivr.ChannelWebhook, Status: ivr.OutboxPending, Count: 2, Oldest: storedTimeOf(first)},
	})
}

func storedTimeOf(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }
