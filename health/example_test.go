package health_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/passreset/passreset/health"
)

// A readiness probe with one check that passes and one that fails.
func ExampleReady() {
	h := health.Ready(health.Options{Checks: []health.Check{
		{Name: "store", Run: func(context.Context) error { return nil }},
		{Name: "mailer", Run: func(context.Context) error { return errors.New("connection refused") }},
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// 503
	// {"status":"fail","checks":[{"name":"store","ok":true},{"name":"mailer","ok":false,"error":"connection refused"}]}
}
