package outbox_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/passreset/passreset/mailer/logmailer"
	"github.com/passreset/passreset/reset"
	"github.com/passreset/passreset/reset/outbox"
	"github.com/passreset/passreset/reset/resettest"
	"github.com/passreset/passreset/store/memstore"
)

// The README's setup: an outbox over the store, set as the Service's
// Queue, and run (here drained once).
func Example() {
	key32 := bytes.Repeat([]byte{7}, 32) // in production: 32 random bytes from a secret store
	store := memstore.New()
	users := &resettest.Users{}
	users.Add("42", "jborder@anywhere.com", "old password")
	var mail strings.Builder

	ob, err := outbox.New(store, outbox.Options{Keys: []outbox.SealKey{{ID: "2026-11", Key: key32}}})
	if err != nil {
		panic(err)
	}
	svc, err := reset.New(reset.Config{KeepSessions: true, Store: store, Users: users, Mailer: logmailer.New(&mail), Queue: ob,
		ResetURL: "https://app.example.com/reset", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	fmt.Println(svc.Request(ctx, "jborder@anywhere.com", ""))
	fmt.Println(svc.Request(ctx, "nobody@anywhere.com", ""))
	n, err := ob.Drain(ctx) // in production: go ob.Run(ctx)
	fmt.Println(n, err, strings.Count(mail.String(), "To: jborder@anywhere.com"))
	r, _ := ob.Report(ctx)
	fmt.Println(r.Pending, r.Dead)
	// Output:
	// <nil>
	// <nil>
	// 2 <nil> 1
	// 0 0
}
