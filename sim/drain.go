package sim

// Drain makes the softphone refuse new calls — POST /sim/offer answers 503
// with Retry-After — while calls in progress go on to their end; [Sim.Close]
// ends those. koel serve drains on SIGTERM, before it stops accepting
// connections. It is idempotent.
func (s *Sim) Drain() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
