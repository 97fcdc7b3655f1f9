package pace

import (
	"testing"
	"time"
)

func TestGCRA(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var tat time.Time
	var got []time.Duration
	for range 4 {
		var at time.Time
		tat, at = GCRA(tat, now, time.Second, 2)
		got = append(got, at.Sub(now))
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reservations at %v, want %v", got, want)
		}
	}
}

func TestLocal(t *testing.T) {
	var l Local
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if at := l.Reserve(now, time.Second); !at.Equal(now) {
		t.Fatalf("first reservation at %v", at)
	}
	if at := l.Reserve(now, time.Second); !at.Equal(now.Add(time.Second)) {
		t.Fatalf("second reservation at %v", at)
	}
	l.Pause(now.Add(time.Hour))
	if at := l.Reserve(now, time.Second); !at.Equal(now.Add(time.Hour)) {
		t.Fatalf("reservation after a pause at %v", at)
	}
}

func TestFactor(t *testing.T) {
	var f Factor
	if f.Get() != 1 {
		t.Fatalf("zero Factor = %v", f.Get())
	}
	f.Limited()
	if f.Get() != 0.5 {
		t.Fatalf("after one limit: %v", f.Get())
	}
	for range 10 {
		f.Limited()
	}
	if f.Get() != minFactor {
		t.Fatalf("floor: %v", f.Get())
	}
	for range 1000 {
		f.Quiet()
	}
	if f.Get() != 1 {
		t.Fatalf("recovered to %v, want 1", f.Get())
	}
}

func TestInterval(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{{2, 500 * time.Millisecond}, {0, 0}, {-1, 0}, {1e12, 0}} {
		if got := Interval(tc.r); got != tc.want {
			t.Errorf("Interval(%v) = %v, want %v", tc.r, got, tc.want)
		}
	}
}

// A call is late when it starts more than one interval's margin after its
// slot, and no longer after maxLate slots given up.
func TestLate(t *testing.T) {
	at := time.Unix(1000, 0)
	iv := Interval(2 * Margin) // 555.6 ms; the margin leaves 55.6 ms
	for _, tc := range []struct {
		after time.Duration
		tries int
		want  bool
	}{
		{0, 0, false},
		{50 * time.Millisecond, 0, false},
		{60 * time.Millisecond, 0, true},
		{60 * time.Millisecond, 2, true},
		{60 * time.Millisecond, 3, false},
		{time.Hour, 3, false},
	} {
		if got := Late(at, at.Add(tc.after), iv, tc.tries); got != tc.want {
			t.Errorf("Late(%v after, tries %d) = %v, want %v", tc.after, tc.tries, got, tc.want)
		}
	}
}
