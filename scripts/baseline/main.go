// Command baseline serves the least any password-lost endpoint does, for
// load tests next to examples/basic (scripts/load.sh): it decodes the same
// JSON, makes the primitive token (crypto/rand, SHA-256, base64url) and
// writes the same JSON answer. It checks, stores and sends nothing.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	flag.Parse()
	http.HandleFunc("POST /api/directory/users/password-lost", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Email    string `json:"email"`
			Link     string `json:"link"`
			SkipSend string `json:"skipSend"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var b [32]byte
		rand.Read(b[:])
		_ = sha256.Sum256(b[:])
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"link": "http://" + *addr + "/api/directory/reset?token=" + base64.RawURLEncoding.EncodeToString(b[:])})
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
