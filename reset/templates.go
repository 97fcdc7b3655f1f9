package reset

import (
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
)

// Templates changes the emails. Every field left nil or empty keeps the
// built-in default, which speaks every language of [DefaultMessages]
// (English, German, French, Spanish, Brazilian Portuguese, Japanese,
// Simplified Chinese and Arabic) and picks the one of the account's
// [User.Locale] (see [Catalog.Match]). Templates receive a [MailData];
// {{.T "key"}} inserts a text of the email's language.
type Templates struct {
	// ResetSubject, when set, is a text/template for the subject of the
	// reset email in every language, such as "{{.Product}}: new password".
	// Default: the language's "reset.subject" text, "Reset your
	// {{.Product}} password" in English.
	ResetSubject string
	ResetText    *texttemplate.Template // plain-text body of the reset email
	ResetHTML    *htmltemplate.Template // HTML body of the reset email

	// ChangedSubject, when set, is a text/template for the subject of the
	// "password changed" notice in every language. Default: the
	// language's "changed.subject" text.
	ChangedSubject string
	ChangedText    *texttemplate.Template // plain-text body of the notice
	ChangedHTML    *htmltemplate.Template // HTML body of the notice

	// Messages changes or adds texts of the built-in templates (and of
	// the hosted pages of httpadapter), by language and key, without
	// replacing a template: Messages{"de": {"reset.button": "Los"}}
	// changes one German text; a new language needs only the texts that
	// differ from English. See [Messages]. Default: none.
	Messages Messages
}

// MailData is what the email templates receive.
type MailData struct {
	Product   string    // Config.Product
	Email     string    // the recipient
	Link      string    // the reset link (reset email only)
	ExpiresAt time.Time // when the link stops working (reset email only)
	ExpiresIn string    // the link's lifetime in words in Lang, such as "1 hour"
	Time      time.Time // when the email was made, in UTC
	When      string    // Time in words in Lang, such as "2 May 2026 at 12:00 UTC"
	Locale    string    // the account's language (User.Locale), or ""
	Lang      string    // the language the email is written in, such as "pt-BR"
	Dir       string    // Lang's writing direction: "ltr" or "rtl"
	// SubjectKey is the key of the subject's text: "reset.subject" or
	// "changed.subject".
	SubjectKey string

	cat *Catalog
}

// T returns the text of key in the email's language, rendered with the
// email's data (see [Messages]).
func (d MailData) T(key string) (string, error) {
	if d.cat == nil {
		return "", fmt.Errorf("reset: T(%q) outside an email", key)
	}
	return d.cat.Text(d.Lang, key, d)
}

// THTML is T for HTML templates: it returns the text escaped, with the
// product name and the address each isolated in a <bdi> element, so that a
// right-to-left language keeps a left-to-right address in one piece and
// its punctuation on the right side.
func (d MailData) THTML(key string) (htmltemplate.HTML, error) {
	if d.cat == nil {
		return "", fmt.Errorf("reset: THTML(%q) outside an email", key)
	}
	// Render with markers in place of the two values, escape, then put
	// the escaped values back inside <bdi>. The markers are private-use
	// characters that no text of a catalog holds.
	const productMark, emailMark = "\ue000", "\ue001"
	m := d
	m.Product, m.Email = productMark, emailMark
	text, err := d.cat.Text(d.Lang, key, m)
	if err != nil {
		return "", err
	}
	out := htmltemplate.HTMLEscapeString(text)
	out = strings.ReplaceAll(out, productMark, "<bdi>"+htmltemplate.HTMLEscapeString(d.Product)+"</bdi>")
	out = strings.ReplaceAll(out, emailMark, "<bdi>"+htmltemplate.HTMLEscapeString(d.Email)+"</bdi>")
	return htmltemplate.HTML(out), nil
}

