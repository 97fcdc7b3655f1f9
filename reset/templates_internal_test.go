package reset

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestSkeletonIsUsedForDefaults(t *testing.T) {
	r, err := newRenderer("Acme & Co <x>", "1 hour", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.fast == nil {
		t.Fatal("the default reset templates have no skeleton")
	}
	custom, _ := newRenderer("Acme", "1 hour", &Templates{ResetText: defaultResetText})
	if custom.fast != nil {
		t.Fatal("custom templates got a skeleton")
	}
}

// FuzzSkeletonMatchesTemplates checks that the pre-rendered reset email is
// byte for byte what the templates render, for any address and link.
func FuzzSkeletonMatchesTemplates(f *testing.F) {
	f.Add("Acme", "jborder@anywhere.com", "https://anywhere.com/reset?token=abc")
	f.Add("A&B", "o'brien+x@example.com", "https://x.example/?a=1&b=<2>&token=\"q\"")
	f.Add("P", "a@b.c", "https://h/p?a=%zz&b=+")
	f.Fuzz(func(t *testing.T, product, email, link string) {
		if strings.ContainsAny(product, "\r\n") || strings.Contains(product, "Placeholder") {
			return
		}
		r, err := newRenderer(product, "1 hour", nil)
		if err != nil || r.fast == nil {
			t.Skip()
		}
		d := MailData{Product: product, ExpiresIn: "1 hour", Email: email, Link: link}
		_, t1, h1, err := r.slowReset(d)
		if err != nil {
			t.Skip()
		}
		_, t2, h2, err := r.render(KindReset, d)
		if err != nil || t1 != t2 || h1 != h2 {
			t.Fatalf("skeleton differs for %q %q %q:\n%s\n---\n%s", product, email, link, h1, h2)
		}
	})
}

func TestTokenLen(t *testing.T) {
	if n := base64.RawURLEncoding.EncodedLen(TokenBytes); n != TokenLen {
		t.Fatalf("TokenLen = %d, want %d", TokenLen, n)
	}
}
