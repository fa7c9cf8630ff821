package realtime

// CommitStats returns the transactions that stored sends and the sends
// they stored (group commit).
func CommitStats(s *Service) (batches, sends int64) {
	return s.commit.batches.Load(), s.commit.sends.Load()
}
