package proctest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/resendmailer"
	"github.com/passreset/passreset/mailer/resendmailer/resendtest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
)

// Processes runs a store's durability tests, which run instances of the
// application in child processes (the test binary run again) so that they
// can kill them with SIGKILL. The test package must have
//
//	func TestHelperProcess(t *testing.T) { proctest.HelperProcess(t, procs...) }
//
// which the children run, with every Processes its tests use.
type Processes struct {
	// Name tells the child which Processes it serves.
	Name string
	// New returns a new, migrated store on tables of its own, dropped
	// when t ends.
	New func(t *testing.T) Store
	// Open opens, in a child process, the store on the test database's
	// tables with prefix, and checks that it can serve.
	Open func(ctx context.Context, prefix string) (Store, error)
}

// Workers is how many workers each instance runs.
const Workers = 2

// The child reads its settings from these variables.
const (
	childStoreEnv  = "PASSRESET_PROCTEST_STORE"  // the Processes' Name
	childRoleEnv   = "PASSRESET_PROCTEST_CHILD"  // "api" or "worker"
	childPrefixEnv = "PASSRESET_PROCTEST_PREFIX" // the tables' prefix
	childUsersEnv  = "PASSRESET_PROCTEST_USERS"  // accounts user0..user<n-1>@example.com
	childKeyEnv    = "PASSRESET_PROCTEST_KEY"    // the sealing key, hex
	childResendEnv = "PASSRESET_PROCTEST_RESEND" // the base URL of the Resend stand-in
	childBatchEnv  = "PASSRESET_PROCTEST_BATCH"  // a worker's Options.Batch with the batch mailer; "" for one message per call
)

