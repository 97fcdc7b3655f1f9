package httpadapter_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/logmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// mountReset serves password resets under /auth of mux, with the
// application's back end as the trusted caller; endSessions ends every
// session of a user whose password was reset. Call svc.Shutdown when the
// server stops.
func mountReset(mux *http.ServeMux, users reset.Users, mailer reset.Mailer, endSessions func(ctx context.Context, userID string) error, clientID, clientSecret string) (*reset.Service, error) {
	auth, err := httpadapter.BasicAuth(clientID, clientSecret)
	if err != nil {
		return nil, err // says which of the two is empty
	}
	svc, err := reset.New(reset.Config{
		Store:        memstore.New(), // one process; see "Backends" for a database
		Users:        users,          // your accounts: LookupEmail and SetPassword (hash with package passhash)
		Mailer:       mailer,
		EndSessions:  endSessions, // your session store; see "Sessions"
		ResetURL:     "https://app.example.com/auth" + httpadapter.PagePath,
		AllowedLinks: []string{"https://app.example.com/"},
	})
	if err != nil {
		return nil, err
	}
	h, err := httpadapter.New(svc, httpadapter.Options{Authorize: auth})
	if err != nil {
		svc.Shutdown(context.Background())
		return nil, err
	}
	mux.Handle("/auth/", http.StripPrefix("/auth", h))
	return svc, nil
}

// Mount the handler in an existing application: the README's "Mount it"
// snippet, run. Empty credentials (an unset environment) are an error
// that says what is missing.
func Example_mount() {
	users := &resettest.Users{}
	users.Add("u1", "jborder@example.com", "old password")
	mailer := logmailer.New(io.Discard)
	mux := http.NewServeMux()

	_, err := mountReset(mux, users, mailer, users.EndSessions, "", "")
	fmt.Println(err)

	svc, err := mountReset(mux, users, mailer, users.EndSessions, "my-backend", "a long random secret")
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Shutdown(context.Background())
	r := httptest.NewRequest("POST", "/auth/users/password-lost", strings.NewReader(`{"email": "jborder@example.com"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body)
	// Output:
	// httpadapter: BasicAuth: the client ID is empty and the secret is empty
	// 202 {"message":"If an account uses this email address, a link to reset its password is on its way."}
}
