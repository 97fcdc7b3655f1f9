package reset_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strconv"
	"testing"

	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// BenchmarkTokenPrimitive is the floor: 32 bytes from crypto/rand, SHA-256
// and base64url, which any reset flow must do.
func BenchmarkTokenPrimitive(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var buf [32]byte
		rand.Read(buf[:])
		h := sha256.Sum256(buf[:])
		_ = base64.RawURLEncoding.EncodeToString(buf[:])
		_ = h
	}
}

// discard is a Mailer that drops every message.
var discard = resettest.MailerFunc(func(context.Context, reset.Message) error { return nil })

func benchService(b *testing.B, users int) *reset.Service {
	u := &resettest.Users{}
	for i := range users {
		u.Add(strconv.Itoa(i), "user"+strconv.Itoa(i)+"@example.com", "x")
	}
	svc, err := reset.New(reset.Config{
		KeepSessions: true,
		Store:        memstore.New(), Users: u, Mailer: discard,
		ResetURL: "https://app.example.com/reset",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Shutdown(context.Background()) })
	return svc
}

func BenchmarkRequest(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, email string, r reset.TrustedRequest) {
		svc := benchService(b, 1)
		r.Email = email
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.RequestTrusted(ctx, r); err != nil && email != "nobody@example.com" {
				b.Fatal(err)
			}
		}
	}
	b.Run("skipsend", func(b *testing.B) { run(b, "user0@example.com", reset.TrustedRequest{SkipSend: true}) })
	b.Run("mail", func(b *testing.B) { run(b, "user0@example.com", reset.TrustedRequest{Wait: true}) })
	b.Run("unknown", func(b *testing.B) { run(b, "nobody@example.com", reset.TrustedRequest{SkipSend: true}) })
}

func BenchmarkComplete(b *testing.B) {
	ctx := context.Background()
	svc := benchService(b, 1)
	// Issuing the token is not part of what is measured.
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		iss, err := svc.RequestTrusted(ctx, reset.TrustedRequest{Email: "user0@example.com", SkipSend: true})
		if err != nil {
			b.Fatal(err)
		}
		tok := resettest.Token(iss.Link)
		b.StartTimer()
		if _, err := svc.Complete(ctx, reset.Completion{Token: tok, Password: "a long enough password"}); err != nil {
			b.Fatal(err)
		}
	}
}
