package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/password"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// workers is how many requests the client has in flight at once.
const workers = 8

// nodeFailureUnits is how many journeys TestNodeFailure runs at most.
const nodeFailureUnits = 5000

// The journey of one person, unit u with the account u<u>, as steps of
// requests. Step s goes to instance (u+s)%3, so every step after the first
// reads through another node what the step before wrote. It costs 8
// requests and sends 3 emails: the first link, the password-changed
// notice and one of the two public requests (the cooldown, kept in the
// cluster, suppresses the other).
var steps = []struct {
	name    string
	path    string
	trusted bool
	status  int
	code    string
}{
	{"lost", httpadapter.PasswordLostPath, true, http.StatusOK, ""},                          // mails link 1
	{"lost-skipsend", httpadapter.PasswordLostPath, true, http.StatusOK, ""},                 // link 2 replaces link 1
	{"check-replaced", httpadapter.CheckPath, false, http.StatusBadRequest, "INVALID_TOKEN"}, // link 1 no longer works
	{"check", httpadapter.CheckPath, false, http.StatusOK, ""},                               // link 2 does
	{"reset", httpadapter.PasswordResetPath, false, http.StatusOK, ""},                       // mails the notice
	{"reset-again", httpadapter.PasswordResetPath, false, http.StatusBadRequest, "INVALID_TOKEN"},
	{"lost-public", httpadapter.PasswordLostPath, false, http.StatusAccepted, ""},   // mails a link
	{"lost-public-2", httpadapter.PasswordLostPath, false, http.StatusAccepted, ""}, // in the cooldown: mails nothing
}

// journeyPassword is the new password of unit n. It must not contain the
// address's local part u<n>: the default policy refuses a password that
// contains a context word of 4 characters or more (u100 on).
func journeyPassword(n int) string {
	return fmt.Sprintf("the new passphrase of journey %d", n)
}

// TestJourneyPasswords: the app instances' password policy (the default)
// accepts the new password of every journey TestNodeFailure can run, for
// the journey's account.
func TestJourneyPasswords(t *testing.T) {
	users := &resettest.Users{}
	svc, err := reset.New(reset.Config{Store: &memstore.Store{}, Users: users, Mailer: &resettest.Mailer{}, ResetURL: resetURL, KeepSessions: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Shutdown(context.Background()) })
	for n := range nodeFailureUnits {
		pc := password.Check{Password: journeyPassword(n), UserID: fmt.Sprintf("u%d", n), Email: fmt.Sprintf("u%d@example.com", n)}
		if err := svc.CheckPassword(t.Context(), pc); err != nil {
			t.Fatalf("unit %d: the password %q for %s: %v", n, pc.Password, pc.Email, err)
		}
	}
}

// unit is what became of one journey.
type unit struct {
	n        int
	token1   string   // the token of the first, mailed link
	results  []result // one per step taken
	complete bool     // every step got its expected answer
}

// mismatch is an answer other than the expected one.
type mismatch struct {
	result
	want string
}

func (m mismatch) String() string {
	got := fmt.Sprintf("%d %s", m.status, m.code)
	if m.err != nil {
		got = m.err.Error()
	}
	return fmt.Sprintf("%s on app%d: got %s, want %s (after %v)", m.step, m.inst+1, got, m.want, m.end.Sub(m.start).Round(time.Millisecond))
}

// load is one client driving journeys over the instances.
type load struct {
	c     *client
	insts []*instance

	next     atomic.Int64 // the next unit number
	requests atomic.Int64 // requests answered (or failed)

	mu         sync.Mutex
	units      []*unit
	mismatches []mismatch
	onResult   func(result) // called for every request, if set
	onUnit     func(*unit)  // called for every journey, if set
}

// journey runs unit n; it stops at the first unexpected answer.
func (l *load) journey(n int) *unit {
	u := &unit{n: n}
	email := fmt.Sprintf("u%d@example.com", n)
	var token2 string
	for s, st := range steps {
		idx := (n + s) % len(l.insts)
		var body map[string]string
		switch st.name {
		case "lost", "lost-public", "lost-public-2":
			body = map[string]string{"email": email}
		case "lost-skipsend":
			body = map[string]string{"email": email, "skipSend": "enabled"}
		case "check-replaced":
			body = map[string]string{"confirmationToken": u.token1}
		case "check":
			body = map[string]string{"confirmationToken": token2}
		case "reset", "reset-again":
			body = map[string]string{"confirmationToken": token2, "newPassword": journeyPassword(n)}
		}
		r, out := l.c.post(l.insts[idx], idx, st.name, st.path, st.trusted, body)
		l.requests.Add(1)
		u.results = append(u.results, r)
		if l.onResult != nil {
			l.onResult(r)
		}
		if r.err != nil || r.status != st.status || r.code != st.code {
			l.mu.Lock()
			l.mismatches = append(l.mismatches, mismatch{r, strings.TrimSpace(fmt.Sprintf("%d %s", st.status, st.code))})
			l.mu.Unlock()
			return u
		}
		if link, ok := out["link"].(string); ok {
			if s == 0 {
				u.token1 = resettest.Token(link)
			} else {
				token2 = resettest.Token(link)
			}
		}
	}
	u.complete = true
	return u
}

