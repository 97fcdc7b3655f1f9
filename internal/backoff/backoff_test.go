package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	base, max := 100*time.Millisecond, 3*time.Second
	for attempt := -1; attempt < 80; attempt++ {
		ceil := max
		if a := max1(attempt); a-1 < 62 && base<<(a-1) > 0 && base<<(a-1) < max {
			ceil = base << (a - 1)
		}
		for range 50 {
			d := Delay(attempt, base, max)
			if d < ceil/2 || d > ceil {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", attempt, d, ceil/2, ceil)
			}
		}
	}
	if d := Delay(3, 0, time.Second); d != 0 {
		t.Errorf("Delay with base 0 = %v, want 0", d)
	}
}

func max1(a int) int {
	if a < 1 {
		return 1
	}
	return a
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}
}
