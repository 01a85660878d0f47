package inbox

// UseRollups turns the analytics' rollups on or off, so that a test can
// compare what they answer with what the raw rows do.
func UseRollups(s *Service, on bool) { s.noRollups = !on }
