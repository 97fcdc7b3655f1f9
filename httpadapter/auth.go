package httpadapter

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrUnauthorized is what an [Authorizer] returns, possibly wrapped, when a
// request carries credentials that are wrong. The handler answers 401 with
// a WWW-Authenticate header; it never treats such a request as public.
// Checked with [errors.Is].
var ErrUnauthorized = errors.New("httpadapter: unauthorized")

// Authorizer decides whether a request comes from a trusted caller (the
// application's own back end). It returns:
//
//   - true, nil: a trusted caller, with PingOne's behaviour: the response
//     to password-lost carries the link, an unknown email gets 404, and
//     skipSend "enabled" is allowed;
//   - false, nil: the public (the request has no credentials at all);
//   - an error wrapping [ErrUnauthorized]: credentials are present but
//     wrong, answered with 401;
//   - any other error: the authorizer could not decide (its back end
//     failed), answered with 503 and logged.
//
// It must be safe for concurrent use.
type Authorizer func(r *http.Request) (trusted bool, err error)

// BasicAuth returns an [Authorizer] that trusts HTTP Basic credentials
// with the given client ID and secret, as PingOne's directory API does
// with client credentials. A request without an Authorization header is
// public; a request with any other Authorization header (wrong ID or
// secret, another scheme, malformed) is refused with [ErrUnauthorized].
//
// Both sides are hashed with SHA-256 before a constant-time comparison,
// so neither the content nor the length of the secret leaks through
// timing. BasicAuth reports an empty client ID or secret, and a client
// ID with a colon (which HTTP Basic cannot carry).
func BasicAuth(clientID, secret string) (Authorizer, error) {
	var problems []string
	if clientID == "" {
		problems = append(problems, "the client ID is empty")
	}
	if secret == "" {
		problems = append(problems, "the secret is empty")
	}
	if strings.Contains(clientID, ":") {
		problems = append(problems, "the client ID contains a colon")
	}
	if len(problems) > 0 {
		return nil, errors.New("httpadapter: BasicAuth: " + strings.Join(problems, " and "))
	}
	wantID, wantSecret := sha256.Sum256([]byte(clientID)), sha256.Sum256([]byte(secret))
	return func(r *http.Request) (bool, error) {
		if len(r.Header.Values("Authorization")) == 0 {
			return false, nil
		}
		id, sec, ok := r.BasicAuth()
		if !ok {
			return false, fmt.Errorf("%w: not HTTP Basic credentials", ErrUnauthorized)
		}
		gotID, gotSecret := sha256.Sum256([]byte(id)), sha256.Sum256([]byte(sec))
		idOK := subtle.ConstantTimeCompare(gotID[:], wantID[:])
		secretOK := subtle.ConstantTimeCompare(gotSecret[:], wantSecret[:])
		if idOK&secretOK != 1 {
			return false, fmt.Errorf("%w: wrong client ID or secret", ErrUnauthorized)
		}
		return true, nil
	}, nil
}
