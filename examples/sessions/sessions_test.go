package sessions

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gorilla/sessions"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	resetmem "github.com/passreset/passreset/store/memstore"
)

// app is an application's sign-in, with /login?user=<id> and /me, and
// the EndSessions of its session library.
type app struct {
	handler     http.Handler
	endSessions func(ctx context.Context, userID string) error
}

// scsApp signs in with alexedwards/scs; its EndSessions is the README's.
func scsApp() app {
	sessionManager := scs.New()
	sessionManager.Store = memstore.NewWithCleanupInterval(0)
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sessionManager.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sessionManager.Put(r.Context(), "userID", r.URL.Query().Get("user"))
	})
	mux.HandleFunc("/me", func(w http.ResponseWriter, r *http.Request) {
		if sessionManager.GetString(r.Context(), "userID") == "" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	return app{
		handler: sessionManager.LoadAndSave(mux),
		// The README's recipe:
		endSessions: func(ctx context.Context, userID string) error {
			return sessionManager.Iterate(ctx, func(ctx context.Context) error {
				if sessionManager.GetString(ctx, "userID") != userID {
					return nil
				}
				return sessionManager.Destroy(ctx)
			})
		},
	}
}

// accounts keeps each user's session generation, as a users table would.
type accounts struct {
	mu  sync.Mutex
	gen map[string]int
}

func (a *accounts) NextSessionGeneration(_ context.Context, userID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen[userID]++
	return nil
}

func (a *accounts) SessionGeneration(_ context.Context, userID any) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, _ := userID.(string)
	return a.gen[id]
}

// gorillaApp signs in with gorilla/sessions' cookie store and a session
// generation per user; its EndSessions is the README's.
func gorillaApp() app {
	store := sessions.NewCookieStore([]byte("a 32-byte key for this test only"))
	accounts := &accounts{gen: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, _ := store.New(r, "session")
		id := r.URL.Query().Get("user")
		s.Values["userID"], s.Values["gen"] = id, accounts.SessionGeneration(r.Context(), id)
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/me", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		s, err := store.Get(r, "session")
		if err != nil || s.IsNew || s.Values["gen"] != accounts.SessionGeneration(ctx, s.Values["userID"]) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	return app{
		handler: mux,
		// The README's recipe:
		endSessions: func(ctx context.Context, userID string) error {
			return accounts.NextSessionGeneration(ctx, userID)
		},
	}
}

func TestRecipes(t *testing.T) {
	for name, newApp := range map[string]func() app{"scs": scsApp, "gorilla": gorillaApp} {
		t.Run(name, func(t *testing.T) {
			a := newApp()
			srv := httptest.NewServer(a.handler)
			defer srv.Close()
			users := &resettest.Users{}
			users.Add("u1", "u1@example.com", "old password")
			users.Add("u2", "u2@example.com", "old password")
			svc, err := reset.New(reset.Config{
				Store: resetmem.New(), Users: users, Mailer: &resettest.Mailer{},
				ResetURL:    "https://app.example.com/reset",
				EndSessions: a.endSessions,
				Logger:      slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Shutdown(context.Background())
			device := func(user string) func() int {
				jar, _ := cookiejar.New(nil)
				c := &http.Client{Jar: jar}
				get := func(path string) int {
					res, err := c.Get(srv.URL + path)
					if err != nil {
						t.Fatal(err)
					}
					res.Body.Close()
					return res.StatusCode
				}
				if code := get("/login?user=" + user); code != 200 {
					t.Fatalf("login: %d", code)
				}
				return func() int { return get("/me") }
			}
			complete := func(user string, keep bool) {
				iss, err := svc.RequestTrusted(t.Context(), reset.TrustedRequest{Email: user + "@example.com", SkipSend: true})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := svc.Complete(t.Context(), reset.Completion{Token: resettest.Token(iss.Link), Password: "violet harbour lantern 1", KeepSessions: keep}); err != nil {
					t.Fatal(err)
				}
			}
			phone, laptop, other := device("u1"), device("u1"), device("u2")
			complete("u1", true)
			if got := fmt.Sprint(phone(), laptop(), other()); got != "200 200 200" {
				t.Fatalf("after a reset that keeps sessions: %s, want all signed in", got)
			}
			complete("u1", false)
			if got := fmt.Sprint(phone(), laptop(), other()); got != "401 401 200" {
				t.Fatalf("after a reset: %s, want u1's devices signed out and u2's not", got)
			}
		})
	}
}
