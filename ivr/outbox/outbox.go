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
// backoff and jitter (or after the receiver's Retry-After). An item that
// would be retried past its retry horizon (24 h from creation or from its
// last redelivery), or fails with a [Permanent] error, or uses up its
// optional MaxAttempts, is dead-lettered (status "dead"); dead letters stay
// in the store until an operator redelivers or purges them.
//
// # Isolation
//
// Deliveries run concurrently on a bounded pool of workers. Each
// destination (connection) gets at most PerConnection of them, and a
// circuit breaker: after BreakerThreshold consecutive retryable failures
// the connection's items are left in the store for a cool-down, then one
// probe decides whether it closes again. A receiver's Retry-After pauses
// its whole connection. So a black-holed webhook holds a few workers for
// one attempt timeout and then none, and every other business's replies
// keep flowing. Within one conversation (connection and recipient) items go
// out one at a time in the order they were stored; a failed item holds
// back the ones after it until it is delivered or dead.
//
// Limits: the order of one conversation is kept by the claim query, which
// hands out an item only when no earlier pending item of its conversation
// is leased or waiting; two PostgreSQL nodes claiming in the same instant
// can each see the other's head item as free (SKIP LOCKED skips it), so
// across nodes the order is kept except in that window. Delivery is at
// least once: a node that stops between an accepted send and recording it
// leaves the item to be sent again when its lease ends, and receivers drop
// the repeat by its idempotency key.
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
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

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

// Defaults of [Config].
const (
	DefaultWorkers          = 1024
	DefaultPerConnection    = 128
	DefaultRetryHorizon     = 24 * time.Hour
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 5 * time.Second
)

// Store is what the dispatcher needs from the store.
type Store interface {
	ClaimOutbox(ctx context.Context, now time.Time, limit int, lease time.Duration, skipConnections ...int64) ([]ivr.OutboxItem, error)
	ReleaseOutbox(ctx context.Context, ids []int64, next time.Time) error
	MarkDeliveredMany(ctx context.Context, ids []int64, at time.Time) error
	MarkAttemptFailed(ctx context.Context, id int64, lastErr string, next time.Time, dead bool) error
	ExpireOutbox(ctx context.Context, now, startedBefore time.Time, reason string) (int64, error)
	GetConnectionByID(ctx context.Context, id int64) (ivr.Connection, error)
}

// Config configures a [Dispatcher]. Zero values take the defaults noted.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// Registerer receives the dispatcher's metrics (nil: none).
	Registerer prometheus.Registerer
	// TracerProvider, when set, gets a span per delivery attempt
	// ([ivr.SpanDelivery]); nil is a no-op.
	TracerProvider trace.TracerProvider
	// Stats, when set, is read at scrape time for the queue depth and
	// oldest-item gauges (the store implements it).
	Stats StatsSource
	// PollInterval is how often due items are looked for (200 ms).
	PollInterval time.Duration
	// Batch is the most items claimed at once (64).
	Batch int
	// Workers bounds concurrent attempts over all connections (1024).
	Workers int
	// PerConnection bounds concurrent attempts to one connection (128).
	PerConnection int
	// Lease is how long a claimed item is owned (2 min, at least six
	// attempt timeouts). It must exceed AttemptTimeout.
	Lease time.Duration
	// AttemptTimeout bounds one attempt (10 s).
	AttemptTimeout time.Duration
	// BaseBackoff and MaxBackoff shape the retry delay:
	// BaseBackoff·2^(attempt-1), capped at MaxBackoff, with ±25 % jitter
	// (1 s, 10 min).
	BaseBackoff, MaxBackoff time.Duration
	// RetryHorizon is how long an item is retried, from its creation or its
	// last redelivery, before it is dead-lettered (24 h).
	RetryHorizon time.Duration
	// BreakerThreshold is the number of consecutive retryable failures
	// that open a connection's breaker (5).
	BreakerThreshold int
	// BreakerCooldown is how long an open breaker first waits before a
	// probe; it doubles after each failed probe, up to MaxBackoff (5 s).
	BreakerCooldown time.Duration
	// SweepInterval is how often items past their horizon that no attempt
	// reached (held back by an open breaker or an earlier item) are
	// dead-lettered (1 min).
	SweepInterval time.Duration
	// Now returns the time (time.Now).
	Now func() time.Time
}

