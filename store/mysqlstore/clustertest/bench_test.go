package clustertest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/mysqlstore"
)

// BenchmarkClusterRequest measures trusted password-lost requests
// (svc.Request with SkipSend: one Rotate each) from 8 goroutines, all
// through node 1 ("one-node") or each request through the next node in
// turn ("three-nodes"). Requests name 1,000 accounts in turn, so that they
// rarely write one row at once. It reports requests per second, and the
// statements that failed with 1213 and were retried, per request.
func BenchmarkClusterRequest(b *testing.B) {
	c := getCluster(b)
	var cnt counters
	stores := c.stores(b, newTables(b, c), &cnt, mysqlstore.Options{})
	users := &resettest.Users{}
	const accounts = 1000
	addUsers(users, "b", accounts)
	svcs := services(b, stores, users, &resettest.Mailer{}, nil)
	ctx := b.Context()
	for _, bc := range []struct {
		name  string
		nodes int
	}{{"one-node", 1}, {"three-nodes", 3}} {
		b.Run(bc.name, func(b *testing.B) {
			before := cnt.deadlocks.Load()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range workers {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= b.N {
							return
						}
						email := fmt.Sprintf("b%d@example.com", i%accounts)
						if _, err := svcs[i%bc.nodes].RequestTrusted(ctx, reset.TrustedRequest{Email: email, SkipSend: true}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64(cnt.deadlocks.Load()-before)/float64(b.N), "retries/op")
		})
	}
}
