// Package backoff computes the waits between retries that every part of
// passreset uses: exponential, capped, with jitter.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry number attempt (1 for the first):
// a random duration between half and all of min(max, base·2^(attempt-1)).
// The lower half-bound spreads retries out without ever retrying at once;
// the jitter keeps many clients that failed together from retrying together.
// A base or max that is not positive gives 0.
func Delay(attempt int, base, max time.Duration) time.Duration {
	if base <= 0 || max <= 0 {
		return 0
	}
	ceil := max
	if attempt < 1 {
		attempt = 1
	}
	if attempt-1 < 62 {
		if d := base << (attempt - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	return ceil/2 + rand.N(ceil/2+1)
}

// Sleep waits for d or until ctx ends, and returns ctx's error in that case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
