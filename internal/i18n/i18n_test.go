package i18n

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/en.json":    {Data: []byte(`{"dir": "ltr", "hi": "Hello, {{.Name}}"}`)},
		"m/pt-BR.json": {Data: []byte(`{"hi": "Olá, {{.Name}}"}`)},
		"m/notes.txt":  {Data: []byte(`not a language`)},
	}
	m, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["pt-BR"]["hi"] != "Olá, {{.Name}}" || m["en"][KeyDir] != "ltr" {
		t.Fatalf("Load = %v", m)
	}
	c, err := NewCatalog(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := c.Text(c.Match("pt-PT"), "hi", struct{ Name string }{"Ana"}); err != nil || s != "Olá, Ana" {
		t.Fatalf("Text = %q, %v", s, err)
	}

	for data, want := range map[string]string{
		`{"hi": 1}`:                    `m/de.json: "hi"`,
		`{"hi": "a", "hi": "b"}`:       `m/de.json: "hi" is given twice`,
		`{"hi": "a"} {"x": "b"}`:       "m/de.json",
		`["hi"]`:                       "m/de.json",
		`{"hi": "a", "x": {"y": "z"}}`: `m/de.json: "x"`,
	} {
		fsys["m/de.json"] = &fstest.MapFile{Data: []byte(data)}
		if _, err := Load(fsys, "m"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load of %s: %v, want an error with %q", data, err, want)
		}
	}
}

func TestClone(t *testing.T) {
	m := Messages{"en": {"a": "b"}}
	c := Clone(m)
	c["en"]["a"] = "changed"
	c["de"] = map[string]string{}
	if m["en"]["a"] != "b" || len(m) != 1 {
		t.Fatalf("Clone shares with its source: %v", m)
	}
	if Clone(nil) != nil {
		t.Fatal("Clone(nil) is not nil")
	}
}

func TestNewCatalogRefuses(t *testing.T) {
	for _, tc := range []struct {
		base, changes Messages
		want          string
	}{
		{Messages{"de": {"a": "b"}}, nil, "English"},
		{Messages{"en": {"a": "{{.X"}}, nil, `text a of "en"`},
		{Messages{"en": {"a": "b"}}, Messages{"de": {"a": "{{Product}}"}}, "write {{.Product}}"},
		{Messages{"en": {"a": "b"}}, Messages{"x_y": {"a": "b"}}, "BCP 47"},
	} {
		if _, err := NewCatalog(tc.base, tc.changes); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewCatalog(%v, %v) = %v, want an error with %q", tc.base, tc.changes, err, tc.want)
		}
	}
}

// TestPlural checks the CLDR categories of whole numbers, and that each
// category plural returns is one PluralCategories lists.
func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		lang string
		n    int
		want string
	}{
		{"en", 0, PluralOther}, {"en", 1, PluralOne}, {"en", 2, PluralOther},
		{"fr", 0, PluralOne}, {"fr", 1, PluralOne}, {"fr", 2, PluralOther}, {"pt-BR", 0, PluralOne},
		{"de", 1, PluralOne}, {"ja", 1, PluralOther}, {"zh-Hans", 1, PluralOther},
		{"ar", 0, PluralZero}, {"ar", 1, PluralOne}, {"ar", 2, PluralTwo}, {"ar", 3, PluralFew},
		{"ar", 10, PluralFew}, {"ar", 11, PluralMany}, {"ar", 99, PluralMany}, {"ar", 100, PluralOther},
		{"ar", 102, PluralOther}, {"ar", 103, PluralFew}, {"ar", 111, PluralMany},
	} {
		if got := plural(tc.lang, tc.n); got != tc.want {
			t.Errorf("plural(%s, %d) = %s, want %s", tc.lang, tc.n, got, tc.want)
		}
	}
	for _, lang := range []string{"en", "de", "fr", "es", "pt-BR", "ja", "zh-Hans", "ar", "it"} {
		cats := PluralCategories(lang)
		for n := range 1000 {
			if c := plural(lang, n); !strings.Contains(" "+strings.Join(cats, " ")+" ", " "+c+" ") {
				t.Errorf("plural(%s, %d) = %s, not one of %v", lang, n, c, cats)
			}
		}
	}
}
