// Package hibp checks passwords against Have I Been Pwned's Pwned
// Passwords range API with k-anonymity: only the first 5 hexadecimal
// characters of the password's SHA-1 leave the process, and the answer
// (every breached suffix under that prefix, padded with decoys by the
// Add-Padding header) is searched locally. A [*Checker] is a
// [password.BreachChecker] for [reset.Config.BreachedPasswords].
//
// [password.BreachChecker]: https://pkg.go.dev/github.com/passreset/passreset/reset/password#BreachChecker
// [reset.Config.BreachedPasswords]: https://pkg.go.dev/github.com/passreset/passreset/reset#Config
package hibp

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/passreset/passreset/reset/password"
)

// DefaultURL is the range API's base; the prefix is appended.
const DefaultURL = "https://api.pwnedpasswords.com/range/"

// DefaultTimeout bounds one question to the API unless
// [Checker.Timeout] says otherwise.
const DefaultTimeout = 2 * time.Second

// maxBody bounds the answer read (a padded answer is about 30 KB).
const maxBody = 1 << 20

// Checker asks the range API whether a password has been breached. The
// zero value is ready to use: it asks DefaultURL with http.DefaultClient,
// waits at most DefaultTimeout and fails closed. It is safe for
// concurrent use.
type Checker struct {
	// URL is the range API's base, to which the 5-character prefix is
	// appended. Default [DefaultURL].
	URL string
	// Client sends the requests. Default http.DefaultClient.
	Client *http.Client
	// Timeout bounds one question. Default [DefaultTimeout].
	Timeout time.Duration
	// MinCount is how many breaches make a password refused. Default 1.
	MinCount int
	// FailOpen, when true, makes a failed question (timeout, network,
	// unexpected answer) report the password as not breached, so that
	// resets keep working while the API is unreachable; the failure goes
	// to OnError. Default false: Breached returns the error and
	// [reset.Service.Complete] changes nothing.
	FailOpen bool
	// OnError, when set, is told of every failed question, fail-open or
	// not.
	OnError func(error)
}

var _ password.BreachChecker = (*Checker)(nil)

// ErrUnavailable reports that the API could not be asked or answered
// unexpectedly. Checked with errors.Is; may be wrapped.
var ErrUnavailable = errors.New("hibp: range API unavailable")

// Breached reports whether password appears in the API's breaches at
// least MinCount times. It sends "GET <URL><prefix>" with the header
// "Add-Padding: true", where prefix is the first 5 upper-case hex
// characters of the password's SHA-1.
func (c *Checker) Breached(ctx context.Context, password string) (bool, error) {
	sum := sha1.Sum([]byte(password))
	digest := strings.ToUpper(hex.EncodeToString(sum[:]))
	count, err := c.count(ctx, digest[:5], digest[5:])
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		if c.OnError != nil {
			c.OnError(err)
		}
		if c.FailOpen {
			return false, nil
		}
		return false, err
	}
	minCount := c.MinCount
	if minCount <= 0 {
		minCount = 1
	}
	return count >= minCount, nil
}

// count asks for prefix and returns the count of suffix in the answer
// (0 when absent; padding lines have count 0).
func (c *Checker) count(ctx context.Context, prefix, suffix string) (int, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base := c.URL
	if base == "" {
		base = DefaultURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+prefix, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Add-Padding", "true")
	req.Header.Set("User-Agent", "passreset-hibp")
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s", resp.Status)
	}
	found := 0
	lines := 0
	sc := bufio.NewScanner(io.LimitReader(resp.Body, maxBody))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		s, n, ok := strings.Cut(line, ":")
		cnt, err := strconv.Atoi(n)
		if !ok || len(s) != 35 || err != nil || cnt < 0 {
			return 0, fmt.Errorf("malformed answer line %q", line)
		}
		lines++
		if strings.EqualFold(s, suffix) {
			found = cnt
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if lines == 0 {
		return 0, errors.New("empty answer")
	}
	return found, nil
}
