package passhash_test

import (
	"fmt"
	"strings"

	"github.com/passreset/passreset/passhash"
)

// Hash in SetPassword, Verify at login; a 64-character Chinese passphrase
// (192 bytes) is hashed whole.
func Example() {
	password := strings.Repeat("密码很长", 16)
	stored, err := passhash.Hash(password)
	if err != nil {
		panic(err)
	}
	ok, err := passhash.Verify(password, stored)
	fmt.Println(ok, err, passhash.NeedsRehash(stored))
	ok, _ = passhash.Verify(password[:len(password)-3]+"短", stored)
	fmt.Println(ok)
	// Output:
	// true <nil> false
	// false
}
