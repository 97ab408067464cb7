package platform

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/time/rate"
)

// Limiter paces sends per key (a Messenger page, a WhatsApp number) so koel
// stays under the platform's documented rate instead of learning it from
// 429s. It is safe for concurrent use.
type Limiter struct {
	rate  rate.Limit
	burst int

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

// NewLimiter allows perSecond sends per key with bursts of burst.
func NewLimiter(perSecond float64, burst int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	return &Limiter{rate: rate.Limit(perSecond), burst: burst, keys: make(map[string]*rate.Limiter)}
}

// Wait blocks until key may send or ctx ends.
func (l *Limiter) Wait(ctx context.Context, key string) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	lim, ok := l.keys[key]
	if !ok {
		if len(l.keys) > 100_000 {
			// Bounded memory: forget idle keys wholesale; at worst a key
			// gets one fresh burst.
			clear(l.keys)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.keys[key] = lim
	}
	l.mu.Unlock()
	if err := lim.Wait(ctx); err != nil {
		return fmt.Errorf("platform: rate limit wait: %w", err)
	}
	return nil
}