// Dispatcher delivers due outbox items until its context ends.
type Dispatcher struct {
	tracer  trace.Tracer
	cfg     Config
	log     *slog.Logger
	wake    chan struct{}
	freed   chan struct{}
	metrics *metrics

	sendersMu sync.RWMutex
	senders   map[ivr.Channel]Sender

	// mu guards the fields below: the lanes running and each connection's
	// concurrency and breaker.
	mu      sync.Mutex
	running int
	dests   map[int64]*destination
	lanes   sync.WaitGroup // workers and the delivery recorder

	recMu      sync.Mutex
	recPending []recording
	recRunning bool
}

// destination is the dispatcher's view of one connection.
type destination struct {
	running   int
	failures  int       // consecutive retryable failures
	openUntil time.Time // breaker open (or paused by Retry-After) until
	cooldown  time.Duration
	queue     []*lane // claimed lanes waiting for room, oldest first
}

// New returns a dispatcher. Register a [Sender] for every channel whose
// items it should deliver; an item of a channel without one fails its
// attempts (class "config") until one is registered or it is dead-lettered.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("outbox: dispatcher needs a store")
	}
	setDefault(&cfg.PollInterval, 200*time.Millisecond)
	setDefault(&cfg.Batch, 64)
	setDefault(&cfg.Workers, DefaultWorkers)
	setDefault(&cfg.PerConnection, DefaultPerConnection)
	setDefault(&cfg.AttemptTimeout, 10*time.Second)
	setDefault(&cfg.Lease, max(2*time.Minute, 6*cfg.AttemptTimeout))
	setDefault(&cfg.BaseBackoff, time.Second)
	setDefault(&cfg.MaxBackoff, 10*time.Minute)
	setDefault(&cfg.RetryHorizon, DefaultRetryHorizon)
	setDefault(&cfg.BreakerThreshold, DefaultBreakerThreshold)
	setDefault(&cfg.BreakerCooldown, DefaultBreakerCooldown)
	setDefault(&cfg.SweepInterval, time.Minute)
	if cfg.Lease <= cfg.AttemptTimeout {
		return nil, fmt.Errorf("outbox: lease %v must exceed the attempt timeout %v", cfg.Lease, cfg.AttemptTimeout)
	}
	cfg.PerConnection = min(cfg.PerConnection, cfg.Workers)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	d := &Dispatcher{
		tracer:  tp.Tracer(ivr.TracerName),
		cfg:     cfg,
		log:     cfg.Logger,
		wake:    make(chan struct{}, 1),
		freed:   make(chan struct{}, 1),
		senders: make(map[ivr.Channel]Sender),
		dests:   make(map[int64]*destination),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if d.metrics, err = newMetrics(cfg.Registerer, cfg.Stats, d.inFlight, cfg.Now); err != nil {
		return nil, err
	}
	return d, nil
}

func setDefault[T int | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// Register makes s the sender of ch's items, replacing any earlier one. It
// is safe to call while the dispatcher runs.
func (d *Dispatcher) Register(ch ivr.Channel, s Sender) {
	d.sendersMu.Lock()
	defer d.sendersMu.Unlock()
	d.senders[ch] = s
}

func (d *Dispatcher) sender(ch ivr.Channel) (Sender, bool) {
	if ch == "" {
		ch = ivr.ChannelWebhook
	}
	d.sendersMu.RLock()
	defer d.sendersMu.RUnlock()
	s, ok := d.senders[ch]
	return s, ok
}

// Notify wakes the dispatcher to look for due items now (call it after
// storing a new item). It never blocks.
func (d *Dispatcher) Notify() { signal(d.wake) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) inFlight() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

// Run delivers due items until ctx ends, then waits for the attempts under
// way to finish and be recorded (each is bounded by AttemptTimeout). It
// returns ctx's error.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	defer d.lanes.Wait()
	nextSweep := d.cfg.Now()
	for {
		if now := d.cfg.Now(); !now.Before(nextSweep) {
			nextSweep = now.Add(d.cfg.SweepInterval)
			if _, err := d.Expire(ctx); err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "outbox sweep failed", "error", err)
			}
		}
		for ctx.Err() == nil {
			claimed, accepted, err := d.dispatch(ctx, nil)
			if err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "outbox pass failed", "error", err)
			}
			// A full claim means more may be due; go on while lanes are
			// taken.
			if err != nil || claimed < d.cfg.Batch || accepted == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			d.dropQueues(context.WithoutCancel(ctx))
			return ctx.Err()
		case <-t.C:
		case <-d.wake:
		case <-d.freed:
		}
	}
}

