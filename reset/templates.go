package reset

import (
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/passreset/passreset/internal/i18n"
)

// Templates changes the emails. Every field left nil or empty keeps the
// built-in default, which speaks every language of [DefaultMessages]
// (English, German, French, Spanish, Brazilian Portuguese, Japanese,
// Simplified Chinese and Arabic) and picks the one of the account's
// [User.Locale]: the same tag, else one of the same base language ("pt-PT"
// finds "pt-BR"; "zh-CN" finds "zh-Hans", the traditional-script "zh-TW"
// does not), else English. Templates receive a [MailData];
// {{.T "key"}} inserts a text of the email's language.
type Templates struct {
	// ResetSubject, when set, is a text/template for the subject of the
	// reset email in every language, such as "{{.Product}}: new password".
	// Default: the language's "reset.subject" text, "Reset your
	// {{.Product}} password" in English.
	ResetSubject string
	ResetText    *texttemplate.Template // plain-text body of the reset email
	ResetHTML    *htmltemplate.Template // HTML body of the reset email

	// InviteSubject, when set, is a text/template for the subject of the
	// invitation email ([PurposeInvite]) in every language. Default: the
	// language's "invite.subject" text, "You have been invited to
	// {{.Product}}: choose your password" in English.
	InviteSubject string
	InviteText    *texttemplate.Template // plain-text body of the invitation email
	InviteHTML    *htmltemplate.Template // HTML body of the invitation email

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
	Link      string    // the link (reset and invitation emails only)
	ExpiresAt time.Time // when the link stops working (reset and invitation emails only)
	ExpiresIn string    // the link's lifetime in words in Lang, such as "1 hour" or "7 days"
	Time      time.Time // when the email was made, in UTC
	When      string    // Time in words in Lang, such as "2 May 2026 at 12:00 UTC"
	Locale    string    // the account's language (User.Locale), or ""
	Lang      string    // the language the email is written in, such as "pt-BR"
	Dir       string    // Lang's writing direction: "ltr" or "rtl"
	// SubjectKey is the key of the subject's text: "reset.subject",
	// "invite.subject" or "changed.subject".
	SubjectKey string

	cat *i18n.Catalog
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

// The built-in templates. The HTML emails use inline styles only (mail
// clients drop <style>), one column that narrows with the screen, and the
// language's direction. Every test of the package parses them.
var (
	//go:embed emails
	emailFiles         embed.FS
	textEmails         = texttemplate.Must(texttemplate.ParseFS(emailFiles, "emails/*.txt"))
	htmlEmails         = htmltemplate.Must(htmltemplate.ParseFS(emailFiles, "emails/*.html"))
	defaultResetText   = textEmails.Lookup("reset.txt")
	defaultInviteText  = textEmails.Lookup("invite.txt")
	defaultChangedText = textEmails.Lookup("changed.txt")
	defaultResetHTML   = htmlEmails.Lookup("reset")
	defaultInviteHTML  = htmlEmails.Lookup("invite")
	defaultChangedHTML = htmlEmails.Lookup("changed")
)

// renderer holds the templates in force.
type renderer struct {
	cat                      *i18n.Catalog
	changes                  Messages // Templates.Messages
	product                  string
	ttl                      time.Duration
	resetSubject, chgSubject *texttemplate.Template // nil: the catalog's
	resetText, chgText       *texttemplate.Template
	resetHTML, chgHTML       *htmltemplate.Template
	invSubject, invText      *texttemplate.Template
	invHTML                  *htmltemplate.Template
}

func newRenderer(product string, ttl time.Duration, t *Templates) (*renderer, error) {
	if t == nil {
		t = &Templates{}
	}
	cat, err := i18n.NewCatalog(emailMessages, t.Messages)
	if err != nil {
		return nil, fmt.Errorf("reset: %w", err)
	}
	r := &renderer{
		cat:       cat,
		changes:   i18n.Clone(t.Messages),
		product:   product,
		ttl:       ttl,
		resetText: orT(t.ResetText, defaultResetText),
		chgText:   orT(t.ChangedText, defaultChangedText),
		resetHTML: orT(t.ResetHTML, defaultResetHTML),
		chgHTML:   orT(t.ChangedHTML, defaultChangedHTML),
		invText:   orT(t.InviteText, defaultInviteText),
		invHTML:   orT(t.InviteHTML, defaultInviteHTML),
	}
	for _, s := range []struct {
		src  string
		name string
		dst  **texttemplate.Template
	}{{t.ResetSubject, "ResetSubject", &r.resetSubject}, {t.InviteSubject, "InviteSubject", &r.invSubject}, {t.ChangedSubject, "ChangedSubject", &r.chgSubject}} {
		if s.src == "" {
			continue
		}
		if *s.dst, err = texttemplate.New(s.name).Option("missingkey=error").Parse(s.src); err != nil {
			return nil, fmt.Errorf("reset: Templates.%s: %w", s.name, i18n.Hint(err))
		}
	}
	// Render every email in every language once, so that a template or
	// text that cannot render is reported now, not when mail is due.
	sample := MailData{Email: "name@example.com", Link: "https://example.com/reset?token=x", Time: time.Unix(0, 0).UTC()}
	sample.ExpiresAt = sample.Time.Add(ttl)
	for _, lang := range cat.Languages() {
		sample.Locale = lang
		for _, kind := range []string{KindReset, KindInvite, KindChanged} {
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
	ttl := r.ttl
	if !d.ExpiresAt.IsZero() {
		ttl = d.ExpiresAt.Sub(d.Time)
	}
	if d.ExpiresIn, err = r.lifetime(d.Lang, ttl); err != nil {
		return "", "", "", err
	}
	layout, err := r.cat.Text(d.Lang, i18n.KeyTimeLayout, nil)
	if err != nil {
		return "", "", "", err
	}
	d.When = d.Time.Format(layout)
	subj, tt, ht, key := r.resetSubject, r.resetText, r.resetHTML, "reset.subject"
	switch kind {
	case KindInvite:
		subj, tt, ht, key = r.invSubject, r.invText, r.invHTML, "invite.subject"
	case KindChanged:
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

// lifetime renders a link's lifetime d in words in lang: whole days as
// days ("7 days"), anything else in hours and minutes.
func (r *renderer) lifetime(lang string, d time.Duration) (string, error) {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return r.cat.Count(lang, "duration.days", int(d/day))
	}
	return r.cat.Duration(lang, d)
}