// mismatchesSince describes the first n unexpected answers to requests
// begun after since, and how many there were.
func (l *load) mismatchesSince(since time.Time, n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first []string
	all := 0
	for _, m := range l.mismatches {
		if m.start.After(since) {
			all++
			if len(first) < n {
				first = append(first, m.String())
			}
		}
	}
	if all == 0 {
		return "no unexpected answers since"
	}
	return fmt.Sprintf("%d unexpected answers since, the first: %s", all, strings.Join(first, "; "))
}

// run runs journeys on workers goroutines until more returns false.
func (l *load) run(more func(n int) bool) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				n := int(l.next.Add(1) - 1)
				if !more(n) {
					return
				}
				u := l.journey(n)
				l.mu.Lock()
				l.units = append(l.units, u)
				l.mu.Unlock()
				if l.onUnit != nil {
					l.onUnit(u)
				}
			}
		})
	}
	wg.Wait()
}

// latencies returns the largest and the 99th percentile latency of the
// answered requests of instances where keep(instance) holds.
func (l *load) latencies(keep func(int) bool) (p99, maxLat time.Duration, n int) {
	var ds []time.Duration
	for _, u := range l.units {
		for _, r := range u.results {
			if keep(r.inst) && r.err == nil {
				ds = append(ds, r.end.Sub(r.start))
			}
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)*99/100], ds[len(ds)-1], len(ds)
}

// mails counts the fake's emails per recipient and kind, and fails t if
// two emails share an idempotency key.
func mails(t *testing.T, fake *resendtest.Server) (map[string]map[string][]resendtest.Email, int) {
	t.Helper()
	byKey := map[string]int{}
	out := map[string]map[string][]resendtest.Email{}
	emails := fake.Emails()
	for _, e := range emails {
		byKey[e.IdempotencyKey]++
		if byKey[e.IdempotencyKey] == 2 {
			t.Errorf("two emails with the idempotency key %q", e.IdempotencyKey)
		}
		kind, _, _ := strings.Cut(e.IdempotencyKey, "/")
		if len(e.To) != 1 {
			t.Errorf("email to %v, want one recipient", e.To)
			continue
		}
		if out[e.To[0]] == nil {
			out[e.To[0]] = map[string][]resendtest.Email{}
		}
		out[e.To[0]][kind] = append(out[e.To[0]][kind], e)
	}
	return out, len(emails)
}

// checkMails checks the emails of unit u: exactly its 3 if exact, at
// most those otherwise (a journey cut short, or background work that an
// outage made fail, sends less, never more).
func checkMails(t *testing.T, got map[string]map[string][]resendtest.Email, u *unit, exact bool) {
	t.Helper()
	m := got[fmt.Sprintf("u%d@example.com", u.n)]
	resets, notices := m[reset.KindReset], m[reset.KindChanged]
	if len(resets) > 2 || len(notices) > 1 {
		t.Errorf("unit %d got %d reset emails and %d notices, more than the 2 and 1 it asked for", u.n, len(resets), len(notices))
	}
	if !exact {
		return
	}
	if len(resets) != 2 || len(notices) != 1 {
		t.Errorf("unit %d got %d reset emails and %d notices, want 2 and 1", u.n, len(resets), len(notices))
		return
	}
	if !slices.ContainsFunc(resets, func(e resendtest.Email) bool { return resettest.Token(e.Text) == u.token1 }) {
		t.Errorf("unit %d: no reset email carries the link the trusted request returned", u.n)
	}
}

// statsLine sums the instances' stats.
func statsLine(stats []appStats) string {
	var parts []string
	for i, s := range stats {
		parts = append(parts, fmt.Sprintf("app%d: %d deadlocks/certification conflicts (1213), %d node-not-ready (1047), %d other failed statements, %d failed background jobs",
			i+1, s.Deadlocks, s.NotReady, s.Other, s.Failed))
	}
	return strings.Join(parts, "; ")
}

