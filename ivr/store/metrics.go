package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Transaction kinds (label values of koel_store_transaction_seconds): the
// verb of the transaction's operation, from a closed set. Never a key, an id
// or a name.
var txKinds = []string{"create", "update", "open", "append", "set", "queue", "move", "mark", "replace", "finish", "other"}

// txKindSet holds txKinds for lookups.
var txKindSet = func() map[string]bool {
	m := make(map[string]bool, len(txKinds))
	for _, k := range txKinds {
		m[k] = true
	}
	return m
}()

// txKind maps a transaction's operation ("create handoff of conversation
// 7", "append messages") to its kind ("create", "append"), or "other".
func txKind(op string) string {
	verb, _, _ := strings.Cut(op, " ")
	if txKindSet[verb] {
		return verb
	}
	return "other"
}

// storeMetrics are the store's collectors. A nil *storeMetrics records
// nothing.
type storeMetrics struct {
	tx             *prometheus.HistogramVec
	leaseConflicts prometheus.Counter
}

// txBuckets are latency buckets for transactions, in seconds (100 µs to 5 s).
var txBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// WithMetrics registers the store's collectors on reg:
// koel_store_transaction_seconds (by kind and result) and
// koel_store_lease_conflicts_total (PostgreSQL call-lock leases refused).
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) error {
		if reg == nil {
			return fmt.Errorf("%w: nil metrics registerer", ErrInvalid)
		}
		m := &storeMetrics{
			tx: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "koel_store_transaction_seconds",
				Help:    "Time of one store transaction from begin to commit or rollback, by kind (the operation's verb) and result (commit, rollback).",
				Buckets: txBuckets,
			}, []string{"kind", "result"}),
			leaseConflicts: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "koel_store_lease_conflicts_total",
				Help: "Call-lock leases refused on PostgreSQL because another owner (another request or node) held them.",
			}),
		}
		for _, c := range []prometheus.Collector{m.tx, m.leaseConflicts} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					return fmt.Errorf("store: metrics already registered on this registerer (one store per registry): %w", err)
				}
				return fmt.Errorf("store: register metrics: %w", err)
			}
		}
		for _, k := range txKinds {
			m.tx.WithLabelValues(k, "commit")
		}
		o.metrics = m
		return nil
	}
}

func (m *storeMetrics) transaction(op string, committed bool, d time.Duration) {
	if m == nil {
		return
	}
	result := "rollback"
	if committed {
		result = "commit"
	}
	m.tx.WithLabelValues(txKind(op), result).Observe(d.Seconds())
}

func (m *storeMetrics) leaseConflict() {
	if m != nil {
		m.leaseConflicts.Inc()
	}
}
