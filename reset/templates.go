package reset

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
)

// Templates renders the two emails. Each field left nil or empty falls back
// to the built-in default. Templates receive a [MailData].
type Templates struct {
	ResetSubject string                 // default "Reset your {{Product}} password"
	ResetText    *texttemplate.Template // plain-text body of the reset email
	ResetHTML    *htmltemplate.Template // HTML body of the reset email

	ChangedSubject string                 // default "Your {{Product}} password was changed"
	ChangedText    *texttemplate.Template // plain-text body of the notice
	ChangedHTML    *htmltemplate.Template // HTML body of the notice
}

// MailData is what the email templates receive.
type MailData struct {
	Product   string    // Config.Product
	Email     string    // the recipient
	Link      string    // the reset link (reset email only)
	ExpiresAt time.Time // when the link stops working (reset email only)
	ExpiresIn string    // the link's lifetime in words, such as "1 hour"
	Time      time.Time // when the email was made
	Locale    string    // the account's language (User.Locale), or ""
}

var (
	defaultResetText = texttemplate.Must(texttemplate.New("reset.txt").Parse(`Hello,

Someone asked to reset the password of the {{.Product}} account for {{.Email}}.
To choose a new password, open this link within {{.ExpiresIn}}:

{{.Link}}

The link works once. If you did not ask for this, ignore this email: your
password stays as it is.
`))
	defaultResetHTML = htmltemplate.Must(htmltemplate.New("reset.html").Parse(`<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5">
<p>Hello,</p>
<p>Someone asked to reset the password of the {{.Product}} account for {{.Email}}.
To choose a new password, open this link within {{.ExpiresIn}}:</p>
<p><a href="{{.Link}}">Choose a new password</a></p>
<p>The link works once. If you did not ask for this, ignore this email: your password stays as it is.</p>
</body></html>
`))
	defaultChangedText = texttemplate.Must(texttemplate.New("changed.txt").Parse(`Hello,

The password of the {{.Product}} account for {{.Email}} was changed on
{{.Time.Format "2006-01-02 15:04 MST"}}.

If you did this, you need do nothing. If you did not, reset your password
at once and contact support: someone else may have access to your email.
`))
	defaultChangedHTML = htmltemplate.Must(htmltemplate.New("changed.html").Parse(`<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5">
<p>Hello,</p>
<p>The password of the {{.Product}} account for {{.Email}} was changed on
{{.Time.Format "2006-01-02 15:04 MST"}}.</p>
<p>If you did this, you need do nothing. If you did not, reset your password at once and contact support: someone else may have access to your email.</p>
</body></html>
`))
)

// renderer holds the templates in force.
type renderer struct {
	fast                     *skeleton // the reset email pre-rendered, or nil
	product                  string
	resetSubject, chgSubject string
	resetText, chgText       *texttemplate.Template
	resetHTML, chgHTML       *htmltemplate.Template
}

func newRenderer(product, expiresIn string, t *Templates) (*renderer, error) {
	if t == nil {
		t = &Templates{}
	}
	r := &renderer{
		product:      product,
		resetSubject: or(t.ResetSubject, "Reset your {{Product}} password"),
		chgSubject:   or(t.ChangedSubject, "Your {{Product}} password was changed"),
		resetText:    orT(t.ResetText, defaultResetText),
		chgText:      orT(t.ChangedText, defaultChangedText),
		resetHTML:    orT(t.ResetHTML, defaultResetHTML),
		chgHTML:      orT(t.ChangedHTML, defaultChangedHTML),
	}
	r.resetSubject = strings.ReplaceAll(r.resetSubject, "{{Product}}", product)
	r.chgSubject = strings.ReplaceAll(r.chgSubject, "{{Product}}", product)
	for _, s := range []string{r.resetSubject, r.chgSubject} {
		if strings.ContainsAny(s, "\r\n") {
			return nil, fmt.Errorf("reset: email subject %q contains a line break", s)
		}
	}
	if t.ResetText == nil && t.ResetHTML == nil {
		r.fast = newSkeleton(r, product, expiresIn)
	}
	return r, nil
}

// A skeleton is the default reset email rendered once per Service with
// placeholders for the address and the link, the only parts that change
// between requests. Filling it in costs a few string copies instead of a
// template execution with reflection and contextual escaping, which is
// most of the cost of a request. It is used only for addresses and links
// made of characters that no escaper changes (and '&', which the HTML
// attribute escaper turns into "&amp;"); anything else takes the template.
// The default reset templates use no other per-request field.
type skeleton struct {
	text, html []string // pieces between placeholders
	textKeys   []byte   // which value goes after each piece: 'e' or 'l'
	htmlKeys   []byte
}

