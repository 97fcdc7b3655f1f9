package httpadapter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/mailer/logmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// newService wires a Service for the examples: the hosted page is mounted
// under /auth of https://app.example.com.
func newService(users reset.Users) *reset.Service {
	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        memstore.New(),
		Users:        users,
		Mailer:       logmailer.New(io.Discard),
		ResetURL:     "https://app.example.com/auth" + httpadapter.PagePath,
		AllowedLinks: []string{"https://anywhere.com/"},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	return svc
}

// Mount the handler under a prefix of an existing mux, with the
// application's back end as the trusted caller.
func ExampleNew() {
	users := &resettest.Users{}
	users.Add("u1", "jborder@anywhere.com", "old password")
	svc := newService(users)
	defer svc.Shutdown(context.Background())

	auth, err := httpadapter.BasicAuth("my-backend", "a long random secret")
	if err != nil {
		log.Fatal(err)
	}
	h, err := httpadapter.New(svc, httpadapter.Options{Authorize: auth})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", http.StripPrefix("/auth", h))

	// A public "forgot password" form: the answer is the same for every address.
	body := `{"email": "jborder@anywhere.com"}`
	r := httptest.NewRequest("POST", "/auth/users/password-lost", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body)

	// The trusted back end gets the link (here without email).
	body = `{"email": "jborder@anywhere.com", "link": "https://anywhere.com/reset", "skipSend": "enabled"}`
	r = httptest.NewRequest("POST", "/auth/users/password-lost", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth("my-backend", "a long random secret")
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, strings.HasPrefix(w.Body.String(), `{"link":"https://anywhere.com/reset?token=`))
	// Output:
	// 202 {"message":"If an account uses this email address, a link to reset its password is on its way."}
	// 200 true
}

// Errors name the field at fault, here the seed example's missing comma.
func ExampleErrorResponse() {
	users := &resettest.Users{}
	svc := newService(users)
	defer svc.Shutdown(context.Background())
	h, err := httpadapter.New(svc, httpadapter.Options{})
	if err != nil {
		log.Fatal(err)
	}
	body := "{\n  \"email\": \"jborder@anywhere.com\",\n  \"link\": \"https://anywhere.com/reset\"\n  \"skipSend\": \"disabled\"\n}"
	r := httptest.NewRequest("POST", httpadapter.PasswordLostPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var e httpadapter.ErrorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.Code, e.Code)
	fmt.Println(e.Details[0].Code, e.Details[0].Target)
	fmt.Println(e.Details[0].Message)
	// Output:
	// 400 INVALID_DATA
	// INVALID_JSON body
	// The request body is not valid JSON: invalid character '"' after object key:value pair at byte offset 78 (line 4, column 3).
}

// Complete a reset from a single-page app: check the token, then set the
// password. No credentials are needed: the token is the credential.
func ExampleHandler_singlePageApp() {
	users := &resettest.Users{}
	users.Add("u1", "jborder@anywhere.com", "old password")
	svc := newService(users)
	defer svc.Shutdown(context.Background())
	h, err := httpadapter.New(svc, httpadapter.Options{})
	if err != nil {
		log.Fatal(err)
	}
	iss, err := svc.RequestTrusted(context.Background(), reset.TrustedRequest{Email: "jborder@anywhere.com", SkipSend: true})
	if err != nil {
		log.Fatal(err)
	}
	token := resettest.Token(iss.Link)

	post := func(path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := post(httpadapter.CheckPath, `{"confirmationToken": "`+token+`"}`)
	fmt.Println(w.Code, strings.HasPrefix(w.Body.String(), `{"valid":true,"expiresAt":`))
	w = post(httpadapter.PasswordResetPath, `{"confirmationToken": "`+token+`", "newPassword": "correct horse battery staple"}`)
	fmt.Print(w.Code, " ", w.Body)
	w = post(httpadapter.PasswordResetPath, `{"confirmationToken": "`+token+`", "newPassword": "correct horse battery staple"}`)
	fmt.Println(w.Code, strings.Contains(w.Body.String(), `"code":"INVALID_TOKEN"`))
	fmt.Println(users.Password("u1"))
	// Output:
	// 200 true
	// 200 {"message":"The password has been changed."}
	// 400 true
	// correct horse battery staple
}

// Behind reverse proxies, key the rate limit on the client address they
// forward. Only the proxies' own header is read, and only from them.
func ExampleTrustedProxies() {
	clientKey, err := httpadapter.TrustedProxies("X-Forwarded-For", "10.0.0.0/8")
	if err != nil {
		log.Fatal(err)
	}
	svc := newService(&resettest.Users{})
	defer svc.Shutdown(context.Background())
	h, err := httpadapter.New(svc, httpadapter.Options{ClientKey: clientKey})
	if err != nil {
		log.Fatal(err)
	}
	_ = h

	r := httptest.NewRequest("POST", httpadapter.PasswordLostPath, nil)
	r.RemoteAddr = "10.0.0.5:41000"                          // the proxy
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.7") // a forged entry, then what the proxy saw
	fmt.Println(clientKey(r))
	r.RemoteAddr = "203.0.113.9:5000" // not a proxy: its header is ignored
	fmt.Println(clientKey(r))
	// Output:
	// 198.51.100.7
	// 203.0.113.9
}