// TestAppInstances: three app instances, separate processes each on its
// own node, serve one client that spreads 640 requests over them, 8 at a
// time: every answer is the expected one (no 5xx: certification conflicts
// are retried inside the store), and every email is sent exactly once.
func TestAppInstances(t *testing.T) {
	c := getCluster(t)
	prefix := newTables(t, c)
	fake := resendtest.NewServer()
	t.Cleanup(fake.Close) // after the instances have stopped
	const units = 80
	insts := startInstances(t, c, prefix, fake, units)
	l := &load{c: newClient(), insts: insts}
	began := time.Now()
	l.run(func(n int) bool { return n < units })
	took := time.Since(began)
	for _, m := range l.mismatches {
		t.Errorf("unexpected answer: %v", m)
	}
	stats := stopInstances(t, insts)
	got, total := mails(t, fake)
	for _, u := range l.units {
		checkMails(t, got, u, true)
	}
	if want := 3 * units; total != want {
		t.Errorf("%d emails, want %d (3 per journey)", total, want)
	}
	p99, maxLat, n := l.latencies(func(int) bool { return true })
	t.Logf("%d requests over 3 instances in %v (%.0f/s), p99 %v, max %v; %d emails, %d requests to the mail API",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), p99.Round(time.Millisecond), maxLat.Round(time.Millisecond), total, len(fake.Requests()))
	t.Logf("retried inside the store: %s", statsLine(stats))
}