const (
	emailMark = "PassresetEmailPlaceholder"
	linkMark  = "PassresetLinkPlaceholder"
)

func newSkeleton(r *renderer, product, expiresIn string) *skeleton {
	d := MailData{Product: product, ExpiresIn: expiresIn, Email: emailMark, Link: linkMark}
	var tb, hb bytes.Buffer
	if r.resetText.Execute(&tb, d) != nil || r.resetHTML.Execute(&hb, d) != nil {
		return nil
	}
	sk := &skeleton{}
	sk.text, sk.textKeys = split(tb.String())
	sk.html, sk.htmlKeys = split(hb.String())
	// Check the skeleton against the templates on a sample with every
	// character it lets through; on any difference, do without it.
	sample := MailData{Product: product, ExpiresIn: expiresIn,
		Email: "a.Z-0_9@x-y.example", Link: "https://h.example:8/p/a-b_c~d.e/?q=1&r=%2F;s,t=u:v@w!x$y*z0&token=AbC-_9"}
	_, t1, h1, err1 := r.slowReset(sample)
	t2, h2, ok := sk.fill(sample)
	if err1 != nil || !ok || t1 != t2 || h1 != h2 {
		return nil
	}
	return sk
}

// split cuts s at the placeholders.
func split(s string) (pieces []string, keys []byte) {
	for {
		ie, il := strings.Index(s, emailMark), strings.Index(s, linkMark)
		switch {
		case ie < 0 && il < 0:
			return append(pieces, s), keys
		case il < 0 || (ie >= 0 && ie < il):
			pieces, keys, s = append(pieces, s[:ie]), append(keys, 'e'), s[ie+len(emailMark):]
		default:
			pieces, keys, s = append(pieces, s[:il]), append(keys, 'l'), s[il+len(linkMark):]
		}
	}
}

// fill renders the reset email from the skeleton, or reports false when
// the values need the templates.
func (sk *skeleton) fill(d MailData) (text, html string, ok bool) {
	// html/template lets only http, https and mailto URLs through.
	web := strings.HasPrefix(d.Link, "https://") || strings.HasPrefix(d.Link, "http://")
	if !web || !plain(d.Email, "") || !plain(d.Link, "/:?=&%;,@!$*") {
		return "", "", false
	}
	htmlLink := strings.ReplaceAll(d.Link, "&", "&amp;")
	return sk.join(sk.text, sk.textKeys, d.Email, d.Link), sk.join(sk.html, sk.htmlKeys, d.Email, htmlLink), true
}

func (sk *skeleton) join(pieces []string, keys []byte, email, link string) string {
	n := 0
	for _, p := range pieces {
		n += len(p)
	}
	var b strings.Builder
	b.Grow(n + len(keys)*max(len(email), len(link)))
	for i, p := range pieces {
		b.WriteString(p)
		if i < len(keys) {
			if keys[i] == 'e' {
				b.WriteString(email)
			} else {
				b.WriteString(link)
			}
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// plain reports whether s has only letters, digits, "._-~@" and the bytes
// in extra.
func plain(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-~@", c) >= 0 {
			continue
		}
		if strings.IndexByte(extra, c) < 0 {
			return false
		}
		// The URL normaliser escapes a '%' that does not start an escape.
		if c == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return false
		}
	}
	return true
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orT[T *texttemplate.Template | *htmltemplate.Template](a, b T) T {
	if a != nil {
		return a
	}
	return b
}

func (r *renderer) render(kind string, d MailData) (subject, text, html string, err error) {
	if kind == KindReset {
		if r.fast != nil {
			if text, html, ok := r.fast.fill(d); ok {
				return r.resetSubject, text, html, nil
			}
		}
		return r.slowReset(d)
	}
	var tb, hb bytes.Buffer
	subject = r.chgSubject
	if err = r.chgText.Execute(&tb, d); err == nil {
		err = r.chgHTML.Execute(&hb, d)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("reset: rendering %s email: %w", kind, err)
	}
	return subject, tb.String(), hb.String(), nil
}

// slowReset renders the reset email with the templates.
func (r *renderer) slowReset(d MailData) (subject, text, html string, err error) {
	var tb, hb bytes.Buffer
	if err = r.resetText.Execute(&tb, d); err == nil {
		err = r.resetHTML.Execute(&hb, d)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("reset: rendering %s email: %w", KindReset, err)
	}
	return r.resetSubject, tb.String(), hb.String(), nil
}

// humanDuration renders d in words: "1 hour", "30 minutes", "2 hours 30 minutes".
func humanDuration(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h > 0 && m > 0:
		return plural(h, "hour") + " " + plural(m, "minute")
	case h > 0:
		return plural(h, "hour")
	default:
		return plural(max(m, 1), "minute")
	}
}
