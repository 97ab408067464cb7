// Package outbox delivers what koel owes platforms and integrators (webhook
// replies, platform send API calls) from a durable queue in the store.
//
// An item is written in the same transaction as the reply it carries, so a
// crash between the two cannot lose or invent a delivery. The [Dispatcher]
// claims due items with a lease (so several koel nodes never send one item
// twice at once) and hands each to the [Sender] registered for its channel
// (channels/webhook signs and POSTs; the platform adapters call their send
// APIs). A sender reads credentials from the connection at send time, so
// they are never stored in an item, its URL, its LastError or a log line.
// On a retryable failure the next attempt is scheduled with exponential
// backoff and jitter (or after the receiver's Retry-After); a [Permanent]
// failure, or the item's MaxAttempts, dead-letters it (status "dead") and
// it stays in the store for inspection.
//
// Why not River: river (riverqueue) is a fine Postgres queue, but its SQLite
// driver is young and its database/sql driver only runs migrations; koel needs
// the same queue on both backends and — more important — needs to enqueue in
// the very transaction that stores the reply, through koel's own store
// interface. A table with a lease column and one claim query per dialect does
// that in about a hundred lines, with the retry policy koel wants.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/ivr"
)

// Sender delivers the items of one channel: the webhook channel signs and
// POSTs the body; a platform adapter renders the [Message] body for its send
// API. conn is the item's connection as it is now, so credentials and
// settings are read at send time; item.Attempts counts the attempts before
// this one. Send returns nil once the platform accepted the item, an error
// marked with [Permanent] when no retry can succeed, [RetryAfter] when the
// platform asked for a delay, and any other error to be retried with
// backoff. The error's text is stored and logged (after the connection's
// secrets are masked out of it): build it without credentials, and use
// [TransportError] rather than the raw *url.Error for HTTP failures.
type Sender interface {
	Send(ctx context.Context, conn ivr.Connection, item ivr.OutboxItem) error
}

// SenderFunc adapts a function to [Sender].
type SenderFunc func(ctx context.Context, conn ivr.Connection, item ivr.OutboxItem) error

// Send implements [Sender].
func (f SenderFunc) Send(ctx context.Context, conn ivr.Connection, item ivr.OutboxItem) error {
	return f(ctx, conn, item)
}

// DefaultMaxAttempts is used for items stored with MaxAttempts 0.
const DefaultMaxAttempts = 8

// Store is what the dispatcher needs from the store.
type Store interface {
	ClaimOutbox(ctx context.Context, now time.Time, limit int, lease time.Duration, skipConnections ...int64) ([]ivr.OutboxItem, error)
	MarkDeliveredMany(ctx context.Context, ids []int64, at time.Time) error
	MarkAttemptFailed(ctx context.Context, id int64, lastErr string, next time.Time, dead bool) error
	GetConnectionByID(ctx context.Context, id int64) (ivr.Connection, error)
}

// Config configures a [Dispatcher]. Zero values take the defaults noted.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// Registerer receives the dispatcher's metrics (nil: none).
	Registerer prometheus.Registerer
	// PollInterval is how often due items are looked for (200 ms).
	PollInterval time.Duration
	// Batch is the number of items claimed at once (32).
	Batch int
	// Lease is how long a claimed item is owned (30 s).
	Lease time.Duration
	// AttemptTimeout bounds one attempt (10 s).
	AttemptTimeout time.Duration
	// BaseBackoff and MaxBackoff shape the retry delay:
	// BaseBackoff·2^(attempt-1), capped at MaxBackoff, with ±25 % jitter
	// (1 s, 10 min).
	BaseBackoff, MaxBackoff time.Duration
	// Now returns the time (time.Now).
	Now func() time.Time
}

// Dispatcher delivers due outbox items until its context ends.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	wake    chan struct{}
	results *prometheus.CounterVec
	seconds prometheus.Histogram

	mu      sync.RWMutex
	senders map[ivr.Channel]Sender
}

// New returns a dispatcher. Register a [Sender] for every channel whose
// items it should deliver; an item of a channel without one fails its
// attempts (class "config") until one is registered or it is dead-lettered.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("outbox: dispatcher needs a store")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 10 * time.Second
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), senders: make(map[ivr.Channel]Sender)}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "koel_outbox_attempts_total",
		Help: "Outbox delivery attempts, by result (delivered, retry, dead).",
	}, []string{"result"})
	d.seconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "koel_outbox_attempt_duration_seconds",
		Help:    "Time of one outbox delivery attempt.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{d.results, d.seconds} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("outbox: register metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Register makes s the sender of ch's items, replacing any earlier one. It
// is safe to call while the dispatcher runs.
func (d *Dispatcher) Register(ch ivr.Channel, s Sender) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.senders[ch] = s
}

func (d *Dispatcher) sender(ch ivr.Channel) (Sender, bool) {
	if ch == "" {
		ch = ivr.ChannelWebhook
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	s, ok := d.senders[ch]
	return s, ok
}

// Notify wakes the dispatcher to look for due items now (call it after
// storing a new item). It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers due items until ctx ends. It returns ctx's error.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	for {
		for {
			n, err := d.DeliverDue(ctx)
			if err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "outbox pass failed", "error", err)
			}
			if n < d.cfg.Batch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-d.wake:
		}
	}
}