// HelperProcess is not a test: it is the child process of the durability
// tests, and returns at once in the test process. As "api" it serves the
// HTTP handler on a loopback port and prints "ADDR <host:port>", running
// no outbox worker. As "worker" it prints "READY", waits for a line on
// stdin, runs the outbox with the Resend mailer until stdin closes, then
// prints "SENT <n>".
func HelperProcess(t *testing.T, procs ...Processes) {
	role := os.Getenv(childRoleEnv)
	if role == "" {
		return
	}
	for _, p := range procs {
		if p.Name == os.Getenv(childStoreEnv) {
			if err := p.runChild(role); err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	fmt.Fprintf(os.Stderr, "child: no Processes named %q\n", os.Getenv(childStoreEnv))
	os.Exit(1)
}

func (p Processes) runChild(role string) error {
	ctx := context.Background()
	store, err := p.Open(ctx, os.Getenv(childPrefixEnv))
	if err != nil {
		return err
	}
	users := &resettest.Users{}
	n, err := strconv.Atoi(os.Getenv(childUsersEnv))
	if err != nil {
		return err
	}
	SeedUsers(users, n)
	key, err := hex.DecodeString(os.Getenv(childKeyEnv))
	if err != nil {
		return err
	}
	var mailer reset.Mailer = &resettest.Mailer{}
	opt := outbox.Options{Workers: Workers, WorkerID: fmt.Sprintf("pid%d", os.Getpid())}
	if role == "worker" {
		rm, err := resendmailer.New(resendmailer.Options{APIKey: resendtest.APIKey, From: "Reset <reset@example.com>",
			BaseURL: os.Getenv(childResendEnv)})
		if err != nil {
			return err
		}
		mailer = SendOnly{rm} // one message per call
		if b := os.Getenv(childBatchEnv); b != "" {
			if opt.Batch, err = strconv.Atoi(b); err != nil {
				return err
			}
			mailer = rm // a BatchMailer
		}
	}
	in, err := NewInstance(store, users, mailer, outbox.SealKey{ID: "test-key", Key: key}, opt, nil)
	if err != nil {
		return err
	}
	switch role {
	case "api":
		h, err := httpadapter.New(in.Service, httpadapter.Options{RateLimit: -1})
		if err != nil {
			return err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fmt.Printf("ADDR %s\n", l.Addr())
		return http.Serve(l, h)
	case "worker":
		return ServeWorker(in)
	}
	return fmt.Errorf("unknown role %q", role)
}

// ServeWorker is the worker side of the process tests' protocol, on
// standard input and output: it prints "READY", waits for a line, runs
// the instance's outbox until standard input closes, then prints
// "SENT <n>" with the number of messages its workers sent.
func ServeWorker(in *Instance) error {
	fmt.Println("READY")
	sc := bufio.NewScanner(os.Stdin)
	if !sc.Scan() {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for sc.Scan() {
		}
		cancel() // stdin closed: stop
	}()
	if err := in.Outbox.Run(ctx); err != nil {
		return err
	}
	fmt.Printf("SENT %d\n", in.Sent())
	return nil
}

// child is a running child process.
type child struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
	once   sync.Once
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// rig is the setting of one durability test: the store, the Resend
// stand-in, and the environment of the children.
type rig struct {
	store Store
	fake  *resendtest.Server
	users int
	key   outbox.SealKey
	vars  []string
}

func (p Processes) newRig(t *testing.T, users int) *rig {
	t.Helper()
	store := p.New(t)
	fake := resendtest.NewServer()
	t.Cleanup(fake.Close)
	key := NewSealKey()
	return &rig{store: store, fake: fake, users: users, key: key, vars: []string{
		childStoreEnv + "=" + p.Name,
		childPrefixEnv + "=" + store.TablePrefix(),
		childUsersEnv + "=" + strconv.Itoa(users),
		childKeyEnv + "=" + hex.EncodeToString(key.Key),
		childResendEnv + "=" + fake.URL,
	}}
}

// start starts the test binary as a child in role, with the extra
// environment variables vars, and kills it when the test ends if it still
// runs.
func (o *rig) start(t *testing.T, role, name string, vars ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(append(append(os.Environ(), childRoleEnv+"="+role), o.vars...), vars...)
	c := &child{t: t, name: name, cmd: cmd, lines: make(chan string, 64), stderr: &lockedBuffer{}}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// worker starts a worker child and tells it to start working once it is
// ready.
func (o *rig) worker(t *testing.T, name string, vars ...string) *child {
	t.Helper()
	w := o.start(t, "worker", name, vars...)
	w.expect("READY")
	w.begin()
	return w
}

// expect waits for the child's next line that starts with prefix and
// returns the rest of it.
func (c *child) expect(prefix string) string {
	c.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("%s exited before printing %q; stderr:\n%s", c.name, prefix, c.stderr)
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return rest
			}
		case <-timeout:
			c.t.Fatalf("%s printed no %q in 30s; stderr:\n%s", c.name, prefix, c.stderr)
		}
	}
}

// begin tells a worker child to start working.
func (c *child) begin() {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, "GO\n"); err != nil {
		c.t.Fatal(err)
	}
}

// kill ends the child with SIGKILL: no deferred function, no shutdown.
func (c *child) kill() {
	c.once.Do(func() {
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.cmd.Wait()
	})
}

// stop asks a worker child to stop, and returns how many messages it sent.
func (c *child) stop() int {
	c.t.Helper()
	c.stdin.Close()
	n, err := strconv.Atoi(c.expect("SENT "))
	if err != nil {
		c.t.Fatal(err)
	}
	c.once.Do(func() {
		if err := c.cmd.Wait(); err != nil {
			c.t.Errorf("%s: %v; stderr:\n%s", c.name, err, c.stderr)
		}
	})
	return n
}

// inspector returns a Service on the store with the children's accounts,
// whose outbox runs no workers, to enqueue requests and to check mailed
// links.
func (o *rig) inspector(t *testing.T) *reset.Service {
	t.Helper()
	u := &resettest.Users{}
	SeedUsers(u, o.users)
	in, err := NewInstance(o.store, u, &resettest.Mailer{}, o.key, outbox.Options{MaxPending: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Service.Shutdown(context.Background()) })
	return in.Service
}