// DeliverDue claims one batch of due items, delivers them (concurrently
// across conversations, in order within each) and waits until every
// attempt it started is recorded. It returns how many items it attempted.
func (d *Dispatcher) DeliverDue(ctx context.Context) (int, error) {
	var pass pass
	_, _, err := d.dispatch(ctx, &pass)
	pass.wg.Wait()
	pass.mu.Lock()
	defer pass.mu.Unlock()
	if err == nil {
		err = pass.err
	}
	return pass.attempted, err
}

// Expire dead-letters the pending items whose retry horizon has passed
// without an attempt reaching them, and returns how many.
func (d *Dispatcher) Expire(ctx context.Context) (int64, error) {
	now := d.cfg.Now()
	n, err := d.cfg.Store.ExpireOutbox(ctx, now, now.Add(-d.cfg.RetryHorizon),
		fmt.Sprintf("retry horizon of %v passed", d.cfg.RetryHorizon))
	if err != nil {
		return 0, fmt.Errorf("outbox: expire: %w", err)
	}
	if n > 0 {
		d.metrics.expired.Add(float64(n))
		d.log.WarnContext(ctx, "outbox items dead-lettered past their retry horizon", "items", n)
	}
	return n, nil
}

// pass collects what the lanes of one DeliverDue call did.
type pass struct {
	wg        sync.WaitGroup
	mu        sync.Mutex
	attempted int
	err       error
}

func (p *pass) add(attempted int, err error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempted += attempted
	if p.err == nil {
		p.err = err
	}
}

// lane is the claimed items of one conversation, delivered in order by one
// worker.
type lane struct {
	conn      ivr.Connection
	connErr   error
	items     []ivr.OutboxItem
	claimedAt time.Time
	pass      *pass // the DeliverDue call waiting for it, or nil
}

// dispatch claims due items, groups them into lanes and hands each lane to
// a worker, or queues it behind its connection's running lanes (at most
// two rounds of them wait, well inside the lease); lanes beyond that are
// released at once. It returns how many items were claimed and how many lanes were
// started or queued.
func (d *Dispatcher) dispatch(ctx context.Context, p *pass) (claimed, accepted int, err error) {
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	now := d.cfg.Now()
	skip := d.skipped(now)
	items, err := d.cfg.Store.ClaimOutbox(ctx, now, d.cfg.Batch, d.cfg.Lease, skip...)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: claim: %w", err)
	}
	if len(items) == 0 {
		return 0, 0, nil
	}
	// An attempt that has started is finished and recorded even when ctx
	// ends meanwhile, so a drain never leaves an attempt half-recorded.
	detached := context.WithoutCancel(ctx)
	var release []int64
	for _, l := range d.group(detached, items) {
		l.claimedAt, l.pass = now, p
		if p != nil {
			p.wg.Add(1)
		}
		start, ok := d.admit(l, now)
		if !ok {
			for _, it := range l.items {
				release = append(release, it.ID)
			}
			if p != nil {
				p.wg.Done()
			}
			continue
		}
		accepted++
		if start {
			d.lanes.Add(1)
			go d.work(detached, l)
		}
	}
	if len(release) > 0 {
		if err := d.cfg.Store.ReleaseOutbox(detached, release, now); err != nil {
			return len(items), accepted, fmt.Errorf("outbox: release %d items: %w", len(release), err)
		}
	}
	return len(items), accepted, nil
}

// skipped returns the connections whose items are not to be claimed now:
// their queue is full, or their breaker is open (or probing).
func (d *Dispatcher) skipped(now time.Time) []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var skip []int64
	for id, st := range d.dests {
		switch {
		case st.room(now, d.cfg.PerConnection) <= 0 && len(st.queue) > d.queueCap()-d.cfg.Batch,
			!st.openUntil.IsZero() && (now.Before(st.openUntil) || st.running > 0):
			skip = append(skip, id)
		case st.running == 0 && len(st.queue) == 0 && st.failures == 0 && st.openUntil.IsZero():
			delete(d.dests, id) // nothing to remember
		}
	}
	return skip
}

// room is how many more lanes the connection may run now.
func (st *destination) room(now time.Time, perConnection int) int {
	switch {
	case st.openUntil.IsZero():
		return perConnection - st.running
	case now.Before(st.openUntil):
		return 0
	case st.running > 0:
		return 0 // half open: one probe at a time
	}
	return 1
}

func (d *Dispatcher) dest(connID int64) *destination {
	st := d.dests[connID]
	if st == nil {
		st = &destination{}
		d.dests[connID] = st
	}
	return st
}

