// Package i18n holds the translated texts of the emails (package reset)
// and of the hosted pages (package httpadapter): a [Catalog] of
// text/templates by language and key, CLDR plural rules for counted
// texts, language matching, and the loading of texts from embedded JSON
// files.
package i18n

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
)

// Messages holds texts by language (a BCP 47 tag such as "de" or
// "pt-BR") and key. reset.Messages has the same underlying type, so
// either passes where the other is expected.
type Messages = map[string]map[string]string

// Keys every language of a [Catalog] has, besides those of its own
// templates.
const (
	// KeyDir is the writing direction: "ltr" or "rtl".
	KeyDir = "dir"
	// KeyTimeLayout is a [time.Layout] for a date and time, such as
	// "2 January 2006 at 15:04 MST".
	KeyTimeLayout = "time.layout"
)

// Load reads the texts of every language from the files dir/<tag>.json of
// fsys, each one JSON object of key to text, such as
// {"greeting": "Hallo,"} in de.json.
func Load(fsys fs.FS, dir string) (Messages, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	m := Messages{}
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		texts, err := decodeTexts(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m[strings.TrimSuffix(path.Base(name), ".json")] = texts
	}
	return m, nil
}

// decodeTexts decodes one JSON object of key to text, refusing a key
// given twice (where encoding/json keeps the last silently).
func decodeTexts(b []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	texts := make(map[string]string, len(raw))
	d := json.NewDecoder(bytes.NewReader(b))
	if _, err := d.Token(); err != nil { // the "{" Unmarshal has seen
		return nil, err
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return nil, err
		}
		key := k.(string) // an object's keys are strings
		var text string
		if err := d.Decode(&text); err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
		if _, dup := texts[key]; dup {
			return nil, fmt.Errorf("%q is given twice", key)
		}
		texts[key] = text
	}
	return texts, nil
}

// MustLoad is [Load] for files embedded in the program, which a test of
// the package that embeds them reads: it panics if they do not load.
func MustLoad(fsys fs.FS, dir string) Messages {
	m, err := Load(fsys, dir)
	if err != nil {
		panic(err)
	}
	return m
}

// Clone returns a copy of m that shares nothing with it.
func Clone(m Messages) Messages {
	if m == nil {
		return nil
	}
	c := make(Messages, len(m))
	for lang, texts := range m {
		c[lang] = maps.Clone(texts)
	}
	return c
}

// A Catalog is a parsed [Messages]: shipped texts with an application's
// changes on top, ready to render in any of its languages. It is safe for
// concurrent use.
type Catalog struct {
	texts map[string]map[string]*texttemplate.Template // by canonical tag
	tags  map[string]string                            // lower-case tag -> canonical tag
	langs []string
}

// NewCatalog parses base and applies changes on top of it: a text in
// changes replaces the one of the same language and key in base, and a
// language only changes has is added. base must have English ("en"), the
// fallback of every key. It reports every text that does not parse.
func NewCatalog(base, changes Messages) (*Catalog, error) {
	c := &Catalog{texts: map[string]map[string]*texttemplate.Template{}, tags: map[string]string{}}
	var problems []string
	for _, m := range []Messages{base, changes} {
		for _, lang := range slices.Sorted(maps.Keys(m)) {
			canon, ok := c.tags[strings.ToLower(lang)]
			if !ok {
				if !validTag(lang) {
					problems = append(problems, fmt.Sprintf("language %q is not a BCP 47 tag such as \"de\" or \"pt-BR\"", lang))
					continue
				}
				canon = lang
				c.tags[strings.ToLower(lang)] = canon
				c.texts[canon] = map[string]*texttemplate.Template{}
				c.langs = append(c.langs, canon)
			}
			for _, key := range slices.Sorted(maps.Keys(m[lang])) {
				t, err := texttemplate.New(lang + ":" + key).Option("missingkey=error").Parse(m[lang][key])
				if err != nil {
					problems = append(problems, fmt.Sprintf("text %s of %q: %v", key, lang, Hint(err)))
					continue
				}
				c.texts[canon][key] = t
			}
		}
	}
	if _, ok := c.texts["en"]; !ok {
		problems = append(problems, `the messages have no English ("en") texts`)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("messages: %s", strings.Join(problems, "; "))
	}
	slices.Sort(c.langs)
	return c, nil
}

// Hint adds to a template's parse error what to write instead of the
// placeholders of earlier versions.
func Hint(err error) error {
	if strings.Contains(err.Error(), "function \"Product\" not defined") {
		return fmt.Errorf("%w (write {{.Product}})", err)
	}
	return err
}

// validTag reports whether s looks like a BCP 47 tag: subtags of 1 to 8
// letters and digits joined by "-", the first of 2 or 3 letters.
func validTag(s string) bool {
	for i, sub := range strings.Split(s, "-") {
		if len(sub) < 1 || len(sub) > 8 || (i == 0 && (len(sub) < 2 || len(sub) > 3)) {
			return false
		}
		for _, r := range sub {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && '0' <= r && r <= '9') {
				return false
			}
		}
	}
	return true
}

