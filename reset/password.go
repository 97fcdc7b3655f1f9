package reset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Password lengths of [DefaultPasswordPolicy], in characters (Unicode
// code points).
const (
	// MinPassword is the shortest password accepted when a password is
	// the only factor (NIST SP 800-63B-4).
	MinPassword = 15
	// MinPasswordMultiFactor is the shortest password accepted when
	// [Config.MultiFactor] declares that passwords are used together with
	// a second factor.
	MinPasswordMultiFactor = 8
	// DefaultMaxPassword is the longest password accepted.
	DefaultMaxPassword = 1024
)

// minContextWord is the shortest context word (email local part, product
// name, host label) that a password may not contain: shorter ones would
// refuse too much ("a@b.c").
const minContextWord = 4

// Codes of a [PasswordError], saying which rule refused a password, so
// that an adapter can explain it in the person's language.
const (
	PasswordInvalidText = "invalid_text" // not valid UTF-8, or contains NUL
	PasswordTooShort    = "too_short"    // fewer characters than Limit
	PasswordTooLong     = "too_long"     // more characters than Limit
	PasswordCommon      = "common"       // on the list of common and breached passwords
	PasswordContext     = "context"      // contains the email, its local part, the product or the host
	PasswordBreached    = "breached"     // known to the BreachChecker
)

// PasswordCheck is what a password policy sees: the new password and the
// account it is for. [Service.CheckPassword] fills Product, Host and
// MultiFactor from the Config.
type PasswordCheck struct {
	Password string
	UserID   string // the account's ID; empty when unknown
	Email    string // the account's address; empty when unknown
	Product  string // the product name ([Config.Product])
	Host     string // the host of [Config.ResetURL]
	// MultiFactor is [Config.MultiFactor]: passwords are used together
	// with a second factor.
	MultiFactor bool
}

// BreachChecker tells whether a password is known from a data breach, for
// [Config.BreachedPasswords]. It must be safe for concurrent use. An
// error means it could not tell; [Service.CheckPassword] returns it, so
// that nothing changes (a checker that prefers to let passwords through
// when its source is down returns false and nil instead). Package hibp
// has one that asks the Have I Been Pwned range API.
type BreachChecker interface {
	Breached(ctx context.Context, password string) (bool, error)
}

// DefaultPasswordPolicy is the policy a [Config] without PasswordPolicy
// gets. It accepts a password of valid UTF-8 without NUL that
//
//   - has at least [MinPassword] characters ([MinPasswordMultiFactor] when
//     c.MultiFactor) and at most [DefaultMaxPassword], counted in Unicode
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
// It returns nil or a [*PasswordError] whose Code says which rule refused
// the password. A custom policy can call it and add rules of its own.
func DefaultPasswordPolicy(_ context.Context, c PasswordCheck) error {
	pw := c.Password
	if !utf8.ValidString(pw) {
		return &PasswordError{Code: PasswordInvalidText, Reason: "must be valid UTF-8 text"}
	}
	if strings.IndexByte(pw, 0) >= 0 {
		return &PasswordError{Code: PasswordInvalidText, Reason: "must not contain NUL characters"}
	}
	minLen := MinPassword
	if c.MultiFactor {
		minLen = MinPasswordMultiFactor
	}
	n := utf8.RuneCountInString(pw)
	if n < minLen {
		return &PasswordError{Code: PasswordTooShort, Limit: minLen, Reason: fmt.Sprintf("must be at least %d characters long", minLen)}
	}
	if n > DefaultMaxPassword {
		return &PasswordError{Code: PasswordTooLong, Limit: DefaultMaxPassword, Reason: fmt.Sprintf("must be at most %d characters long", DefaultMaxPassword)}
	}
	lower := strings.ToLower(pw)
	if isCommon(lower) {
		return &PasswordError{Code: PasswordCommon, Reason: "is too common: it is on a list of passwords that attackers try first"}
	}
	for _, w := range contextWords(c) {
		if strings.Contains(lower, w) {
			return &PasswordError{Code: PasswordContext, Reason: "must not contain your email address, your name in it, or the name of this service or site"}
		}
	}
	return nil
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
func contextWords(c PasswordCheck) []string {
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

// The list of common and breached passwords: see passwordlist/SOURCE.md.
//
//go:embed passwordlist/common.txt.gz
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
		panic("reset: embedded password list: " + err.Error())
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