// pending returns how many envelopes wait in the outbox.
func (o *rig) pending(t *testing.T) int {
	t.Helper()
	st, err := o.store.Stats(t.Context(), 100000)
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

// drained waits until the outbox is empty, nothing is dead, and the fake
// has accepted n emails.
func (o *rig) drained(t *testing.T, n int) {
	t.Helper()
	// Generous bounds: they only stop a broken test, and a loaded
	// machine with the race detector is slow.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if _, err := o.fake.WaitEmails(ctx, n); err != nil {
		t.Fatal(err)
	}
	// The last delete follows the last send: the outbox is another
	// process's state, with no event to wait on.
	WaitFor(t, time.Minute, fmt.Sprintf("%d emails and an empty outbox", n), func() bool {
		st, err := o.store.Stats(t.Context(), 100000)
		if err != nil {
			t.Fatal(err)
		}
		if st.Dead != 0 {
			t.Fatalf("%d envelopes went dead", st.Dead)
		}
		return st.Pending == 0 && len(o.fake.Emails()) >= n
	})
}

// queued sets up a store, a local Resend and n accounts, and queues a
// public request for each account through an in-process Service that runs
// no workers (and serves to inspect the mailed tokens).
func (p Processes) queued(t *testing.T, n int) (*rig, *reset.Service) {
	t.Helper()
	o := p.newRig(t, n)
	svc := o.inspector(t)
	for i := range n {
		if err := svc.Request(t.Context(), fmt.Sprintf("user%d@example.com", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	return o, svc
}

// TestSurvivesKill: the API process answers 202 to N public requests for
// accounts (and to some for unknown addresses), then is killed with
// SIGKILL before any worker ran. A worker process started afterwards
// delivers exactly N emails, one per account, each with a working link.
func (p Processes) TestSurvivesKill(t *testing.T) {
	const n, unknown = 40, 10
	o := p.newRig(t, n)

	api := o.start(t, "api", "api process")
	addr := api.expect("ADDR ")
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range n + unknown {
		email := fmt.Sprintf("user%d@example.com", i)
		if i >= n {
			email = fmt.Sprintf("nobody%d@example.com", i)
		}
		resp, err := client.Post("http://"+addr+httpadapter.PasswordLostPath, "application/json",
			strings.NewReader(`{"email":"`+email+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	api.kill()
	if got := o.pending(t); got != n+unknown {
		t.Fatalf("after the kill: %d pending, want %d", got, n+unknown)
	}
	if len(o.fake.Requests()) != 0 {
		t.Fatal("mail was sent before a worker ran")
	}

	w := o.worker(t, "worker process")
	o.drained(t, n)
	if sent := w.stop(); sent != n {
		t.Errorf("the worker reports %d sent, want %d", sent, n)
	}
	CheckDelivered(t, o.inspector(t), o.fake, n)
	if reqs := len(o.fake.Requests()); reqs != n {
		t.Errorf("%d requests reached Resend for %d emails", reqs, n)
	}
}

// TestWorkerKilledMidDrain kills a worker process with SIGKILL in the
// middle of draining, sending one message per call: once Resend accepted
// emails k+1 and k+2, whose answers never reach it, so that each of its
// two workers waits on one. Its leases run out, and a second worker
// process finishes: every account gets exactly one email (the fake
// answers a repeated idempotency key as a replay and records no email),
// with one idempotency key each and a working link.
//
// The kill waits until both workers are stuck in a send: a worker killed
// between a request's cooldown and the save of its sealed message leaves
// a running cooldown, and the next worker then drops the request (the
// person has to ask again; see reset.Service's outbox), which this test
// is not about. Killing after one held answer met that about once in
// three runs.
func (p Processes) TestWorkerKilledMidDrain(t *testing.T) {
	p.killMidDrain(t, 0, 10)
}

// TestBatchWorkerKilledMidDrain is TestWorkerKilledMidDrain with the
// batch mailer, in batches of 5: the first worker process is killed while
// both of its workers wait on the answer to a batch that Resend accepted.
// The second worker process sends those batches again under their keys,
// the same messages in the same order, and the fake answers them as
// replays: every recipient gets exactly one email.
func (p Processes) TestBatchWorkerKilledMidDrain(t *testing.T) {
	p.killMidDrain(t, 5, 2)
}

// killMidDrain is TestWorkerKilledMidDrain with batches of batch messages,
// or one message per call for 0. Resend answers k requests before it
// holds the answers.
func (p Processes) killMidDrain(t *testing.T, batch, k int) {
	const n = 40
	o, svc := p.queued(t, n)
	var vars []string
	if batch > 0 {
		vars = append(vars, childBatchEnv+"="+strconv.Itoa(batch))
	}
	var killed atomic.Bool
	o.fake.SetHook(func(r resendtest.Request) resendtest.Fault {
		if !killed.Load() && r.N > k {
			return resendtest.Fault{Late: time.Minute} // accepted, but the answer is held
		}
		return resendtest.Fault{}
	})

	w1 := o.worker(t, "first worker", vars...)
	// Wait until the emails of k+workers requests arrived (each request
	// has a key of its own): every worker of w1 then waits on an answer.
	wctx, wcancel := context.WithTimeout(t.Context(), 2*time.Minute)
	for want := 1; ; {
		emails, err := o.fake.WaitEmails(wctx, want)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for _, e := range emails {
			keys[e.IdempotencyKey] = true
		}
		if len(keys) >= k+Workers {
			break
		}
		want = len(emails) + 1
	}
	wcancel()
	w1.kill()
	killed.Store(true)
	left := o.pending(t)
	t.Logf("killed the first worker after %d emails; %d envelopes pending", len(o.fake.Emails()), left)
	if left == 0 {
		t.Fatal("nothing was left for the second worker")
	}

	w2 := o.worker(t, "second worker", vars...)
	o.drained(t, n)
	w2.stop()
	CheckDelivered(t, svc, o.fake, n)
	// At least the emails whose answers were lost went out again, with
	// the same key and body: the fake answered them as replays
	// (CheckDelivered found one email per key and recipient).
	perKey := map[string]int{}
	abandoned, batched := 0, 0
	for _, r := range o.fake.Requests() {
		perKey[r.IdempotencyKey]++
		if r.Abandoned {
			abandoned++
		}
		if r.Path == "/emails/batch" {
			batched++
		}
	}
	again := 0
	for _, c := range perKey {
		if c > 1 {
			again++
		}
	}
	t.Logf("%d requests (%d batches); %d answers lost with the first worker; %d requests sent again",
		len(o.fake.Requests()), batched, abandoned, again)
	if again == 0 {
		t.Error("nothing was sent again after the kill: the test did not kill between send and delete")
	}
	if batch > 0 && batched == 0 {
		t.Error("the batch mailer sent no batch")
	}
	if batch == 0 && batched != 0 {
		t.Errorf("%d batches with the one-message mailer", batched)
	}
}

// TestWorkersInSeveralProcesses: three worker processes drain 200
// envelopes at once. Every message is sent exactly once: one request per
// message reaches Resend, none repeated, and the work was shared.
func (p Processes) TestWorkersInSeveralProcesses(t *testing.T) {
	const n, procs = 200, 3
	o, svc := p.queued(t, n)
	var workers []*child
	for i := range procs {
		workers = append(workers, o.start(t, "worker", fmt.Sprintf("worker %d", i)))
	}
	for _, w := range workers {
		w.expect("READY")
	}
	for _, w := range workers {
		w.begin()
	}
	o.drained(t, n)
	total, busy := 0, 0
	var counts []int
	for _, w := range workers {
		sent := w.stop()
		counts = append(counts, sent)
		total += sent
		if sent > 0 {
			busy++
		}
	}
	t.Logf("messages sent by each process: %v", counts)
	CheckDelivered(t, svc, o.fake, n)
	if total != n || len(o.fake.Requests()) != n {
		t.Fatalf("%d sends reported, %d requests at Resend, for %d messages", total, len(o.fake.Requests()), n)
	}
	if busy < 2 {
		t.Errorf("only %d of %d processes sent anything", busy, procs)
	}
}

// TestFaults is the fault-injection suite: two instances of the
// application, worker processes of [Workers] workers each, drain n public
// requests, in batches of batch emails (0: one email per call), while
// the Resend stand-in misbehaves in phases that change as the drain runs,
// by the number of calls it has received: answers 500, accepts the
// emails and then drops the connection (the outcome is unknown to the
// sender), drops the connection before doing anything, hangs until the
// sender gives up, then accepts and drops again. In the middle of it the
// first instance is killed with SIGKILL and a third one takes its place.
// Every recipient gets exactly one email, none is missing, none is dead,
// and every mailed link works.
func (p Processes) TestFaults(t *testing.T, n, batch int) {
	o, svc := p.queued(t, n)
	var vars []string
	unit := n // the calls a drain without faults makes
	if batch > 0 {
		vars = append(vars, childBatchEnv+"="+strconv.Itoa(batch))
		unit = (n + batch - 1) / batch
	}
	kill := make(chan struct{})
	var killOnce sync.Once
	const (
		answer500 = iota
		acceptThenDrop
		dropBefore
		hang
	)
	faults := []resendtest.Fault{
		answer500:      {Status: http.StatusInternalServerError},
		acceptThenDrop: {Drop: true},            // accepted, the answer lost
		dropBefore:     {DropFirst: true},       // nothing done, nothing answered
		hang:           {Delay: 24 * time.Hour}, // until the sender gives up
	}
	var counts [4]atomic.Int64
	fault := func(kind int) resendtest.Fault {
		counts[kind].Add(1)
		return faults[kind]
	}
	// The phases, by the share of a fault-free drain's calls made so far:
	// each faults its first call and every nth after it; the kill comes
	// with the last.
	phases := []struct {
		from  float64
		kind  int // -1: no fault
		every int
		first atomic.Bool
	}{
		{from: 0, kind: -1},
		{from: 0.1, kind: answer500, every: 3},
		{from: 0.25, kind: acceptThenDrop, every: 2},
		{from: 0.4, kind: dropBefore, every: 3},
		{from: 0.5, kind: hang, every: 4},
		{from: 0.6, kind: acceptThenDrop, every: 2},
		{from: 0.75, kind: -1},
	}
	o.fake.SetHook(func(r resendtest.Request) resendtest.Fault {
		at := float64(r.N) / float64(unit)
		k := len(phases) - 1
		for k > 0 && at < phases[k].from {
			k--
		}
		ph := &phases[k]
		if k == len(phases)-2 {
			killOnce.Do(func() { close(kill) })
		}
		if first := ph.first.CompareAndSwap(false, true); ph.kind >= 0 && (first || r.N%ph.every == 0) {
			return fault(ph.kind)
		}
		return resendtest.Fault{}
	})

	w1 := o.worker(t, "instance 1", vars...)
	w2 := o.worker(t, "instance 2", vars...)
	select {
	case <-kill:
	case <-time.After(5 * time.Minute): // a bound for a broken test, not a speed
		t.Fatalf("the drain never reached the kill: %d calls", len(o.fake.Requests()))
	}
	w1.kill()
	t.Logf("killed instance 1 after %d calls; %d envelopes pending", len(o.fake.Requests()), o.pending(t))
	w3 := o.worker(t, "instance 3, after the kill", vars...)
	o.drained(t, n)
	sent := w2.stop() + w3.stop()
	CheckDelivered(t, svc, o.fake, n)
	st, err := o.store.Stats(t.Context(), 100000)
	if err != nil || st.Pending != 0 || st.Dead != 0 {
		t.Fatalf("outbox after the drain: %+v, %v; want nothing pending or dead", st, err)
	}
	t.Logf("%d recipients, batch %d: %d calls; faults: %d answered 500, %d accepted then dropped, %d dropped before, %d hung;"+
		" %d sent by the two instances that lived", n, batch, len(o.fake.Requests()),
		counts[answer500].Load(), counts[acceptThenDrop].Load(), counts[dropBefore].Load(), counts[hang].Load(), sent)
	for kind := range counts {
		if counts[kind].Load() == 0 {
			t.Errorf("fault %d never happened: the phases did not run", kind)
		}
	}
}
