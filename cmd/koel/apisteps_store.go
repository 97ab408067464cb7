package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/provision"
	"github.com/koelvoice/koel/ivr/store"
)

// apiStepLister reads the api_steps table, which YAML provisioning and
// the admin API write through provision.Service.
type apiStepLister interface {
	ListAPISteps(ctx context.Context, businessID int64) ([]store.APIStep, error)
}

// storedSteps serves the bot each business's stored API steps, read at
// most once per ttl per business, so a step put or deleted through the
// admin API is in force on every node within ttl without a store read per
// message.
type storedSteps struct {
	st  apiStepLister
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	mu      sync.Mutex
	entries map[int64]stepsEntry
}

type stepsEntry struct {
	steps map[string]faq.APIStep
	at    time.Time
}

// storedStepsTTL is how long a business's steps are served from memory.
const storedStepsTTL = time.Second

func newStoredSteps(st apiStepLister, ttl time.Duration, log *slog.Logger) *storedSteps {
	return &storedSteps{st: st, ttl: ttl, now: time.Now, log: log, entries: map[int64]stepsEntry{}}
}

// get returns the business's steps; on a store error it keeps serving the
// last ones read (and logs).
func (s *storedSteps) get(businessID int64) map[string]faq.APIStep {
	s.mu.Lock()
	e, ok := s.entries[businessID]
	s.mu.Unlock()
	now := s.now()
	if ok && now.Sub(e.at) < s.ttl {
		return e.steps
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	steps, err := provision.LoadAPISteps(ctx, s.st, businessID)
	if err != nil {
		s.log.Warn("api steps not reloaded; serving the last ones read", "business_id", businessID, "error", err)
		steps = e.steps
	}
	s.mu.Lock()
	s.entries[businessID] = stepsEntry{steps: steps, at: now}
	s.mu.Unlock()
	return steps
}