// Languages returns the catalog's languages, sorted.
func (c *Catalog) Languages() []string { return slices.Clone(c.langs) }

// Match returns the catalog's language for tag: the same tag (in any
// case, with "_" or "-"), else one with the same base language ("pt-PT"
// finds "pt-BR"; "zh-CN", "zh-SG" and "zh" find "zh-Hans" but the
// traditional-script "zh-TW", "zh-HK" and "zh-Hant" do not), else
// English.
func (c *Catalog) Match(tag string) string {
	tag = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
	if canon, ok := c.tags[tag]; ok {
		return canon
	}
	base, rest, _ := strings.Cut(tag, "-")
	if base == "zh" {
		switch strings.SplitN(rest, "-", 2)[0] {
		case "hant", "tw", "hk", "mo":
			return "en"
		}
		if canon, ok := c.tags["zh-hans"]; ok {
			return canon
		}
	}
	if canon, ok := c.tags[base]; ok {
		return canon
	}
	for _, l := range c.langs {
		if b, _, _ := strings.Cut(strings.ToLower(l), "-"); b == base {
			return l
		}
	}
	return "en"
}

// Text renders the text of key in lang (a language of the catalog, see
// [Catalog.Match]) with data, falling back to English when lang has none.
func (c *Catalog) Text(lang, key string, data any) (string, error) {
	t := c.texts[lang][key]
	if t == nil {
		t = c.texts["en"][key]
	}
	if t == nil {
		return "", fmt.Errorf("no text %q", key)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("text %q of %q: %w", key, lang, err)
	}
	return b.String(), nil
}

// has reports whether lang itself (not English in its place) has key.
func (c *Catalog) has(lang, key string) bool {
	_, ok := c.texts[lang][key]
	return ok
}

// Dir returns the writing direction of lang: "ltr" or "rtl".
func (c *Catalog) Dir(lang string) string {
	if d, err := c.Text(lang, KeyDir, nil); err == nil && d == "rtl" {
		return "rtl"
	}
	return "ltr"
}

// Plural keys are the key of a counted text followed by one of these
// CLDR plural categories; a language has those its grammar uses, and
// "other" always. Example: "duration.hours.one" = "1 hour",
// "duration.hours.other" = "{{.N}} hours".
const (
	PluralZero  = "zero"
	PluralOne   = "one"
	PluralTwo   = "two"
	PluralFew   = "few"
	PluralMany  = "many"
	PluralOther = "other"
)

// PluralCategories returns the plural categories lang's texts use for
// whole numbers, per CLDR, for the shipped languages; other languages get
// English's ("one", "other").
func PluralCategories(lang string) []string {
	switch base(lang) {
	case "ja", "zh", "ko", "vi", "th", "id":
		return []string{PluralOther}
	case "ar":
		return []string{PluralZero, PluralOne, PluralTwo, PluralFew, PluralMany, PluralOther}
	}
	return []string{PluralOne, PluralOther}
}

// plural returns the CLDR plural category of the whole number n in lang.
func plural(lang string, n int) string {
	switch base(lang) {
	case "ja", "zh", "ko", "vi", "th", "id":
		return PluralOther
	case "fr", "pt":
		if n == 0 || n == 1 {
			return PluralOne
		}
	case "ar":
		switch m := n % 100; {
		case n == 0:
			return PluralZero
		case n == 1:
			return PluralOne
		case n == 2:
			return PluralTwo
		case m >= 3 && m <= 10:
			return PluralFew
		case m >= 11:
			return PluralMany
		}
	default:
		if n == 1 {
			return PluralOne
		}
	}
	return PluralOther
}

func base(lang string) string {
	b, _, _ := strings.Cut(strings.ToLower(lang), "-")
	return b
}

// Count renders the counted text key (see [PluralOther]) for n in lang,
// with {{.N}} set to n.
func (c *Catalog) Count(lang, key string, n int) (string, error) {
	k := key + "." + plural(lang, n)
	if !c.has(lang, k) {
		k = key + "." + PluralOther
		if !c.has(lang, k) {
			lang = "en"
			k = key + "." + plural(lang, n)
		}
	}
	return c.Text(lang, k, struct{ N int }{n})
}

// Duration renders d in words in lang, rounded to the minute: "1 hour",
// "30 minutes", "2 hours and 30 minutes"; "1時間"; "ساعتين".
func (c *Catalog) Duration(lang string, d time.Duration) (string, error) {
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	hs, err := c.Count(lang, "duration.hours", h)
	if err != nil {
		return "", err
	}
	ms, err := c.Count(lang, "duration.minutes", max(m, 1))
	switch {
	case err != nil:
		return "", err
	case h > 0 && m > 0:
		return c.Text(lang, "duration.both", struct{ Hours, Minutes string }{hs, ms})
	case h > 0:
		return hs, nil
	}
	return ms, nil
}
