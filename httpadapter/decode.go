package httpadapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes is the largest request body the handler reads: 64 KiB.
// A larger body gets 413.
const MaxBodyBytes = 64 << 10

// field describes one string field of a request body.
type field struct {
	name     string
	required bool
	enum     []string // the allowed values, when not nil
}

// The request bodies of the JSON operations.
var (
	lostFields = []field{
		{name: "email", required: true},
		{name: "link"},
		{name: "skipSend", enum: []string{"enabled", "disabled"}},
		// purpose and lifetime are checked by passwordLost, after the
		// caller: the public gets 403 for either, whatever its value.
		{name: "purpose"},
		{name: "lifetime"},
	}
	resetFields = []field{
		{name: "confirmationToken", required: true},
		{name: "newPassword", required: true},
		{name: "id"},
		{name: "secondFactorCode"},
		{name: "endSessions", enum: []string{"enabled", "disabled"}},
	}
	checkFields = []field{
		{name: "confirmationToken", required: true},
	}
)

// readJSON checks the content type, reads at most MaxBodyBytes of the body
// and decodes it with decodeObject.
func readJSON(w http.ResponseWriter, r *http.Request, spec []field) (map[string]string, *apiError) {
	if !isJSON(r.Header.Get("Content-Type")) {
		return nil, &apiError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
			message: "The request body must be JSON: send Content-Type: application/json.",
			details: []ErrorDetail{{Code: DetailInvalidValue, Target: "Content-Type", Message: "Expected application/json."}}}
	}
	body, aerr := readBody(w, r)
	if aerr != nil {
		return nil, aerr
	}
	return decodeObject(body, spec)
}

// readBody reads the whole body, refusing more than MaxBodyBytes with 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	tooLarge := &apiError{status: http.StatusRequestEntityTooLarge, code: CodeRequestTooLarge,
		message: fmt.Sprintf("The request body is larger than %d bytes.", MaxBodyBytes),
		details: []ErrorDetail{{Code: DetailSizeExceeded, Target: "body", Message: fmt.Sprintf("At most %d bytes.", MaxBodyBytes)}}}
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge
		}
		return nil, invalid(DetailInvalidJSON, "body", "The request body could not be read: "+err.Error()+".")
	}
	return body, nil
}

// isJSON reports whether a Content-Type names JSON: application/json or
// application/*+json, with no charset other than UTF-8.
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// decodeObject decodes body, which must be exactly one JSON object whose
// members are all in spec, each at most once, each a string (or null,
// meaning absent), and returns the present values. It refuses invalid
// UTF-8, control characters (CR, LF and the rest) in any value, values
// outside a field's enum, missing required fields and anything after the
// object. Every error is a 400 naming the field, or "body" with the byte
// offset of the problem.
//
// It walks the object's members with encoding/json's tokenizer, which
// finds the syntax errors and their offsets; a struct decode could not
// tell which field was repeated.
func decodeObject(body []byte, spec []field) (map[string]string, *apiError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid(DetailInvalidJSON, "body", "The request body is empty: send a JSON object.")
	}
	if !utf8.Valid(body) { // encoding/json would silently replace the bad bytes
		return nil, syntaxAt(body, invalidUTF8At(body), "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(body, dec, err)
	}
	if tok != json.Delim('{') {
		return nil, invalid(DetailInvalidJSON, "body", "The request body must be a JSON object.")
	}
	vals := make(map[string]string, len(spec))
	seen := make(map[string]bool, len(spec))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(body, dec, err)
		}
		name, _ := tok.(string) // a key is always a string
		i := slices.IndexFunc(spec, func(f field) bool { return f.name == name })
		if i < 0 {
			target := name
			if target == "" {
				target = "body" // an empty name cannot serve as a target
			}
			return nil, invalid(DetailUnknownField, target, fmt.Sprintf("Unknown field %q; this operation takes %s.", name, fieldNames(spec)))
		}
		if seen[name] {
			return nil, invalid(DetailInvalidValue, name, fmt.Sprintf("Field %q appears more than once.", name))
		}
		seen[name] = true
		f := spec[i]
		var s *string // nil for null
		if err := dec.Decode(&s); err != nil {
			if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
				return nil, invalid(DetailInvalidValue, name, fmt.Sprintf("%s must be a string%s, not %s.", name, enumText(f), kindOf(te.Value)))
			}
			return nil, jsonError(body, dec, err)
		}
		switch {
		case s == nil:
		case strings.ContainsFunc(*s, isControl):
			return nil, invalid(DetailInvalidValue, name, name+" must not contain line breaks or other control characters.")
		case f.enum != nil && !slices.Contains(f.enum, *s):
			return nil, invalid(DetailInvalidValue, name, fmt.Sprintf("%s must be %s, not %q.", name, quoteList(f.enum), *s))
		case *s != "":
			vals[name] = *s
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, jsonError(body, dec, err)
	}
	end := int(dec.InputOffset())
	if rest := bytes.TrimLeft(body[end:], " \t\r\n"); len(rest) > 0 {
		return nil, syntaxAt(body, len(body)-len(rest), "unexpected data after the JSON object")
	}
	for _, f := range spec {
		if f.required && vals[f.name] == "" {
			return nil, invalid(DetailRequiredValue, f.name, f.name+" is required.")
		}
	}
	return vals, nil
}

// jsonError turns a decoding error into a 400 with the byte offset.
func jsonError(body []byte, dec *json.Decoder, err error) *apiError {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return syntaxAt(body, int(se.Offset), strings.TrimPrefix(se.Error(), "json: "))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return syntaxAt(body, len(body), "unexpected end of the body")
	}
	return syntaxAt(body, int(dec.InputOffset()), strings.TrimPrefix(err.Error(), "json: "))
}

// syntaxAt describes a malformed body, giving the byte offset of the
// problem and its line and column (both counted from 1).
func syntaxAt(body []byte, off int, what string) *apiError {
	off = min(max(off, 0), len(body))
	line := 1 + bytes.Count(body[:off], []byte("\n"))
	col := 1 + utf8.RuneCount(body[bytes.LastIndexByte(body[:off], '\n')+1:off])
	return invalid(DetailInvalidJSON, "body",
		fmt.Sprintf("The request body is not valid JSON: %s at byte offset %d (line %d, column %d).", what, off, line, col))
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func fieldNames(spec []field) string {
	names := make([]string, len(spec))
	for i, f := range spec {
		names[i] = fmt.Sprintf("%q", f.name)
	}
	return strings.Join(names, ", ")
}

func enumText(f field) string {
	if f.enum == nil {
		return ""
	}
	return " (" + quoteList(f.enum) + ")"
}

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, " or ")
}

// kindOf names the JSON type of a value as encoding/json's
// UnmarshalTypeError gives it ("bool", "number", "object", "array").
func kindOf(value string) string {
	switch {
	case value == "bool":
		return "a boolean"
	case strings.HasPrefix(value, "number"):
		return "a number"
	case value == "object" || value == "array":
		return "an " + value
	default:
		return value
	}
}
