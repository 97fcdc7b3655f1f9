package httpadapter

import (
	"bytes"
	"encoding/json"
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

// FuzzDecodeObject checks decodeObject against encoding/json's own strict
// struct decode: decoding never panics; every refusal is a 400 naming a
// target; what it accepts, encoding/json reads the same way, with the
// promised properties; and what encoding/json reads, it refuses only for
// one of its documented extra rules (repeated field, field name in
// another case, invalid UTF-8, data after the object, missing email,
// control character, value outside the enum).
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		seedBody, seedBodyFixed, `{}`, `{"email":null}`, `{"email":"a@b.c","email":"x@y.z"}`,
		`{"email":"a@b.c","skipSend":"enabled"}`, `{"email":"a\u000a@b.c"}`, "{\"email\":\"\xff\"}",
		`{"email":"a@b.c"} []`, `[]`, `"x"`, `{"email":{"x":[1,2,{"y":null}]}}`, `{"link":"\ud800"}`,
		`{"email": "a@b.c", "skipSend": "maybe"}`, "{\"email\": \"a\u0085b\"}", `{"email":1.5e3}`, `{"emAil":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var std struct {
			Email    *string `json:"email"`
			Link     *string `json:"link"`
			SkipSend *string `json:"skipSend"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		stdErr := dec.Decode(&std)
		trailing := stdErr == nil && len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0
		deref := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		std3 := map[string]string{"email": deref(std.Email), "link": deref(std.Link), "skipSend": deref(std.SkipSend)}

		v, e := decodeObject(body, lostFields)
		if e != nil {
			if e.status != 400 || e.code != CodeInvalidData || e.target() == "" || e.details[0].Message == "" {
				t.Fatalf("refusal %+v", e)
			}
			if stdErr != nil || trailing || !utf8.Valid(body) || strings.Contains(e.details[0].Message, "more than once") {
				return
			}
			// encoding/json decodes a top-level null into a struct as
			// nothing at all; the API wants an object (the fuzzer found it).
			if bytes.Equal(bytes.TrimSpace(body), []byte("null")) && e.target() == "body" {
				return
			}
			// encoding/json matches field names case-insensitively, and the
			// last of "email" and "emAil" wins; decodeObject refuses a name
			// in another case, or an earlier member first (the fuzzer found
			// a control character in "email" followed by a clean "emAil").
			if otherCase(body) {
				return
			}
			switch val := std3[e.target()]; {
			case e.target() == "email" && val == "",
				strings.ContainsFunc(val, isControl),
				e.target() == "skipSend" && !slices.Contains([]string{"enabled", "disabled"}, val):
				return
			}
			t.Fatalf("refused %q, which encoding/json reads as %q: %v", body, std3, e)
		}
		if !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if stdErr != nil || trailing {
			t.Fatalf("accepted %q, encoding/json says %v (trailing data: %v)", body, stdErr, trailing)
		}
		for k, s := range std3 {
			if v[k] != s {
				t.Fatalf("%q: got %v, encoding/json %q", body, v, std3)
			}
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

// otherCase reports whether the top-level object in body, valid JSON, has
// a member whose name is one of the fields' names in another case.
func otherCase(body []byte) bool {
	var members map[string]json.RawMessage
	if json.Unmarshal(body, &members) != nil {
		return false
	}
	for name := range members {
		for _, f := range lostFields {
			if name != f.name && strings.EqualFold(name, f.name) {
				return true
			}
		}
	}
	return false
}
