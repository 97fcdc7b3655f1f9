package httpadapter

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeObject(t *testing.T) {
	v, e := decodeObject([]byte(seedBodyFixed), lostFields)
	if e != nil {
		t.Fatal(e)
	}
	if v["email"] != "jborder@anywhere.com" || v["link"] != "https://anywhere.com/reset" || v["skipSend"] != "disabled" {
		t.Fatalf("%v", v)
	}
	v, e = decodeObject([]byte(` {"email":"a@b.example","link":null} `+"\n"), lostFields)
	if e != nil || len(v) != 1 {
		t.Fatalf("%v %v", v, e)
	}
	_, e = decodeObject([]byte(seedBody), lostFields)
	if e == nil || !strings.Contains(e.details[0].Message, "byte offset 78") {
		t.Fatalf("%v", e)
	}
	_, e = decodeObject([]byte(`{"email":"a@b.example"}  {}`), lostFields)
	if e == nil || !strings.Contains(e.details[0].Message, "after the JSON object at byte offset 25") {
		t.Fatalf("%v", e)
	}
	_, e = decodeObject([]byte(`{"email":`), lostFields)
	if e == nil || !strings.Contains(e.details[0].Message, "byte offset 9") {
		t.Fatalf("%v", e)
	}
	_, e = decodeObject([]byte(`{"email":"a@b.example","skipSend":true}`), lostFields)
	if e == nil || e.target() != "skipSend" || !strings.Contains(e.details[0].Message, "not a boolean") {
		t.Fatalf("%v", e)
	}
}

// FuzzDecodeObject checks that decoding never panics, that every refusal
// is a 400 naming a target, and that what it accepts is exactly what
// encoding/json reads, with the promised properties.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		seedBody, seedBodyFixed, `{}`, `{"email":null}`, `{"email":"a@b.c","email":"x@y.z"}`,
		`{"email":"a@b.c","skipSend":"enabled"}`, `{"email":"a\u000a@b.c"}`, "{\"email\":\"\xff\"}",
		`{"email":"a@b.c"} []`, `[]`, `"x"`, `{"email":{"x":[1,2,{"y":null}]}}`, `{"link":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, e := decodeObject(body, lostFields)
		if e != nil {
			if e.status != 400 || e.code != CodeInvalidData || e.target() == "" || e.details[0].Message == "" {
				t.Fatalf("refusal %+v", e)
			}
			return
		}
		if !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var std struct {
			Email    *string `json:"email"`
			Link     *string `json:"link"`
			SkipSend *string `json:"skipSend"`
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("accepted %q, encoding/json says %v", body, err)
		}
		deref := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		if v["email"] != deref(std.Email) || v["link"] != deref(std.Link) || v["skipSend"] != deref(std.SkipSend) {
			t.Fatalf("%q: got %v, encoding/json %q %q %q", body, v, deref(std.Email), deref(std.Link), deref(std.SkipSend))
		}
		if v["email"] == "" {
			t.Fatalf("accepted %q without an email", body)
		}
		if s, ok := v["skipSend"]; ok && !slices.Contains([]string{"enabled", "disabled"}, s) {
			t.Fatalf("skipSend %q", s)
		}
		for k, s := range v {
			if strings.ContainsFunc(s, isControl) {
				t.Fatalf("%s %q has a control character", k, s)
			}
		}
	})
}

// FuzzDecodeSimple checks that the fast path of decodeObject gives exactly
// the full decoder's result whenever it accepts a body.
func FuzzDecodeSimple(f *testing.F) {
	for _, s := range []string{
		`{"email": "a@b.c", "skipSend": "enabled"}`, `{"email":"a@b.c","link":null}`, ` {"email" : "x\u00e9@y.z"} `,
		`{"email": "a@b.c", "email": "d@e.f"}`, `{"email": "a\\nb"}`, `{"email": "a@b.c"} x`, `{}`, `{"link": ""}`,
		`{"email": "a@b.c", "skipSend": "maybe"}`, "{\"email\": \"a\u0085b\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodeSimple(body, lostFields)
		if !ok {
			return
		}
		// The full decoder, without the fast path.
		slow, err := decodeFull(body, lostFields)
		if err != nil {
			t.Fatalf("fast path accepted %q, full decoder says %v", body, err.message)
		}
		if !maps.Equal(fast, slow) {
			t.Fatalf("fast %v, full %v for %q", fast, slow, body)
		}
	})
}
