package storetest

import (
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
