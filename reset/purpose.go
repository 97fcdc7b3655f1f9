package reset

import (
	"fmt"
	"time"
)

// Purpose is what a link is for. The zero value means [PurposeReset].
type Purpose string

// Purposes of a link.
const (
	// PurposeReset is a password reset: the reset email and page texts,
	// a lifetime of at most [Config.TokenTTL].
	PurposeReset Purpose = "reset"
	// PurposeInvite is an invitation to an account the application has
	// made: the invitation email ("choose your password") and page
	// texts, a lifetime of at most [Config.MaxInviteLifetime]. Only a
	// trusted caller can ask for one ([TrustedRequest.Purpose]).
	PurposeInvite Purpose = "invite"
)

// defaultMaxInviteLifetime is the longest an invitation works unless
// [Config.MaxInviteLifetime] says otherwise: 7 days.
const defaultMaxInviteLifetime = 7 * 24 * time.Hour

// lifetime checks a trusted request's purpose and lifetime and returns the
// purpose (never empty) and the token's lifetime: d, or the purpose's
// maximum when d is 0. A lifetime longer than the maximum is refused, not
// cut.
func (s *Service) lifetime(p Purpose, d time.Duration) (Purpose, time.Duration, error) {
	limit := s.cfg.TokenTTL
	switch p {
	case "", PurposeReset:
		p = PurposeReset
	case PurposeInvite:
		limit = s.cfg.MaxInviteLifetime
	default:
		return "", 0, &InputError{Field: "purpose", Reason: fmt.Sprintf("must be %q or %q", PurposeReset, PurposeInvite)}
	}
	switch {
	case d == 0:
		return p, limit, nil
	case d < time.Minute:
		return "", 0, &InputError{Field: "lifetime", Reason: "must be at least 1m0s"}
	case d > limit:
		return "", 0, &InputError{Field: "lifetime", Reason: fmt.Sprintf("must be at most %s for purpose %q", limit, p)}
	}
	return p, d, nil
}
