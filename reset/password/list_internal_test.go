package password

import (
	"testing"
	"unicode/utf8"
)

// The embedded list unpacks, is strictly sorted (loadWordList checks),
// holds only lower-case entries of at least 4 characters, and finds its
// own entries.
func TestCommonListShape(t *testing.T) {
	l, err := loadWordList(commonGz)
	if err != nil {
		t.Fatal(err)
	}
	for i := range l.len() {
		w := l.word(i)
		if utf8.RuneCountInString(w) < minContextWord || !utf8.ValidString(w) {
			t.Fatalf("entry %d %q", i, w)
		}
		if i%997 == 0 && !l.has(w) {
			t.Fatalf("entry %d %q not found", i, w)
		}
	}
	for _, w := range []string{"password", "qwertyuiop", "iloveyou"} {
		if !l.has(w) {
			t.Errorf("%q is not on the list", w)
		}
	}
	if l.has("") || l.has("zzzz zzzz unlikely passphrase") {
		t.Error("the list finds what it does not hold")
	}
}

// BenchmarkLoadCommonList is the one-time cost of the first check:
// unpacking and indexing the list.
func BenchmarkLoadCommonList(b *testing.B) {
	for b.Loop() {
		if _, err := loadWordList(commonGz); err != nil {
			b.Fatal(err)
		}
	}
}
