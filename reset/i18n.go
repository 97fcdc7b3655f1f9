package reset

import (
	"embed"

	"github.com/passreset/passreset/internal/i18n"
)

// Messages holds the translated texts of emails or pages: for each
// language, a BCP 47 tag such as "de" or "pt-BR", each key's text. A text
// is a [text/template] executed with the data of what it appears in (a
// [MailData] for emails), so it may use fields such as {{.Product}} and
// {{.Email}}; an HTML template escapes the result where it inserts it.
//
// Set [Templates.Messages] to change any single text of a shipped
// language, or to add a language, without replacing whole templates. A
// key a language lacks falls back to English. The hosted pages of
// httpadapter take their texts from the same map: see its doc for their
// keys.
type Messages map[string]map[string]string

// The shipped texts of the emails, one JSON object of key to text per
// language, read by every test of the package.
var (
	//go:embed messages/*.json
	messageFiles  embed.FS
	emailMessages = i18n.MustLoad(messageFiles, "messages")
)

// DefaultMessages returns the shipped texts of the emails, a copy the
// caller may change. Their keys are "dir" ("ltr" or "rtl"), "time.layout"
// (a [time.Layout] for the date in the password-changed notice),
// "greeting", "reset.subject", "reset.intro", "reset.action",
// "reset.button", "reset.ignore", "invite.subject", "invite.intro",
// "invite.action", "invite.button", "invite.ignore", "changed.subject",
// "changed.intro", "changed.advice", "duration.both" and the counted
// "duration.days", "duration.hours" and "duration.minutes": a counted key is followed by the CLDR plural
// categories its language uses ("duration.hours.one" = "1 hour",
// "duration.hours.other" = "{{.N}} hours"; Arabic has "zero", "one",
// "two", "few", "many" and "other", Japanese and Chinese "other" only).
func DefaultMessages() Messages { return i18n.Clone(emailMessages) }
