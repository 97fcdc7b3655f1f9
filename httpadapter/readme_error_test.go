package httpadapter_test

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/passreset/passreset/httpadapter"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// TestREADMEErrorExample checks that the error body the README quotes is
// the one the handler really sends for a boolean skipSend.
func TestREADMEErrorExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, "Errors follow PingOne's platform style")
	j := strings.Index(text[i:], "```json\n")
	k := strings.Index(text[i+j+8:], "```")
	if i < 0 || j < 0 || k < 0 {
		t.Fatal("the README's error example is missing")
	}
	quoted := text[i+j+8 : i+j+8+k]
	var doc struct {
		Details []struct{ Code, Target, Message string }
	}
	// The README elides the id and message with "…": read only details.
	start := strings.Index(quoted, `"details"`)
	if err := json.Unmarshal([]byte("{"+quoted[start:]), &doc); err != nil || len(doc.Details) != 1 {
		t.Fatalf("README error example: %v\n%s", err, quoted)
	}
	svc, err := reset.New(reset.Config{KeepSessions: true, Store: memstore.New(), Users: &resettest.Users{}, Mailer: &resettest.Mailer{},
		ResetURL: "https://app.example.com/reset", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(t.Context())
	h, err := httpadapter.New(svc, httpadapter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", httpadapter.PasswordLostPath, strings.NewReader(`{"email": "jborder@anywhere.com", "skipSend": true}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var got struct {
		Details []struct{ Code, Target, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Details) != 1 || got.Details[0] != doc.Details[0] {
		t.Fatalf("the README quotes %+v, the handler sends:\n%s", doc.Details, rec.Body)
	}
}
