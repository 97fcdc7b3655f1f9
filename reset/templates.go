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
	product                  string
	resetSubject, chgSubject string
	resetText, chgText       *texttemplate.Template
	resetHTML, chgHTML       *htmltemplate.Template
}

func newRenderer(product string, t *Templates) (*renderer, error) {
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
	return r, nil
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
	var tb, hb bytes.Buffer
	switch kind {
	case KindReset:
		subject = r.resetSubject
		if err = r.resetText.Execute(&tb, d); err == nil {
			err = r.resetHTML.Execute(&hb, d)
		}
	default:
		subject = r.chgSubject
		if err = r.chgText.Execute(&tb, d); err == nil {
			err = r.chgHTML.Execute(&hb, d)
		}
	}
	if err != nil {
		return "", "", "", fmt.Errorf("reset: rendering %s email: %w", kind, err)
	}
	return subject, tb.String(), hb.String(), nil
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
