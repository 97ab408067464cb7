package main

import (
	"context"
	"time"
)

// DefaultDrainDelay is how long koel serve keeps serving with /readyz at
// 503 after SIGTERM, so load balancers take the node out of rotation
// before its listener closes (a few of their health-check intervals).
const DefaultDrainDelay = 5 * time.Second

// drainDelayUnset marks a drain delay neither the file nor the environment
// set, so koel serve applies its default.
const drainDelayUnset time.Duration = -1

// beginDrain marks the server not ready, refuses new softphone calls and
// keep-alives, and keeps serving for the drain delay, until ctx ends or
// [Server.SkipDrainDelay] is called.
func (s *Server) beginDrain(ctx context.Context) {
	s.ready.Store(false)
	if s.voice != nil {
		s.voice.refuseNewCalls()
	}
	if s.listener == nil {
		return
	}
	// Clients reconnect for their next request, and the balancer sends
	// that one elsewhere.
	s.http.SetKeepAlivesEnabled(false)
	if s.cfg.DrainDelay <= 0 {
		return
	}
	s.log.Info("draining: readyz answers 503, still serving", "drain_delay", s.cfg.DrainDelay.String())
	t := time.NewTimer(s.cfg.DrainDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.skipDelay:
		s.log.Info("drain delay skipped")
	case <-ctx.Done():
	}
}

// SkipDrainDelay ends the drain delay now (koel serve: a second SIGTERM or
// Ctrl-C); in-flight work still finishes. Safe to call more than once.
func (s *Server) SkipDrainDelay() {
	s.skipDelayOnce.Do(func() { close(s.skipDelay) })
}
