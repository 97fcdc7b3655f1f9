package httpadapter

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

const benchBody = `{"email": "jborder@anywhere.com", "skipSend": "enabled"}`

// benchHandler returns the library's handler over memstore with one user.
// cooldown 0 keeps the default; -1 turns it off.
func benchHandler(b *testing.B, mailer reset.Mailer, cooldown time.Duration, opts Options) http.Handler {
	users := &resettest.Users{}
	users.Add("u1", knownEmail, oldPassword)
	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        memstore.New(), Users: users, Mailer: mailer,
		ResetURL: testResetURL, Logger: slog.New(slog.DiscardHandler),
		Cooldown: cooldown, QueueSize: 1 << 16,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Shutdown(context.Background()) })
	opts.RateLimit = -1
	h, err := New(svc, opts)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// baseline is the least any password-lost handler does: decode the same
// JSON, make the primitive token (crypto/rand, SHA-256, base64url) and
// write the same JSON answer. It checks nothing and stores nothing.
func baseline(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Link     string `json:"link"`
		SkipSend string `json:"skipSend"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var buf [32]byte
	rand.Read(buf[:])
	_ = sha256.Sum256(buf[:])
	link := testResetURL + "?token=" + base64.RawURLEncoding.EncodeToString(buf[:])
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"link": link})
}

// serve runs one request through h, as the same harness for both.
func serve(b *testing.B, h http.Handler, auth bool, want int) {
	req := httptest.NewRequest("POST", PasswordLostPath, strings.NewReader(benchBody))
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.SetBasicAuth(clientID, clientSecret)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// BenchmarkHandler compares the full trusted password-lost request (Basic
// auth, strict decoding, core Request with skipSend) with the baseline.
func BenchmarkHandler(b *testing.B) {
	b.Run("passreset", func(b *testing.B) {
		auth, err := BasicAuth(clientID, clientSecret)
		if err != nil {
			b.Fatal(err)
		}
		h := benchHandler(b, &resettest.Mailer{}, -1, Options{Authorize: auth})
		b.ReportAllocs()
		for b.Loop() {
			serve(b, h, true, http.StatusOK)
		}
	})
	b.Run("baseline", func(b *testing.B) {
		h := http.HandlerFunc(baseline)
		b.ReportAllocs()
		for b.Loop() {
			serve(b, h, true, http.StatusOK)
		}
	})
}

// slowMailer takes 20 ms per message, like a remote provider.
var slowMailer = resettest.MailerFunc(func(ctx context.Context, _ reset.Message) error {
	select {
	case <-time.After(20 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
})

// BenchmarkPublicTiming measures public password-lost requests for a known
// and an unknown address with a mailer that takes 20 ms: both must cost the
// same, far below 20 ms, since the answer never waits for the mail. The
// cooldown is on, as in production: the one known address gets a mail a
// minute, and the queue does not fill with 20 ms sends.
func BenchmarkPublicTiming(b *testing.B) {
	for _, c := range []struct{ name, email string }{{"known", knownEmail}, {"unknown", "nobody@anywhere.com"}} {
		b.Run(c.name, func(b *testing.B) {
			h := benchHandler(b, slowMailer, 0, Options{})
			body := `{"email": "` + c.email + `"}`
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", PasswordLostPath, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
