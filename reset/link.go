package reset

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/passreset/passreset/internal/link"
)

// parseLink validates a caller-supplied link against the allowlist. It
// returns the link or an [*InputError] for field "link" wrapping
// [ErrLinkNotAllowed].
func (s *Service) parseLink(raw string) (*url.URL, error) {
	bad := func(reason string) error {
		return &InputError{Field: "link", Reason: reason, Err: ErrLinkNotAllowed}
	}
	if len(raw) > maxLinkLen {
		return nil, bad(fmt.Sprintf("longer than %d bytes", maxLinkLen))
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x20 || c == 0x7f || c == ' ' {
			return nil, bad("contains a control character or space")
		}
	}
	if strings.ContainsRune(raw, '#') { // also an empty fragment, which url.Parse forgets
		return nil, bad("must not have a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("not a valid URL")
	}
	if err := link.CheckShape(u); err != nil {
		return nil, bad(err.Error())
	}
	for _, r := range s.rules {
		if r.Allows(u) {
			return u, nil
		}
	}
	return nil, bad("not under an allowed address")
}

const maxLinkLen = 2048
