package reset

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/passreset/passreset/internal/quota"
)

// quotaWindow is the rolling window of [Config.DailyLimit].
const quotaWindow = 24 * time.Hour

// stampHash is what a Record keeps of a credential stamp: HMAC-SHA-256 of
// the stamp keyed with the token's own bytes, which the store never
// holds, so that no reader of the store (nor of its secrets) can test a
// guessed stamp, and every instance computes the same value without a
// shared key. An empty stamp gives the zero Hash.
func stampHash(raw [tokenBytes]byte, stamp string) Hash {
	var h Hash
	if stamp == "" {
		return h
	}
	m := hmac.New(sha256.New, raw[:])
	m.Write([]byte("passreset/stamp\x00" + stamp))
	m.Sum(h[:0])
	return h
}

// checkStamp refuses rec, issued for token, when it was issued under a
// credential stamp the account no longer shows. A record without a stamp
// is not checked and costs nothing; one with a stamp costs one call to
// Users (LookupID when Users has it, LookupEmail otherwise).
func (s *Service) checkStamp(ctx context.Context, token string, rec Record) error {
	if rec.Stamp == (Hash{}) {
		return nil
	}
	raw, _, err := parseToken(token)
	if err != nil {
		return err
	}
	var u User
	if byID, ok := s.cfg.Users.(UsersByID); ok {
		u, err = byID.LookupID(ctx, rec.UserID)
	} else {
		u, err = s.cfg.Users.LookupEmail(ctx, rec.Email)
	}
	switch {
	case errors.Is(err, ErrUnknownUser):
		s.emit(Event{Kind: EventInvalid, UserID: rec.UserID})
		return fmt.Errorf("%w: the account is gone", ErrInvalidToken)
	case err != nil:
		return fmt.Errorf("reset: looking up user: %w", err)
	case u.ID != rec.UserID:
		s.emit(Event{Kind: EventInvalid, UserID: rec.UserID})
		return fmt.Errorf("%w: the address belongs to another account", ErrInvalidToken)
	case !equalHash(stampHash(raw, u.Stamp), rec.Stamp):
		s.emit(Event{Kind: EventInvalid, UserID: rec.UserID})
		return fmt.Errorf("%w: the account's credentials changed", ErrInvalidToken)
	}
	return nil
}

// spend applies the daily per-address budget to a request owned by owner
// (see [Quota]) and reports whether it may go on.
func (s *Service) spend(ctx context.Context, email, owner string, now time.Time) (bool, error) {
	if s.cfg.DailyLimit < 0 {
		return true, nil
	}
	key, err := s.addressKey(ctx, "passreset/quota", email)
	if err != nil {
		return false, err
	}
	ok, err := s.quota.Spend(ctx, key, owner, now, quotaWindow, s.cfg.DailyLimit)
	if err != nil {
		return false, fmt.Errorf("reset: daily limit: %w", err)
	}
	return ok, nil
}

// memQuota is the process-local budget used when the Store has none.
type memQuota struct {
	mu    sync.Mutex
	uses  map[Hash][]quota.Use
	sweep time.Time
}

func (m *memQuota) Spend(_ context.Context, key Hash, owner string, now time.Time, window time.Duration, limit int) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.sweep) {
		for k, u := range m.uses {
			if !quota.Last(u).After(now.Add(-window)) {
				delete(m.uses, k)
			}
		}
		m.sweep = now.Add(time.Hour)
	}
	next, ok := quota.Spend(m.uses[key], quota.OwnerOf(owner), now, window, limit)
	if next != nil {
		m.uses[key] = next
	}
	return ok, nil
}