var (
	defaultResetText = texttemplate.Must(texttemplate.New("reset.txt").Parse(`{{.T "greeting"}}

{{.T "reset.intro"}}
{{.T "reset.action"}}

{{.Link}}

{{.T "reset.ignore"}}
`))
	defaultChangedText = texttemplate.Must(texttemplate.New("changed.txt").Parse(`{{.T "greeting"}}

{{.T "changed.intro"}}

{{.T "changed.advice"}}
`))
	// The HTML emails use inline styles only (mail clients drop <style>),
	// one column that narrows with the screen, and the language's direction.
	htmlEmails = htmltemplate.Must(htmltemplate.New("emails").Parse(`
{{define "top"}}<!doctype html>
<html lang="{{.Lang}}" dir="{{.Dir}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.T .SubjectKey}}</title>
</head>
<body style="margin:0;padding:0;background:#f4f5f7">
<main style="box-sizing:border-box;max-width:560px;margin:0 auto;padding:24px 16px;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:16px;line-height:1.5;color:#1b1f24">
<div style="background:#ffffff;border:1px solid #d0d5db;border-radius:8px;padding:24px">
<p style="margin:0 0 16px">{{.T "greeting"}}</p>
{{end}}
{{define "bottom"}}</div>
</main>
</body>
</html>
{{end}}
{{define "reset.html"}}{{template "top" .}}<p style="margin:0 0 16px">{{.THTML "reset.intro"}} {{.T "reset.action"}}</p>
<p style="margin:24px 0"><a href="{{.Link}}" style="display:inline-block;padding:12px 20px;background:#0b57a4;color:#ffffff;font-weight:600;text-decoration:none;border-radius:4px">{{.T "reset.button"}}</a></p>
<p style="margin:0 0 16px;font-size:14px;color:#48515b;overflow-wrap:anywhere" dir="ltr">{{.Link}}</p>
<p style="margin:0">{{.T "reset.ignore"}}</p>
{{template "bottom" .}}{{end}}
{{define "changed.html"}}{{template "top" .}}<p style="margin:0 0 16px">{{.THTML "changed.intro"}}</p>
<p style="margin:0">{{.T "changed.advice"}}</p>
{{template "bottom" .}}{{end}}
`))
	defaultResetHTML   = htmlEmails.Lookup("reset.html")
	defaultChangedHTML = htmlEmails.Lookup("changed.html")
)

// renderer holds the templates in force.
type renderer struct {
	cat                      *Catalog
	changes                  Messages // Templates.Messages
	product                  string
	ttl                      time.Duration
	resetSubject, chgSubject *texttemplate.Template // nil: the catalog's
	resetText, chgText       *texttemplate.Template
	resetHTML, chgHTML       *htmltemplate.Template
}

func newRenderer(product string, ttl time.Duration, t *Templates) (*renderer, error) {
	if t == nil {
		t = &Templates{}
	}
	cat, err := NewCatalog(emailMessages, t.Messages)
	if err != nil {
		return nil, err
	}
	r := &renderer{
		cat:       cat,
		changes:   t.Messages,
		product:   product,
		ttl:       ttl,
		resetText: orT(t.ResetText, defaultResetText),
		chgText:   orT(t.ChangedText, defaultChangedText),
		resetHTML: orT(t.ResetHTML, defaultResetHTML),
		chgHTML:   orT(t.ChangedHTML, defaultChangedHTML),
	}
	for _, s := range []struct {
		src  string
		name string
		dst  **texttemplate.Template
	}{{t.ResetSubject, "ResetSubject", &r.resetSubject}, {t.ChangedSubject, "ChangedSubject", &r.chgSubject}} {
		if s.src == "" {
			continue
		}
		if *s.dst, err = texttemplate.New(s.name).Option("missingkey=error").Parse(s.src); err != nil {
			return nil, fmt.Errorf("reset: Templates.%s: %w", s.name, hint(err))
		}
	}
	// Render every email in every language once, so that a template or
	// text that cannot render is reported now, not when mail is due.
	sample := MailData{Email: "name@example.com", Link: "https://example.com/reset?token=x", Time: time.Unix(0, 0).UTC()}
	sample.ExpiresAt = sample.Time.Add(ttl)
	for _, lang := range cat.Languages() {
		sample.Locale = lang
		for _, kind := range []string{KindReset, KindChanged} {
			if _, _, _, err := r.render(kind, sample); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

func orT[T *texttemplate.Template | *htmltemplate.Template](a, b T) T {
	if a != nil {
		return a
	}
	return b
}

// render renders one email of kind in the language that d.Locale matches.
func (r *renderer) render(kind string, d MailData) (subject, text, html string, err error) {
	d.Product, d.cat = r.product, r.cat
	d.Lang = r.cat.Match(d.Locale)
	d.Dir = r.cat.Dir(d.Lang)
	if d.ExpiresIn, err = r.cat.Duration(d.Lang, r.ttl); err != nil {
		return "", "", "", err
	}
	layout, err := r.cat.Text(d.Lang, KeyTimeLayout, nil)
	if err != nil {
		return "", "", "", err
	}
	d.When = d.Time.Format(layout)
	subj, tt, ht, key := r.resetSubject, r.resetText, r.resetHTML, "reset.subject"
	if kind != KindReset {
		subj, tt, ht, key = r.chgSubject, r.chgText, r.chgHTML, "changed.subject"
	}
	d.SubjectKey = key
	var sb, tb, hb strings.Builder
	if subj != nil {
		err = subj.Execute(&sb, d)
	} else {
		var s string
		s, err = d.T(key)
		sb.WriteString(s)
	}
	if err == nil {
		err = tt.Execute(&tb, d)
	}
	if err == nil {
		err = ht.Execute(&hb, d)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("reset: rendering %s email in %s: %w", kind, d.Lang, err)
	}
	subject = sb.String()
	if strings.ContainsAny(subject, "\r\n") {
		return "", "", "", fmt.Errorf("reset: the %s email subject %q contains a line break", kind, subject)
	}
	return subject, tb.String(), hb.String(), nil
}
