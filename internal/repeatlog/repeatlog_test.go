package repeatlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestOutageLoggedOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := &Limiter{Interval: time.Minute, Now: c.now}
	ctx := context.Background()
	down := errors.New("dial tcp 10.0.0.1:5432: connect: connection refused")

	// 1,774 failed claims over 10 minutes, one every ~0.34 s.
	for range 1774 {
		l.Log(ctx, log, slog.LevelError, "outbox: claim failed", down, "worker", "w-1")
		c.add(340 * time.Millisecond)
	}
	got := lines(&buf)
	if len(got) < 10 || len(got) > 12 {
		t.Fatalf("%d lines for 1,774 identical errors over ~10 minutes, want one a minute:\n%s", len(got), strings.Join(got, "\n"))
	}
	if strings.Contains(got[0], "repeated") {
		t.Errorf("first line %q counts repeats", got[0])
	}
	total := 1
	for _, line := range got[1:] {
		var n int
		i := strings.Index(line, "repeated=")
		if i < 0 {
			t.Fatalf("line %q lacks the count", line)
		}
		fmt.Sscanf(line[i:], "repeated=%d", &n)
		total += n + 1
		if !strings.Contains(line, "worker=w-1") || !strings.Contains(line, "connection refused") {
			t.Fatalf("line %q lost its attributes", line)
		}
	}
	if rest := 1774 - total; rest < 0 || rest > 180 {
		t.Fatalf("lines stand for %d errors of 1,774; the rest (%d) are more than the last minute's", total, rest)
	}

	// Another error is written at once; so is a nil one, every time.
	l.Log(ctx, log, slog.LevelError, "outbox: claim failed", errors.New("deadlock"))
	l.Log(ctx, log, slog.LevelWarn, "outbox: claim failed", down)
	l.Log(ctx, log, slog.LevelInfo, "note", nil)
	l.Log(ctx, log, slog.LevelInfo, "note", nil)
	if got := lines(&buf); len(got) != 4 {
		t.Fatalf("distinct errors and nil errors: %d lines, want 4:\n%s", len(got), strings.Join(got, "\n"))
	}

	// After a quiet interval, the next one is written with the count of
	// the last interval's.
	l.Log(ctx, log, slog.LevelError, "outbox: claim failed", down)
	c.add(time.Hour)
	l.Log(ctx, log, slog.LevelError, "outbox: claim failed", down)
	got = lines(&buf)
	if len(got) != 1 || !strings.Contains(got[0], "repeated=") {
		t.Fatalf("after a quiet hour: %q, want one line with the count", got)
	}
}

func TestManyDistinctErrorsBounded(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	c := &clock{t: time.Unix(0, 0)}
	l := &Limiter{Now: c.now}
	for i := range 2 * maxKeys {
		l.Log(context.Background(), log, slog.LevelError, "x", fmt.Errorf("error %d", i))
	}
	if n := len(lines(&buf)); n != 2*maxKeys {
		t.Fatalf("%d lines for %d distinct errors", n, 2*maxKeys)
	}
	if len(l.seen) > maxKeys {
		t.Fatalf("remembers %d errors, more than %d", len(l.seen), maxKeys)
	}
}

func TestDisabledLevelCountsNothing(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
	var l Limiter
	l.Log(context.Background(), log, slog.LevelWarn, "x", errors.New("e"))
	if buf.Len() != 0 || len(l.seen) != 0 {
		t.Fatal("a disabled level was written or remembered")
	}
}
