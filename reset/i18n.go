package reset

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
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

// Keys every language of a [Catalog] has, besides those of its own
// templates.
const (
	// KeyDir is the writing direction: "ltr" or "rtl".
	KeyDir = "dir"
	// KeyTimeLayout is a [time.Layout] for a date and time, such as
	// "2 January 2006 at 15:04 MST".
	KeyTimeLayout = "time.layout"
)

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
					problems = append(problems, fmt.Sprintf("text %s of %q: %v", key, lang, hint(err)))
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
		return nil, fmt.Errorf("reset: messages: %s", strings.Join(problems, "; "))
	}
	slices.Sort(c.langs)
	return c, nil
}

// hint adds what to write instead of the placeholders of earlier versions.
func hint(err error) error {
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

// Keys returns the keys lang has texts for, sorted.
func (c *Catalog) Keys(lang string) []string {
	return slices.Sorted(maps.Keys(c.texts[c.Match(lang)]))
}

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
		return "", fmt.Errorf("reset: no text %q", key)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("reset: text %q of %q: %w", key, lang, err)
	}
	return b.String(), nil
}

// Has reports whether lang itself (not English in its place) has key.
func (c *Catalog) Has(lang, key string) bool {
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
	if !c.Has(lang, k) {
		k = key + "." + PluralOther
		if !c.Has(lang, k) {
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

// DefaultMessages returns the shipped texts of the emails, a copy the
// caller may change. Their keys are KeyDir, KeyTimeLayout, "greeting",
// "reset.subject", "reset.intro", "reset.action", "reset.button",
// "reset.ignore", "changed.subject", "changed.intro", "changed.advice",
// "duration.both" and the counted "duration.hours" and "duration.minutes"
// (see [PluralOther]).
func DefaultMessages() Messages {
	m := Messages{}
	for lang, texts := range emailMessages {
		m[lang] = maps.Clone(texts)
	}
	return m
}

// Messages returns the application's texts, [Templates.Messages], for
// adapters that render pages in the same languages.
func (s *Service) Messages() Messages { return s.render.changes }

// emailMessages are the shipped texts of the emails.
var emailMessages = Messages{
	"en": {
		KeyDir:                   "ltr",
		KeyTimeLayout:            "2 January 2006 at 15:04 MST",
		"greeting":               "Hello,",
		"reset.subject":          "Reset your {{.Product}} password",
		"reset.intro":            "Someone asked to reset the password of the {{.Product}} account for {{.Email}}.",
		"reset.action":           "To choose a new password, open this link within {{.ExpiresIn}}:",
		"reset.button":           "Choose a new password",
		"reset.ignore":           "The link works once. If you did not ask for this, ignore this email: your password stays as it is.",
		"changed.subject":        "Your {{.Product}} password was changed",
		"changed.intro":          "The password of the {{.Product}} account for {{.Email}} was changed on {{.When}}.",
		"changed.advice":         "If you did this, you need do nothing. If you did not, reset your password at once and contact support: someone else may have access to your email.",
		"duration.hours.one":     "1 hour",
		"duration.hours.other":   "{{.N}} hours",
		"duration.minutes.one":   "1 minute",
		"duration.minutes.other": "{{.N}} minutes",
		"duration.both":          "{{.Hours}} and {{.Minutes}}",
	},
	"de": {
		KeyDir:                   "ltr",
		KeyTimeLayout:            "02.01.2006 um 15:04 MST",
		"greeting":               "Hallo,",
		"reset.subject":          "Setzen Sie Ihr {{.Product}}-Passwort zurück",
		"reset.intro":            "Jemand hat darum gebeten, das Passwort des {{.Product}}-Kontos für {{.Email}} zurückzusetzen.",
		"reset.action":           "Um ein neues Passwort zu wählen, öffnen Sie diesen Link innerhalb von {{.ExpiresIn}}:",
		"reset.button":           "Neues Passwort wählen",
		"reset.ignore":           "Der Link funktioniert nur einmal. Wenn Sie das nicht angefordert haben, ignorieren Sie diese E-Mail: Ihr Passwort bleibt unverändert.",
		"changed.subject":        "Ihr {{.Product}}-Passwort wurde geändert",
		"changed.intro":          "Das Passwort des {{.Product}}-Kontos für {{.Email}} wurde am {{.When}} geändert.",
		"changed.advice":         "Wenn Sie das waren, müssen Sie nichts tun. Wenn nicht, setzen Sie Ihr Passwort sofort zurück und wenden Sie sich an den Support: Jemand anderes hat möglicherweise Zugriff auf Ihre E-Mails.",
		"duration.hours.one":     "1 Stunde",
		"duration.hours.other":   "{{.N}} Stunden",
		"duration.minutes.one":   "1 Minute",
		"duration.minutes.other": "{{.N}} Minuten",
		"duration.both":          "{{.Hours}} und {{.Minutes}}",
	},
	"fr": {
		KeyDir:                   "ltr",
		KeyTimeLayout:            "02/01/2006 à 15:04 MST",
		"greeting":               "Bonjour,",
		"reset.subject":          "Réinitialisez votre mot de passe {{.Product}}",
		"reset.intro":            "Quelqu’un a demandé à réinitialiser le mot de passe du compte {{.Product}} associé à {{.Email}}.",
		"reset.action":           "Pour choisir un nouveau mot de passe, ouvrez ce lien (valable {{.ExpiresIn}}) :",
		"reset.button":           "Choisir un nouveau mot de passe",
		"reset.ignore":           "Le lien ne fonctionne qu’une fois. Si vous n’êtes pas à l’origine de cette demande, ignorez cet e-mail : votre mot de passe reste inchangé.",
		"changed.subject":        "Votre mot de passe {{.Product}} a été modifié",
		"changed.intro":          "Le mot de passe du compte {{.Product}} associé à {{.Email}} a été modifié le {{.When}}.",
		"changed.advice":         "Si c’est vous, vous n’avez rien à faire. Sinon, réinitialisez votre mot de passe immédiatement et contactez le support : quelqu’un d’autre a peut-être accès à votre messagerie.",
		"duration.hours.one":     "une heure",
		"duration.hours.other":   "{{.N}} heures",
		"duration.minutes.one":   "une minute",
		"duration.minutes.other": "{{.N}} minutes",
		"duration.both":          "{{.Hours}} et {{.Minutes}}",
	},
	"es": {
		KeyDir:                   "ltr",
		KeyTimeLayout:            "02/01/2006 a las 15:04 MST",
		"greeting":               "Hola:",
		"reset.subject":          "Restablece tu contraseña de {{.Product}}",
		"reset.intro":            "Alguien ha solicitado restablecer la contraseña de la cuenta de {{.Product}} asociada a {{.Email}}.",
		"reset.action":           "Para elegir una contraseña nueva, abre este enlace en un plazo de {{.ExpiresIn}}:",
		"reset.button":           "Elegir una contraseña nueva",
		"reset.ignore":           "El enlace solo funciona una vez. Si no lo has solicitado, ignora este correo: tu contraseña no cambiará.",
		"changed.subject":        "Se ha cambiado tu contraseña de {{.Product}}",
		"changed.intro":          "La contraseña de la cuenta de {{.Product}} asociada a {{.Email}} se cambió el {{.When}}.",
		"changed.advice":         "Si fuiste tú, no tienes que hacer nada. Si no, restablece tu contraseña de inmediato y ponte en contacto con el servicio de asistencia: puede que otra persona tenga acceso a tu correo.",
		"duration.hours.one":     "una hora",
		"duration.hours.other":   "{{.N}} horas",
		"duration.minutes.one":   "un minuto",
		"duration.minutes.other": "{{.N}} minutos",
		"duration.both":          "{{.Hours}} y {{.Minutes}}",
	},
	"pt-BR": {
		KeyDir:                   "ltr",
		KeyTimeLayout:            "02/01/2006 às 15:04 MST",
		"greeting":               "Olá,",
		"reset.subject":          "Redefina sua senha do {{.Product}}",
		"reset.intro":            "Alguém pediu para redefinir a senha da conta do {{.Product}} associada a {{.Email}}.",
		"reset.action":           "Para escolher uma nova senha, abra este link em até {{.ExpiresIn}}:",
		"reset.button":           "Escolher uma nova senha",
		"reset.ignore":           "O link funciona uma única vez. Se você não fez esse pedido, ignore este e-mail: sua senha continua a mesma.",
		"changed.subject":        "Sua senha do {{.Product}} foi alterada",
		"changed.intro":          "A senha da conta do {{.Product}} associada a {{.Email}} foi alterada em {{.When}}.",
		"changed.advice":         "Se foi você, não precisa fazer nada. Se não foi, redefina sua senha imediatamente e entre em contato com o suporte: outra pessoa pode ter acesso ao seu e-mail.",
		"duration.hours.one":     "uma hora",
		"duration.hours.other":   "{{.N}} horas",
		"duration.minutes.one":   "um minuto",
		"duration.minutes.other": "{{.N}} minutos",
		"duration.both":          "{{.Hours}} e {{.Minutes}}",
	},
	"ja": {
		KeyDir:                   "ltr",
		KeyTimeLayout:            "2006年1月2日 15:04 MST",
		"greeting":               "こんにちは。",
		"reset.subject":          "{{.Product}} のパスワードの再設定",
		"reset.intro":            "{{.Email}} の {{.Product}} アカウントのパスワード再設定が依頼されました。",
		"reset.action":           "新しいパスワードを設定するには、{{.ExpiresIn}}以内に次のリンクを開いてください。",
		"reset.button":           "新しいパスワードを設定する",
		"reset.ignore":           "このリンクは一度だけ使えます。心当たりがない場合は、このメールを無視してください。パスワードは変更されません。",
		"changed.subject":        "{{.Product}} のパスワードが変更されました",
		"changed.intro":          "{{.Email}} の {{.Product}} アカウントのパスワードが {{.When}} に変更されました。",
		"changed.advice":         "ご自身で変更した場合は、何もする必要はありません。心当たりがない場合は、すぐにパスワードを再設定し、サポートに連絡してください。第三者があなたのメールにアクセスできる可能性があります。",
		"duration.hours.other":   "{{.N}}時間",
		"duration.minutes.other": "{{.N}}分",
		"duration.both":          "{{.Hours}}{{.Minutes}}",
	},
	"zh-Hans": {
		KeyDir:                   "ltr",
		KeyTimeLayout:            "2006年1月2日 15:04 MST",
		"greeting":               "您好：",
		"reset.subject":          "重置您的 {{.Product}} 密码",
		"reset.intro":            "有人请求重置 {{.Email}} 的 {{.Product}} 帐户密码。",
		"reset.action":           "如需设置新密码，请在 {{.ExpiresIn}}内打开此链接：",
		"reset.button":           "设置新密码",
		"reset.ignore":           "此链接只能使用一次。如果这不是您本人的请求，请忽略此邮件：您的密码不会改变。",
		"changed.subject":        "您的 {{.Product}} 密码已更改",
		"changed.intro":          "{{.Email}} 的 {{.Product}} 帐户密码已于 {{.When}} 更改。",
		"changed.advice":         "如果是您本人操作，则无需任何处理。如果不是，请立即重置密码并联系客服：其他人可能可以访问您的邮箱。",
		"duration.hours.other":   "{{.N}} 小时",
		"duration.minutes.other": "{{.N}} 分钟",
		"duration.both":          "{{.Hours}} {{.Minutes}}",
	},
	"ar": {
		KeyDir:                   "rtl",
		KeyTimeLayout:            "2006/01/02 الساعة 15:04 MST",
		"greeting":               "مرحبًا،",
		"reset.subject":          "إعادة تعيين كلمة مرور {{.Product}}",
		"reset.intro":            "طلب أحدهم إعادة تعيين كلمة مرور حساب {{.Product}} الخاص بالعنوان {{.Email}}.",
		"reset.action":           "لاختيار كلمة مرور جديدة، افتح هذا الرابط خلال {{.ExpiresIn}}:",
		"reset.button":           "اختيار كلمة مرور جديدة",
		"reset.ignore":           "يعمل الرابط مرة واحدة فقط. إذا لم تطلب ذلك، فتجاهل هذه الرسالة: ستبقى كلمة مرورك كما هي.",
		"changed.subject":        "تم تغيير كلمة مرور {{.Product}}",
		"changed.intro":          "تم تغيير كلمة مرور حساب {{.Product}} الخاص بالعنوان {{.Email}} في {{.When}}.",
		"changed.advice":         "إذا كنت أنت من قام بذلك، فلا داعي لفعل أي شيء. وإن لم تكن أنت، فأعد تعيين كلمة المرور فورًا وتواصل مع الدعم: ربما يستطيع شخص آخر الوصول إلى بريدك الإلكتروني.",
		"duration.hours.zero":    "{{.N}} ساعة",
		"duration.hours.one":     "ساعة واحدة",
		"duration.hours.two":     "ساعتين",
		"duration.hours.few":     "{{.N}} ساعات",
		"duration.hours.many":    "{{.N}} ساعة",
		"duration.hours.other":   "{{.N}} ساعة",
		"duration.minutes.zero":  "{{.N}} دقيقة",
		"duration.minutes.one":   "دقيقة واحدة",
		"duration.minutes.two":   "دقيقتين",
		"duration.minutes.few":   "{{.N}} دقائق",
		"duration.minutes.many":  "{{.N}} دقيقة",
		"duration.minutes.other": "{{.N}} دقيقة",
		"duration.both":          "{{.Hours}} و{{.Minutes}}",
	},
}
