package quota

import (
	"bytes"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func TestSpend(t *testing.T) {
	a, b := OwnerOf("a"), OwnerOf("b")
	var uses []Use
	spend := func(o Owner, now time.Time, want, writes bool) {
		t.Helper()
		next, ok := Spend(uses, o, now, time.Hour, 2)
		if ok != want || (next != nil) != writes {
			t.Fatalf("Spend at %v = %v, %v; want %v, writes %v", now, next, ok, want, writes)
		}
		if next != nil {
			uses = next
		}
	}
	spend(a, t0, true, true)
	spend(a, t0.Add(time.Minute), true, false) // its own use
	spend(b, t0.Add(2*time.Minute), true, true)
	spend(OwnerOf(""), t0.Add(3*time.Minute), false, false)
	spend(OwnerOf("c"), t0.Add(time.Hour), true, true) // a's use is a window old
	if len(uses) != 2 || uses[0].Owner != b {
		t.Fatalf("uses %+v: the old one should be gone", uses)
	}
	if !uses[1].At.Equal(t0.Add(time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("use at %v, want microseconds", uses[1].At)
	}
	if x, y := OwnerOf(""), OwnerOf(""); x == y {
		t.Fatal("two empty owners match")
	}
	if Last(uses) != uses[1].At || !Last(nil).IsZero() {
		t.Fatal("Last")
	}
}

func TestEncodeDecode(t *testing.T) {
	uses := []Use{{t0.Truncate(time.Microsecond), OwnerOf("a")}, {t0.Add(time.Second).Truncate(time.Microsecond), OwnerOf("b")}}
	got, err := Decode(Encode(uses))
	if err != nil || len(got) != 2 || !got[0].At.Equal(uses[0].At) || got[1].Owner != uses[1].Owner {
		t.Fatalf("Decode(Encode) = %+v, %v", got, err)
	}
	if _, err := Decode(make([]byte, EntryLen+1)); err == nil {
		t.Fatal("Decode of a cut entry succeeded")
	}
	if err := CheckLimit(0); err == nil || CheckLimit(MaxLimit+1) == nil || CheckLimit(MaxLimit) != nil {
		t.Fatal("CheckLimit")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode([]Use{{t0, OwnerOf("a")}}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		uses, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(Encode(uses), b) {
			t.Fatalf("Encode(Decode(%x)) = %x", b, Encode(uses))
		}
	})
}