// TestNodeFailure: node 3 is killed under the load of TestAppInstances.
// The instances on nodes 1 and 2 keep giving the expected answers; the
// instance on node 3 answers 503 (never another error, never later than
// the client's timeout) while its node is away, and once the node has
// rejoined it works again by itself, in the same process. No email is
// sent twice, and every journey that did not meet the outage gets exactly
// its emails.
func TestNodeFailure(t *testing.T) {
	c := getCluster(t)
	script := galeraScript(t)
	if st := runScript(t, script, 10*time.Second, "status"); strings.Count(st, "Synced") != 3 {
		t.Fatalf("the cluster is not whole before the test:\n%s", st)
	}
	prefix := newTables(t, c)
	fake := resendtest.NewServer()
	t.Cleanup(fake.Close) // after the instances have stopped
	const maxUnits = nodeFailureUnits
	insts := startInstances(t, c, prefix, fake, maxUnits)
	const dead = 2 // instance (and node) index: node 3

	var killed atomic.Bool
	t.Cleanup(func() {
		if killed.Load() { // a failed test must not leave the cluster short of a node
			runScript(t, script, 3*time.Minute, "rejoin", "3")
		}
	})

	var (
		mu                    sync.Mutex
		killAt, recoveredAt   time.Time // recoveredAt is zero until app3 answered after the rejoin
		first503, last503     time.Time
		n503, okDead, okAfter int
		unitsAfter            int // journeys begun after recoveredAt and completed
	)
	warm, saw503, tail := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var warmOnce, saw503Once, tailOnce sync.Once
	const tailUnits = 40
	tailDone := func() { // with mu held
		if okAfter >= 30 && unitsAfter >= tailUnits {
			tailOnce.Do(func() { close(tail) })
		}
	}
	l := &load{c: newClient(), insts: insts}
	l.onResult = func(r result) {
		mu.Lock()
		defer mu.Unlock()
		if l.requests.Load() >= 150 {
			warmOnce.Do(func() { close(warm) })
		}
		if r.inst != dead {
			return
		}
		switch {
		case r.status == http.StatusServiceUnavailable:
			n503++
			if first503.IsZero() {
				first503 = r.end
			}
			last503 = r.end
			saw503Once.Do(func() { close(saw503) })
		case r.err == nil && !recoveredAt.IsZero() && r.start.After(recoveredAt):
			okAfter++
			tailDone()
		case r.err == nil && !killAt.IsZero() && r.start.After(killAt):
			okDead++
		}
	}
	l.onUnit = func(u *unit) {
		mu.Lock()
		defer mu.Unlock()
		if u.complete && !recoveredAt.IsZero() && u.results[0].start.After(recoveredAt) {
			unitsAfter++
			tailDone()
		}
	}
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.run(func(n int) bool {
			select {
			case <-stop:
				return false
			default:
				return n < maxUnits
			}
		})
	}()
	defer func() { // on every way out of the test
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-loadDone
	}()

	wait := func(ch <-chan struct{}, d time.Duration, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(d):
			t.Fatalf("%s did not happen within %v", what, d)
		}
	}
	wait(warm, time.Minute, "150 requests before the kill")

	mu.Lock()
	killAt = time.Now()
	mu.Unlock()
	runScript(t, script, 10*time.Second, "kill", "3")
	killed.Store(true)
	wait(saw503, 30*time.Second, "a 503 from app3 after its node was killed")
	// Node 3 is rejoined once the others have excluded it, as after a real
	// crash; that is when they go on committing without it.
	node1 := openDB(t, c.dsns[0], nil)
	excluded := pollUntil(t, 60*time.Second, "nodes 1 and 2 to exclude node 3", func(ctx context.Context) bool {
		var name string
		var size int
		err := node1.QueryRowContext(ctx, "SHOW STATUS LIKE 'wsrep_cluster_size'").Scan(&name, &size)
		return err == nil && size == 2
	})
	requestsAtExclusion := l.requests.Load()
	rejoinAt := time.Now()
	runScript(t, script, 3*time.Minute, "rejoin", "3")
	synced := time.Now()
	killed.Store(false)
	// app3 recovers by itself: probe it until it answers, without
	// restarting it.
	probe := newClient()
	recovered := pollUntil(t, 60*time.Second, "app3 to answer again after node 3 rejoined", func(context.Context) bool {
		r, _ := probe.post(insts[dead], dead, "probe", httpadapter.PasswordLostPath, true,
			map[string]string{"email": "probe@example.com", "skipSend": "enabled"})
		return r.err == nil && r.status == http.StatusOK
	})
	mu.Lock()
	recoveredAt = recovered
	mu.Unlock()
	// Go on until app3 has given 30 answers and 40 journeys have been
	// completed since it recovered.
	select {
	case <-tail:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		gotAfter, gotUnits := okAfter, unitsAfter
		mu.Unlock()
		t.Fatalf("30 answers from app3 and 40 whole journeys after it recovered did not happen within 2m0s: %d and %d; %s",
			gotAfter, gotUnits, l.mismatchesSince(recoveredAt, 5))
	}
	close(stop)
	<-loadDone

	// The answers: only app3 may fail, only with 503, only during the outage.
	for _, m := range l.mismatches {
		switch {
		case m.inst == dead && m.status == http.StatusServiceUnavailable && m.err == nil &&
			m.end.After(killAt) && m.start.Before(recoveredAt):
		default:
			t.Errorf("unexpected answer: %v", m)
		}
	}
	stats := stopInstances(t, insts)

	// The emails: none twice; exact for every journey that did not meet
	// node 3 during the outage (a 202 whose background work met it sends
	// nothing).
	got, total := mails(t, fake)
	exact := 0
	for _, u := range l.units {
		metOutage := false
		for _, r := range u.results {
			if r.inst == dead && r.end.After(killAt.Add(-200*time.Millisecond)) && r.start.Before(recoveredAt) {
				metOutage = true
			}
		}
		if u.complete && !metOutage {
			exact++
		}
		checkMails(t, got, u, u.complete && !metOutage)
	}
	if exact < tailUnits {
		t.Errorf("%d journeys got exactly their emails, want at least the %d completed after app3 recovered", exact, tailUnits)
	}

	total12, n12 := 0, 0
	for _, u := range l.units {
		for _, r := range u.results {
			if r.inst != dead {
				total12++
				if r.start.After(killAt) && r.start.Before(recoveredAt) {
					n12++
				}
			}
		}
	}
	p99, maxLat, _ := l.latencies(func(i int) bool { return i != dead })
	p99d, maxLatDead, _ := l.latencies(func(i int) bool { return i == dead })
	t.Logf("%d requests in %d journeys (%d with exactly their emails), %d emails, %d requests to the mail API",
		l.requests.Load(), len(l.units), exact, total, len(fake.Requests()))
	t.Logf("kill at +0; first 503 from app3 at +%v, last at +%v (%d in all, %d other answers from app3 during the outage); nodes 1-2 excluded node 3 at +%v (%d requests by then)",
		first503.Sub(killAt).Round(time.Millisecond), last503.Sub(killAt).Round(time.Millisecond), n503, okDead,
		excluded.Sub(killAt).Round(time.Millisecond), requestsAtExclusion)
	t.Logf("rejoin took %v; app3 (pid %d, never restarted) answered again %v after node 3 was Synced, %d answers since",
		synced.Sub(rejoinAt).Round(time.Millisecond), insts[dead].pid, recovered.Sub(synced).Round(time.Millisecond), okAfter)
	t.Logf("apps 1-2: %d requests, %d of them during the outage, none failed; latency p99 %v, max %v (the stall until node 3 was excluded); app3: p99 %v, max %v",
		total12, n12, p99.Round(time.Millisecond), maxLat.Round(time.Millisecond), p99d.Round(time.Millisecond), maxLatDead.Round(time.Millisecond))
	t.Logf("retried inside the store: %s", statsLine(stats))
}

// pollUntil calls cond every 100ms until it holds, and returns when it
// did; it fails t after d. For waits that have no event to wait on. cond
// gets a context that ends with the wait.
func pollUntil(t *testing.T, d time.Duration, what string, cond func(context.Context) bool) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond(ctx) {
			return time.Now()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waited %v for %s", d, what)
		case <-tick.C:
		}
	}
}
