package httpadapter

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// A ResetURL that the mounted handler does not serve (every emailed link
// would be a 404) is reported at the first request, naming both paths;
// a matching mount, and a ResetURL to a page of the application's own,
// are not.
func TestResetURLMismatchWarned(t *testing.T) {
	for _, c := range []struct {
		name, resetURL, mount string
		warn                  bool
	}{
		{"matches", "https://app.example.com/auth/reset", "/auth", false},
		{"matches at the root", "https://app.example.com/reset", "", false},
		{"other mount", "https://app.example.com/auth/reset", "/api/directory", true},
		{"root link, mounted under a prefix", "https://app.example.com/reset", "/auth", true},
		{"the application's own page", "https://app.example.com/account/new-password", "/auth", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs syncBuffer
			svc, err := reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: &resettest.Users{}, Mailer: &resettest.Mailer{},
				ResetURL: c.resetURL, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Shutdown(t.Context())
			h, err := New(svc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			if c.mount == "" {
				mux.Handle("/", h)
			} else {
				mux.Handle(c.mount+"/", http.StripPrefix(c.mount, h))
			}
			for range 3 {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest("GET", c.mount+PagePath, nil))
				if rec.Code == http.StatusNotFound {
					t.Fatalf("GET %s: 404", c.mount+PagePath)
				}
			}
			out := logs.String()
			warned := strings.Count(out, "the emailed reset links do not reach the hosted reset page")
			switch {
			case c.warn && (warned != 1 || !strings.Contains(out, "page_path="+c.mount+PagePath) ||
				!strings.Contains(out, "reset_url_path="+strings.TrimPrefix(c.resetURL, "https://app.example.com"))):
				t.Fatalf("want one warning naming both paths, got:\n%s", out)
			case !c.warn && warned != 0:
				t.Fatalf("want no warning, got:\n%s", out)
			}
		})
	}
}
