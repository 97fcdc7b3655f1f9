// Package password screens the new passwords of a reset: the default
// policy ([DefaultPolicy], with its embedded list of common passwords:
// see list/SOURCE.md), the error a policy returns ([*Error], with a code
// such as [Common]) and a breached-password source ([BreachChecker]).
package password

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Password lengths of [DefaultPolicy], in characters (Unicode code
// points).
const (
	// Min is the shortest password accepted when a password is the only
	// factor (NIST SP 800-63B-4).
	Min = 15
	// MinMultiFactor is the shortest password accepted when
	// [Check.MultiFactor] says that passwords are used together with a
	// second factor (reset.Config.MultiFactor).
	MinMultiFactor = 8
	// Max is the longest password accepted.
	Max = 1024
)

// minContextWord is the shortest context word (email local part, product
// name, host label) that a password may not contain: shorter ones would
// refuse too much ("a@b.c").
const minContextWord = 4

// Codes of an [Error], saying which rule refused a password, so that an
// adapter can explain it in the person's language.
const (
	InvalidText = "invalid_text" // not valid UTF-8, or contains NUL
	TooShort    = "too_short"    // fewer characters than Limit
	TooLong     = "too_long"     // more characters than Limit
	Common      = "common"       // on the list of common and breached passwords
	Context     = "context"      // contains the email, its local part, the product or the host
	Breached    = "breached"     // known to the BreachChecker
)

// ErrRejected is the sentinel behind every [*Error]. It is checked with
// [errors.Is].
var ErrRejected = errors.New("reset: password rejected")

// Error reports that a new password does not meet the policy. Reason is
// safe to show to the person choosing the password; Code, when set, is
// one of the codes above (such as [Common]) so that an adapter can say
// it in the person's language, and Limit is the length limit a
// [TooShort] or [TooLong] refers to.
type Error struct {
	Reason string
	Code   string
	Limit  int
}

// Error returns "reset: password rejected: <reason>".
func (e *Error) Error() string { return "reset: password rejected: " + e.Reason }

// Unwrap returns ErrRejected, so that errors.Is finds it.
func (e *Error) Unwrap() error { return ErrRejected }

// Check is what a password policy sees: the new password and the
// account it is for. reset.Service.CheckPassword fills Product, Host
// and MultiFactor from the Config.
type Check struct {
	Password string
	UserID   string // the account's ID; empty when unknown
	Email    string // the account's address; empty when unknown
	Product  string // the product name (reset.Config.Product)
	Host     string // the host of reset.Config.ResetURL
	// MultiFactor is reset.Config.MultiFactor: passwords are used
	// together with a second factor.
	MultiFactor bool
}

// BreachChecker tells whether a password is known from a data breach, for
// reset.Config.BreachedPasswords. It must be safe for concurrent use.
// An error means it could not tell; reset.Service.CheckPassword
// returns it, so
// that nothing changes (a checker that prefers to let passwords through
// when its source is down returns false and nil instead). Package hibp
// has one that asks the Have I Been Pwned range API.
type BreachChecker interface {
	Breached(ctx context.Context, password string) (bool, error)
}

// DefaultPolicy is the policy a reset.Config without PasswordPolicy
// gets. It accepts a password of valid UTF-8 without NUL that
//
//   - has at least [Min] characters ([MinMultiFactor] when c.MultiFactor)
//     and at most [Max], counted in Unicode
//     code points: a letter written with a combining accent counts two,
//     and any script is allowed;
//   - is not on the embedded list of over 140,000 common and breached
//     passwords (compared case-insensitively, also once leading and
//     trailing digits, spaces and punctuation are removed, so that
//     "Password1234567" is refused);
//   - does not contain, case-insensitively, a context word of at least 4
//     characters: c.Email, its local part and the parts of the local part
//     between punctuation, c.Product and its words, c.Host and its labels.
//
// It returns nil or an [*Error] whose Code says which rule refused
// the password. A custom policy can call it and add rules of its own.
func DefaultPolicy(_ context.Context, c Check) error {
	pw := c.Password
	if !utf8.ValidString(pw) {
		return &Error{Code: InvalidText, Reason: "must be valid UTF-8 text"}
	}
	if strings.IndexByte(pw, 0) >= 0 {
		return &Error{Code: InvalidText, Reason: "must not contain NUL characters"}
	}
	minLen := Min
	if c.MultiFactor {
		minLen = MinMultiFactor
	}
	n := utf8.RuneCountInString(pw)
	if n < minLen {
		return &Error{Code: TooShort, Limit: minLen, Reason: fmt.Sprintf("must be at least %d characters long", minLen)}
	}
	if n > Max {
		return &Error{Code: TooLong, Limit: Max, Reason: fmt.Sprintf("must be at most %d characters long", Max)}
	}
	lower := strings.ToLower(pw)
	if isCommon(lower) {
		return &Error{Code: Common, Reason: "is too common: it is on a list of passwords that attackers try first"}
	}
	for _, w := range contextWords(c) {
		if strings.Contains(lower, w) {
			return &Error{Code: Context, Reason: "must not contain your email address, your name in it, or the name of this service or site"}
		}
	}
	return nil
}

// MinLength returns the length, in characters, of the shortest of a
// series of random-looking passwords that policy accepts for c's account
// (c.Password is ignored), or 0 if it accepts none up to 128 characters:
// a form's hint for a policy whose minimum is not known.
func MinLength(policy func(context.Context, Check) error, c Check) int {
	const sample = "Tq7#mZ2$vL9&kR4!wX5%bN8*cH3@pJ6?"
	for n := 1; n <= 128; n++ {
		c.Password = strings.Repeat(sample, n/len(sample)+1)[:n]
		if policy(context.Background(), c) == nil {
			return n
		}
	}
	return 0
}

// isCommon reports whether the lower-cased password is on the list, as
// it is or without its leading and trailing non-letters.
func isCommon(lower string) bool {
	l := commonPasswords()
	if l.has(lower) {
		return true
	}
	base := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	return base != lower && utf8.RuneCountInString(base) >= minContextWord && l.has(base)
}

// contextWords returns the lower-cased words of c that a password may not
// contain.
func contextWords(c Check) []string {
	var words []string
	add := func(w string) {
		w = strings.ToLower(w)
		if utf8.RuneCountInString(w) >= minContextWord {
			words = append(words, w)
		}
	}
	split := func(s string, sep func(rune) bool) {
		for _, f := range strings.FieldsFunc(s, sep) {
			add(f)
		}
	}
	notAlnum := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
	if c.Email != "" {
		add(c.Email)
		local := c.Email
		if i := strings.LastIndexByte(local, '@'); i >= 0 {
			local = local[:i]
		}
		add(local)
		split(local, notAlnum)
	}
	add(c.Product)
	split(c.Product, notAlnum)
	add(c.Host)
	split(c.Host, func(r rune) bool { return r == '.' })
	return words
}

// The list of common and breached passwords: see list/SOURCE.md.
//
//go:embed list/common.txt.gz
var commonGz []byte

// wordList is a sorted list of words held as one string and the offsets
// of their starts, searched by binary search.
type wordList struct {
	blob string
	offs []uint32 // start of each word; words end with '\n'
}

// commonPasswords unpacks the embedded list at first use.
var commonPasswords = sync.OnceValue(func() *wordList {
	l, err := loadWordList(commonGz)
	if err != nil {
		panic("password: embedded list: " + err.Error())
	}
	return l
})

// loadWordList unpacks a gzipped, sorted list of lines.
func loadWordList(gz []byte) (*wordList, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(bufio.NewReader(zr))
	if err != nil {
		return nil, err
	}
	l := &wordList{blob: string(raw), offs: make([]uint32, 0, bytes.Count(raw, []byte{'\n'}))}
	prev := ""
	for off := 0; off < len(l.blob); {
		end := strings.IndexByte(l.blob[off:], '\n')
		if end < 0 {
			return nil, fmt.Errorf("last line at %d lacks a newline", off)
		}
		w := l.blob[off : off+end]
		if w <= prev && len(l.offs) > 0 {
			return nil, fmt.Errorf("not sorted at %q", w)
		}
		l.offs = append(l.offs, uint32(off))
		prev, off = w, off+end+1
	}
	return l, nil
}

// word returns the i-th word.
func (l *wordList) word(i int) string {
	s := l.blob[l.offs[i]:]
	return s[:strings.IndexByte(s, '\n')]
}

// has reports whether w is on the list.
func (l *wordList) has(w string) bool {
	i := sort.Search(len(l.offs), func(i int) bool { return l.word(i) >= w })
	return i < len(l.offs) && l.word(i) == w
}

// len returns the number of words.
func (l *wordList) len() int { return len(l.offs) }