// DeliverDue claims one batch of due items and attempts each once, in
// order. Successes are recorded together in one transaction after the
// batch; a crash before that re-sends them once their lease expires, which
// receivers absorb through the idempotency key (delivery is at least once).
// It returns how many items it attempted.
func (d *Dispatcher) DeliverDue(ctx context.Context) (int, error) {
	items, err := d.cfg.Store.ClaimOutbox(ctx, d.cfg.Now(), d.cfg.Batch, d.cfg.Lease)
	if err != nil {
		return 0, fmt.Errorf("outbox: claim: %w", err)
	}
	// An attempt that has started is finished and recorded even when ctx
	// ends meanwhile, so a drain never leaves an attempt half-recorded;
	// AttemptTimeout bounds each one.
	detached := context.WithoutCancel(ctx)
	conns := make(map[int64]connResult, 2)
	delivered := make([]int64, 0, len(items))
	attempted := 0
	var firstErr error
	for _, it := range items {
		if ctx.Err() != nil {
			// Shutting down: the items not attempted keep their lease and
			// are picked up again when it expires.
			firstErr = ctx.Err()
			break
		}
		attempted++
		ok, err := d.attempt(detached, it, conns)
		if err != nil {
			firstErr = err
			break
		}
		if ok {
			delivered = append(delivered, it.ID)
		}
	}
	if len(delivered) > 0 {
		if err := d.cfg.Store.MarkDeliveredMany(detached, delivered, d.cfg.Now()); err != nil {
			return attempted, fmt.Errorf("outbox: mark %d items delivered: %w", len(delivered), err)
		}
	}
	return attempted, firstErr
}

type connResult struct {
	conn ivr.Connection
	err  error
}

// attempt POSTs one item. A failure is recorded on the item at once; a
// success is reported for the batch to record. Only store failures are
// returned as errors.
func (d *Dispatcher) attempt(ctx context.Context, it ivr.OutboxItem, conns map[int64]connResult) (bool, error) {
	cr, ok := conns[it.ConnectionID]
	if !ok {
		cr.conn, cr.err = d.cfg.Store.GetConnectionByID(ctx, it.ConnectionID)
		conns[it.ConnectionID] = cr
	}
	start := d.cfg.Now()
	attemptNo := it.Attempts + 1
	sendErr := cr.err
	if sendErr != nil {
		sendErr = fmt.Errorf("load connection %d: %w", it.ConnectionID, sendErr)
	} else {
		sendErr = d.send(ctx, it, cr.conn)
	}
	d.seconds.Observe(d.cfg.Now().Sub(start).Seconds())
	if sendErr == nil {
		d.results.WithLabelValues("delivered").Inc()
		return true, nil
	}
	maxAttempts := it.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	dead := attemptNo >= maxAttempts || IsPermanent(sendErr)
	delay := d.backoff(attemptNo)
	if ra, ok := RetryDelay(sendErr); ok && ra > delay {
		delay = ra
	}
	next := d.cfg.Now().Add(delay)
	result := "retry"
	if dead {
		result = "dead"
	}
	d.results.WithLabelValues(result).Inc()
	msg := scrub(sendErr.Error(), cr.conn)
	d.log.WarnContext(ctx, "outbox delivery failed",
		"item", it.ID, "connection_id", it.ConnectionID, "channel", string(it.Channel), "attempt", attemptNo,
		"dead", dead, "class", Class(sendErr), "error", msg)
	if err := d.cfg.Store.MarkAttemptFailed(ctx, it.ID, msg, next, dead); err != nil {
		return false, fmt.Errorf("outbox: mark %d failed: %w", it.ID, err)
	}
	return false, nil
}

// send hands one item to its channel's sender, within AttemptTimeout.
func (d *Dispatcher) send(ctx context.Context, it ivr.OutboxItem, conn ivr.Connection) error {
	s, ok := d.sender(it.Channel)
	if !ok {
		return WithClass(ClassConfig, fmt.Errorf("no sender for channel %q", it.Channel))
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.AttemptTimeout)
	defer cancel()
	return s.Send(ctx, conn, it)
}

// scrub masks the connection's credentials out of an error text, in case a
// sender or a library quoted one.
func scrub(text string, conn ivr.Connection) string {
	for _, v := range conn.Settings.SecretValues() {
		if len(v) >= 4 {
			text = strings.ReplaceAll(text, v, "***")
		}
	}
	return text
}

// backoff is the delay before attempt n+1 after n failed attempts.
func (d *Dispatcher) backoff(n int) time.Duration {
	delay := d.cfg.MaxBackoff
	if n-1 < 30 {
		if b := d.cfg.BaseBackoff << (n - 1); b > 0 && b < delay {
			delay = b
		}
	}
	jitter := (rand.Float64()*0.5 - 0.25) * float64(delay)
	return delay + time.Duration(jitter)
}
