package realtime

// CommitStats returns the transactions that stored sends and the sends
// they stored (group commit).
func CommitStats(s *Service) (batches, sends int64) {
	return s.commit.batches.Load(), s.commit.sends.Load()
}

// SetAfterReady sets a function run on the connection's goroutine right
// after its ready frame is queued (before the URL's resumes).
func SetAfterReady(s *Service, f func(ConnInfo)) { s.afterReady = f }
