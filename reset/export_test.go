package reset

// CheckLink reports whether link may be used as the base of a reset
// link: nil or the [*InputError] that Request would return.
func CheckLink(s *Service, link string) error {
	_, err := s.parseLink(link)
	return err
}
