package memory

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/azdurable/azdurable/core"
)

// Page sizes of QueryInstances and ListDeadLetters.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func pageSizeOf(n int) (int, error) {
	switch {
	case n == 0:
		return defaultPageSize, nil
	case n < 0 || n > maxPageSize:
		return 0, fmt.Errorf("%w: page size %d is outside 1..%d", core.ErrInvalidInput, n, maxPageSize)
	}
	return n, nil
}

// Kinds of continuation tokens, so that a token of one listing is rejected by another.
const (
	pageKindInstances   = "i"
	pageKindDeadLetters = "d"
)

// pageKey is what a continuation token holds: the sort key of the last item
// of the previous page. The next page starts after it, so items added or
// removed meanwhile never shift the pages.
type pageKey struct {
	Kind string `json:"k"`
	Sec  int64  `json:"s"`
	Nsec int    `json:"n"`
	ID   string `json:"id"`
}

// less reports whether the key sorts before (at, id): the item comes after the page.
func (k pageKey) less(at time.Time, id string) bool {
	return compareKeys(time.Unix(k.Sec, int64(k.Nsec)), k.ID, at, id) < 0
}

func encodePageKey(kind string, at time.Time, id string) string {
	// Marshalling a struct of strings and integers cannot fail.
	b, _ := json.Marshal(pageKey{Kind: kind, Sec: at.Unix(), Nsec: at.Nanosecond(), ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageKey(token, kind string) (pageKey, error) {
	var k pageKey
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(b, &k)
	}
	if err == nil && (k.Kind != kind || k.ID == "" || k.Nsec < 0 || k.Nsec >= 1e9) {
		err = fmt.Errorf("not a token of this listing")
	}
	if err != nil {
		return pageKey{}, fmt.Errorf("%w: malformed continuation token %q: %v; pass the token of the previous page unchanged",
			core.ErrInvalidInput, token, err)
	}
	return k, nil
}