// admit decides a claimed lane's fate: start it on a new worker (start),
// queue it behind its connection (ok, !start), or refuse it (release).
func (d *Dispatcher) admit(l *lane, now time.Time) (start, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.dest(l.conn.ID)
	if d.running < d.cfg.Workers && st.room(now, d.cfg.PerConnection) > 0 {
		d.take(st)
		return true, true
	}
	if st.openUntil.IsZero() && len(st.queue) < d.queueCap() {
		st.queue = append(st.queue, l)
		return false, true
	}
	return false, false
}

// queueCap is how many claimed lanes may wait for one connection: two
// rounds of its running lanes, so that a whole claim fits behind a busy
// connection instead of being released (and claimed again) at once.
func (d *Dispatcher) queueCap() int { return 2 * max(d.cfg.PerConnection, d.cfg.Batch) }

// take counts a lane as running on st. d.mu is held.
func (d *Dispatcher) take(st *destination) {
	st.running++
	d.running++
}

// work runs lanes until none is waiting that it may take: first the given
// one, then queued lanes of its connection, then of any other.
func (d *Dispatcher) work(ctx context.Context, l *lane) {
	defer d.lanes.Done()
	for l != nil {
		l = d.runOne(ctx, l)
	}
}

// runOne runs one lane, hands its deliveries to the recorder and returns
// the worker's next lane.
func (d *Dispatcher) runOne(ctx context.Context, l *lane) *lane {
	attempted, delivered, err := d.runLane(ctx, l)
	// The lane's slot is given up before its DeliverDue call hears it is
	// done, so the call's caller sees the dispatcher at rest.
	next := d.next(l.conn.ID)
	finish := func(recErr error) {
		if err == nil {
			err = recErr
		}
		if err != nil {
			d.log.WarnContext(ctx, "outbox lane failed", "connection_id", l.conn.ID, "error", err)
		}
		l.pass.add(attempted, err)
		if l.pass != nil {
			l.pass.wg.Done()
		}
	}
	if len(delivered) > 0 {
		d.record(delivered, finish)
	} else {
		finish(nil)
	}
	return next
}

// next finishes a lane of connID and returns a queued lane for the same
// worker, or nil when the worker is to stop.
func (d *Dispatcher) next(connID int64) *lane {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.dests[connID]
	st.running--
	d.running--
	defer signal(d.freed)
	now := d.cfg.Now()
	if l := d.pop(st, now); l != nil {
		return l
	}
	for _, other := range d.dests {
		if l := d.pop(other, now); l != nil {
			return l
		}
	}
	return nil
}

// dropQueues releases every queued lane (when the dispatcher stops, only
// the attempts under way are finished).
func (d *Dispatcher) dropQueues(ctx context.Context) {
	d.mu.Lock()
	var queued []*lane
	for _, st := range d.dests {
		queued = append(queued, st.queue...)
		st.queue = nil
	}
	d.mu.Unlock()
	for _, l := range queued {
		if err := d.release(ctx, l.items, d.cfg.Now()); err != nil {
			d.log.WarnContext(ctx, "outbox release failed", "connection_id", l.conn.ID, "error", err)
		}
		if l.pass != nil {
			l.pass.wg.Done()
		}
	}
}

// pop takes st's oldest queued lane if st has room now. d.mu is held.
func (d *Dispatcher) pop(st *destination, now time.Time) *lane {
	if len(st.queue) == 0 || st.room(now, d.cfg.PerConnection) <= 0 {
		return nil
	}
	l := st.queue[0]
	st.queue[0] = nil
	st.queue = st.queue[1:]
	d.take(st)
	return l
}

// allowed reports whether the connection's breaker lets a lane attempt
// its next item: closed, or half open (the cool-down has passed; the lane
// is then the probe, as only one runs).
func (d *Dispatcher) allowed(connID int64, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.dests[connID]
	return st.openUntil.IsZero() || !now.Before(st.openUntil)
}

