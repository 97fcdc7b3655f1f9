package httpadapter

import (
	"embed"
	"html/template"

	"github.com/passreset/passreset/internal/i18n"
	"github.com/passreset/passreset/reset"
)

// The built-in hosted pages (pages/*.html) and their texts
// (messages/<language>.json), read by every test of the package. The
// pages use no script, one <style> element carrying the CSP nonce, and
// plain forms that work without JavaScript. Their texts come from
// [PageMessages] in the page's language; the layout uses no left or right,
// so that it mirrors for right-to-left languages.
var (
	//go:embed pages/*.html messages/*.json
	pageFiles    embed.FS
	defaultPages = template.Must(template.ParseFS(pageFiles, "pages/*.html"))
	pageMessages = i18n.MustLoad(pageFiles, "messages")
)

// PageMessages returns the shipped texts of the hosted pages, a copy the
// caller may change, by language and key, in the form of
// [reset.Messages]: text/templates executed with the page's [PageData].
// Change one, or add a language, with [reset.Templates.Messages]: the
// pages and the emails share it. Keys a language lacks fall back to
// English.
func PageMessages() reset.Messages { return i18n.Clone(pageMessages) }
