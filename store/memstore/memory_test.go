package memstore_test

import (
	"context"
	"encoding/binary"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/store/memstore"
)

// churn rotates tokens for users round-robin, the clock advancing step
// per rotation, with tokens living ttl.
func churn(s *memstore.Store, rotations, users int, start time.Time, step, ttl time.Duration, ids []string) time.Time {
	now := start
	for i := range rotations {
		var h reset.Hash
		binary.LittleEndian.PutUint64(h[:], uint64(i)+1)
		s.Rotate(context.Background(), reset.Record{Hash: h, UserID: ids[i%users], Email: "x@example.com", CreatedAt: now, ExpiresAt: now.Add(ttl)})
		now = now.Add(step)
	}
	return now
}

func userIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "user-" + strconv.Itoa(i)
	}
	return ids
}

// Expired records do not pile up: without any Prune call, the store holds
// no more than the tokens still alive.
func TestExpiredRecordsDoNotPileUp(t *testing.T) {
	const users = 5000
	s := memstore.New()
	ids := userIDs(users)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// 50,000 rotations, one per 100 ms: 5,000 s in all, tokens live 60 s,
	// so about 600 are alive at the end.
	now := churn(s, 50000, users, start, 100*time.Millisecond, time.Minute, ids)
	// Alive: issued in the last 60 s; a sweep runs at least once a minute.
	if n := s.Len(); n > 1200+1 {
		t.Fatalf("store holds %d records, want at most about 1,200 live ones", n)
	}
	// Once everything has expired, the next write sweeps it all.
	churn(s, 1, users, now.Add(time.Hour), 0, time.Minute, ids)
	if n := s.Len(); n != 1 {
		t.Fatalf("store holds %d records after everything expired, want 1", n)
	}
}

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// BenchmarkMemstoreChurn runs 1,000,000 rotations over 100,000 users with
// expiry on (a token lives 15 minutes, one rotation per 10 ms of store time)
// and reports the heap after each quarter, and the bytes per live token.
func BenchmarkMemstoreChurn(b *testing.B) {
	const users, rotations = 100000, 1000000
	ids := userIDs(users)
	for b.Loop() {
		s := memstore.New()
		base := heapMB()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var quarters [4]float64
		for q := range quarters {
			now = churn(s, rotations/4, users, now, 10*time.Millisecond, 15*time.Minute, ids)
			quarters[q] = heapMB() - base
		}
		live := s.Len()
		b.ReportMetric(quarters[0], "heapMB@25%")
		b.ReportMetric(quarters[3], "heapMB@100%")
		b.ReportMetric(quarters[3]*(1<<20)/float64(live), "B/live-token")
		b.ReportMetric(float64(live), "live-tokens")
		runtime.KeepAlive(s)
	}
}