// outcome updates the connection's breaker after an attempt. When the
// breaker opens, the lanes queued for the connection are returned to be
// released: they would otherwise sit on their leases.
func (d *Dispatcher) outcome(connID int64, err error, now time.Time) []*lane {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.dests[connID]
	halfOpen := !st.openUntil.IsZero() && !now.Before(st.openUntil)
	if err == nil {
		st.failures, st.openUntil, st.cooldown = 0, time.Time{}, 0
		return nil
	}
	if IsPermanent(err) {
		return nil // about that item, not the destination
	}
	st.failures++
	wasOpen := !st.openUntil.IsZero()
	if ra, ok := RetryDelay(err); ok && ra > 0 {
		// The platform asked the whole connection to wait.
		st.openUntil = laterOf(st.openUntil, now.Add(ra))
	}
	switch {
	case halfOpen:
		// The probe failed.
		st.cooldown = min(max(2*st.cooldown, d.cfg.BreakerCooldown), d.cfg.MaxBackoff)
		st.openUntil = laterOf(st.openUntil, now.Add(st.cooldown))
		d.metrics.breakerOpens.Inc()
	case !wasOpen && st.failures >= d.cfg.BreakerThreshold:
		st.cooldown = d.cfg.BreakerCooldown
		st.openUntil = laterOf(st.openUntil, now.Add(st.cooldown))
		d.metrics.breakerOpens.Inc()
	}
	if st.openUntil.IsZero() || len(st.queue) == 0 {
		return nil
	}
	flushed := st.queue
	st.queue = nil
	return flushed
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// group loads each claimed item's connection once and splits the items
// into lanes by conversation, keeping their order.
func (d *Dispatcher) group(ctx context.Context, items []ivr.OutboxItem) []*lane {
	type key struct {
		conn      int64
		recipient string
	}
	byKey := make(map[key]*lane)
	conns := make(map[int64]lane)
	var lanes []*lane
	for _, it := range items {
		k := key{it.ConnectionID, it.Recipient}
		l := byKey[k]
		if l == nil {
			c, ok := conns[it.ConnectionID]
			if !ok {
				c.conn, c.connErr = d.cfg.Store.GetConnectionByID(ctx, it.ConnectionID)
				c.conn.ID = it.ConnectionID
				conns[it.ConnectionID] = c
			}
			l = &lane{conn: c.conn, connErr: c.connErr}
			byKey[k] = l
			lanes = append(lanes, l)
		}
		l.items = append(l.items, it)
	}
	return lanes
}

// runLane attempts a lane's items in order. It stops at the first failure
// (the later items wait for it), when the connection's breaker is open, or
// when the next attempt might outlive the lease; items not attempted are
// released. Deliveries are recorded together at the end.
func (d *Dispatcher) runLane(ctx context.Context, l *lane) (int, []int64, error) {
	var delivered []int64
	var firstErr error
	attempted := 0
	for i, it := range l.items {
		now := d.cfg.Now()
		if !d.allowed(l.conn.ID, now) || now.Add(d.cfg.AttemptTimeout).After(l.claimedAt.Add(d.cfg.Lease)) {
			if err := d.release(ctx, l.items[i:], now); err != nil {
				firstErr = err
			}
			break
		}
		attempted++
		ok, err := d.attempt(ctx, l, it)
		if err != nil {
			firstErr = err
		}
		if ok {
			delivered = append(delivered, it.ID)
			d.metrics.delivered(it, d.cfg.Now())
			continue
		}
		if i+1 < len(l.items) {
			if err := d.release(ctx, l.items[i+1:], d.cfg.Now()); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		break
	}
	return attempted, delivered, firstErr
}

// recording is one lane's deliveries waiting to be written.
type recording struct {
	ids  []int64
	done func(error)
}

// record writes deliveries in the background, several lanes' in one
// transaction (group commit), and calls done with the outcome. The worker
// goes on meanwhile: until the write, the items stay pending and leased,
// so nothing after them in their conversation can be claimed.
func (d *Dispatcher) record(ids []int64, done func(error)) {
	d.recMu.Lock()
	defer d.recMu.Unlock()
	d.recPending = append(d.recPending, recording{ids: ids, done: done})
	if d.recRunning {
		return
	}
	d.recRunning = true
	d.lanes.Add(1)
	go d.flushRecords()
}

func (d *Dispatcher) flushRecords() {
	defer d.lanes.Done()
	ctx := context.Background()
	for {
		d.recMu.Lock()
		batch := d.recPending
		d.recPending = nil
		if len(batch) == 0 {
			d.recRunning = false
			d.recMu.Unlock()
			return
		}
		d.recMu.Unlock()
		for len(batch) > 0 {
			n, size := 0, 0
			for n < len(batch) && (n == 0 || size+len(batch[n].ids) <= maxRecordBatch) {
				size += len(batch[n].ids)
				n++
			}
			d.writeRecords(ctx, batch[:n])
			batch = batch[n:]
		}
	}
}

// maxRecordBatch bounds the items marked delivered in one transaction.
const maxRecordBatch = 500

func (d *Dispatcher) writeRecords(ctx context.Context, recs []recording) {
	var ids []int64
	for _, r := range recs {
		ids = append(ids, r.ids...)
	}
	err := d.cfg.Store.MarkDeliveredMany(ctx, ids, d.cfg.Now())
	if err == nil || len(recs) == 1 {
		if err != nil {
			err = fmt.Errorf("outbox: mark %d items delivered: %w", len(ids), err)
		}
		for _, r := range recs {
			r.done(err)
		}
		return
	}
	// One lane's items may have gone (purged): write each lane alone so
	// the others are recorded.
	for _, r := range recs {
		d.writeRecords(ctx, []recording{r})
	}
}

func (d *Dispatcher) release(ctx context.Context, items []ivr.OutboxItem, next time.Time) error {
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	if err := d.cfg.Store.ReleaseOutbox(ctx, ids, next); err != nil {
		return fmt.Errorf("outbox: release %d items: %w", len(ids), err)
	}
	return nil
}

// attempt sends one item. A failure is recorded on the item at once; a
// success is reported for the lane to record. Only store failures are
// returned as errors.
func (d *Dispatcher) attempt(ctx context.Context, l *lane, it ivr.OutboxItem) (bool, error) {
	start := d.cfg.Now()
	attemptNo := it.Attempts + 1
	var sendErr error
	switch {
	case l.connErr != nil:
		sendErr = WithClass(ClassConfig, fmt.Errorf("load connection %d: %w", it.ConnectionID, l.connErr))
	case !l.conn.Active:
		sendErr = WithClass(ClassConfig, fmt.Errorf("connection %d is inactive", it.ConnectionID))
	default:
		sendErr = d.send(ctx, it, l.conn)
	}
	end := d.cfg.Now()
	d.metrics.attempt(it, end.Sub(start))
	for _, q := range d.outcome(l.conn.ID, sendErr, end) {
		if err := d.release(ctx, q.items, end); err != nil {
			d.log.WarnContext(ctx, "outbox release failed", "connection_id", q.conn.ID, "error", err)
		}
		if q.pass != nil {
			q.pass.wg.Done()
		}
	}
	if sendErr == nil {
		return true, nil
	}
	delay := d.backoff(attemptNo)
	if ra, ok := RetryDelay(sendErr); ok && ra > delay {
		delay = ra
	}
	next := end.Add(delay)
	from := it.RetryFrom
	if from.IsZero() {
		from = it.CreatedAt
	}
	var why string
	switch {
	case IsPermanent(sendErr):
		why = "final error"
	case it.MaxAttempts > 0 && attemptNo >= it.MaxAttempts:
		why = fmt.Sprintf("%d attempts", attemptNo)
	case !from.IsZero() && next.After(from.Add(d.cfg.RetryHorizon)):
		why = fmt.Sprintf("retry horizon of %v", d.cfg.RetryHorizon)
	}
	dead := why != ""
	class := Class(sendErr)
	d.metrics.failed(it, class, dead)
	msg := scrub(sendErr.Error(), l.conn)
	d.log.WarnContext(ctx, "outbox delivery failed",
		"item", it.ID, "connection_id", it.ConnectionID, "channel", string(channelOf(it)), "attempt", attemptNo,
		"dead", dead, "dead_because", why, "class", class, "error", msg)
	if err := d.cfg.Store.MarkAttemptFailed(ctx, it.ID, msg, next, dead); err != nil {
		return false, fmt.Errorf("outbox: mark %d failed: %w", it.ID, err)
	}
	return false, nil
}

func channelOf(it ivr.OutboxItem) ivr.Channel {
	if it.Channel == "" {
		return ivr.ChannelWebhook
	}
	return it.Channel
}

// send hands one item to its channel's sender, within AttemptTimeout, in
// a delivery span (ids only: never the recipient or the body).
func (d *Dispatcher) send(ctx context.Context, it ivr.OutboxItem, conn ivr.Connection) (err error) {
	ctx, span := d.tracer.Start(ctx, ivr.SpanDelivery, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		ivr.AttrChannel.String(string(channelOf(it))), ivr.AttrBusinessID.Int64(conn.BusinessID),
		ivr.AttrOutboxItemID.Int64(it.ID), ivr.AttrAttempt.Int(it.Attempts+1)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, Class(err))
			span.SetAttributes(ivr.AttrResult.String("failed"))
		} else {
			span.SetAttributes(ivr.AttrResult.String("delivered"))
		}
		span.End()
	}()
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
