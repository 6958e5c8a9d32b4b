package commands

// Tracked is how many processes the pool still remembers: started and
// not yet seen done.
func (s *Service) Tracked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pool.all)
}
