package health_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/health"
	"github.com/passreset/passreset/internal/opstest"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
)

type store interface {
	reset.Store
	outbox.Store
	Check(ctx context.Context) error
	Migrate(ctx context.Context) error
}

func TestReadyMariaDB(t *testing.T) {
	s, _, _ := opstest.MariaDB(t)
	probe(t, s)
}

func TestReadyPostgreSQL(t *testing.T) {
	s, _, _ := opstest.PostgreSQL(t)
	probe(t, s)
}

type answer struct {
	Status string
	Checks []struct {
		Name  string
		OK    bool
		Error string
	}
}

func get(t *testing.T, url string) (int, answer) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	return resp.StatusCode, a
}

// failing returns the names of the failing checks.
func failing(a answer) string {
	var names []string
	for _, c := range a.Checks {
		if !c.OK {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, ",")
}

// probe walks a deployment through its life and probes it at each step.
func probe(t *testing.T, s store) {
	ctx := t.Context()
	ob, err := outbox.New(s, outbox.Options{Keys: []outbox.SealKey{{ID: "k1", Key: make([]byte, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	var workers health.Runner
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /livez", health.Live())
	mux.Handle("GET /readyz", health.Ready(health.Options{Timeout: 10 * time.Second, Checks: []health.Check{
		health.Store(s.Check),
		health.Outbox(s, 10*time.Minute),
		workers.Check("outbox workers"),
		health.Dial("mailer", ln.Addr().String()),
	}}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	if code, a := get(t, srv.URL+"/livez"); code != http.StatusOK || a.Status != "ok" {
		t.Fatalf("livez: %d %+v", code, a)
	}
	// Tables not created yet; workers not started.
	code, a := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || a.Status != "fail" || !strings.Contains(failing(a), "store") || !strings.Contains(failing(a), "outbox workers") {
		t.Fatalf("readyz before migrate: %d %+v", code, a)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if code, a = get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || failing(a) != "outbox workers" {
		t.Fatalf("readyz with workers not started: %d %+v", code, a)
	}

	_, err = reset.New(reset.Config{KeepSessions: true, Store: s, Users: &resettest.Users{}, Mailer: &resettest.Mailer{}, ResetURL: "https://app.example/reset", Queue: ob})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		ran <- workers.Run(runCtx, func(ctx context.Context) error { close(started); return ob.Run(ctx) })
	}()
	<-started
	if code, a = get(t, srv.URL+"/readyz"); code != http.StatusOK || a.Status != "ok" || len(a.Checks) != 4 {
		t.Fatalf("readyz: %+v", a)
	}

	// Mail sealed with a key no instance has: the workers give it back
	// and it waits; an hour later the outbox is stuck.
	old := time.Now().UTC().Add(-time.Hour)
	if err := s.Enqueue(ctx, outbox.Envelope{ID: "stuck-1", Kind: outbox.KindMessage, Sealed: []byte("sealed with k9, which nobody has"), KeyID: "k9", NotBefore: old, CreatedAt: old}); err != nil {
		t.Fatal(err)
	}
	code, a = get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || failing(a) != "outbox" {
		t.Fatalf("readyz with a stuck outbox: %d %+v", code, a)
	}
	for _, c := range a.Checks {
		if c.Name == "outbox" && !strings.Contains(c.Error, "no worker is taking it") {
			t.Fatalf("outbox check error %q", c.Error)
		}
	}

	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if code, a = get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(failing(a), "outbox workers") {
		t.Fatalf("readyz after the workers stopped: %d %+v", code, a)
	}
	// The mail server went away.
	ln.Close()
	if code, a = get(t, srv.URL+"/readyz"); !strings.Contains(failing(a), "mailer") {
		t.Fatalf("readyz with the mail server gone: %d %+v", code, a)
	}
	if code, _ = get(t, srv.URL+"/livez"); code != http.StatusOK {
		t.Fatalf("livez fails with its dependencies: %d", code)
	}
}

func TestReadyTimeoutAndPanic(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	h := health.Ready(health.Options{Timeout: time.Millisecond, Checks: []health.Check{
		// A check that ignores its context.
		{Name: "hangs", Run: func(ctx context.Context) error { <-release; return nil }},
		{Name: "panics", Run: func(context.Context) error { panic("boom") }},
		{Name: "fine", Run: func(context.Context) error { return nil }},
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var a answer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || failing(a) != "hangs,panics" || a.Checks[0].Error != "timed out" || !strings.Contains(a.Checks[1].Error, "boom") {
		t.Fatalf("%d %+v", rec.Code, a)
	}
}
