package azprovider

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Azure Tables limits. Azurite enforces only some of them (AZURITE.md), so
// the provider checks every entity it writes against all of them.
const (
	maxEntityBytes     = 1 << 20 // stored size of one entity (Azure's formula)
	maxProperties      = 252     // custom properties per entity
	maxPropNameChars   = 255
	maxBinaryProp      = 64 << 10 // bytes of one binary property
	maxStringPropUTF16 = 32 << 10 // UTF-16 code units of one string property
	maxBatchOps        = 100

	// partBytes is the size of one binary part of a chunked value.
	partBytes = 60 << 10
	// maxInlineBytes bounds a chunked value kept in its row; larger values
	// go to a blob. Base64 in the request makes 720 KiB about 960 KiB of
	// JSON, under the 1 MiB that Azurite checks the body of an update
	// against (measured), leaving room for the other properties.
	maxInlineBytes = 720 << 10
	// maxInlinePayload is the largest payload kept in a binary property of
	// the instance row.
	maxInlinePayload = maxBinaryProp
)

// entity is a row to write: its properties with OData type annotations, and
// its size by Azure's accounting, tracked as properties are added.
type entity struct {
	pk, rk string
	props  map[string]any
	size   int // stored size by Azure's formula
	nprops int
	err    error // the first property that breaks a limit
}

func newEntity(pk, rk string) *entity {
	e := &entity{pk: pk, rk: rk, props: map[string]any{"PartitionKey": pk, "RowKey": rk}}
	e.size = 4 + 2*utf16Len(pk) + 2*utf16Len(rk) + 8 // keys and the Timestamp
	return e
}

func (e *entity) add(name string, v any, size int) {
	if e.err == nil && utf8.RuneCountInString(name) > maxPropNameChars {
		e.err = fmt.Errorf("property name %q is longer than %d characters", name, maxPropNameChars)
	}
	e.props[name] = v
	e.nprops++
	e.size += 8 + 2*utf16Len(name) + size
}

func (e *entity) str(name, v string) {
	n := utf16Len(v)
	if e.err == nil && n > maxStringPropUTF16 {
		e.err = fmt.Errorf("string property %s is %d characters; Azure allows %d", name, n, maxStringPropUTF16)
	}
	e.add(name, v, 4+2*n)
}

func (e *entity) bin(name string, b []byte) {
	if e.err == nil && len(b) > maxBinaryProp {
		e.err = fmt.Errorf("binary property %s is %d bytes; Azure allows %d", name, len(b), maxBinaryProp)
	}
	e.add(name, base64.StdEncoding.EncodeToString(b), 4+len(b))
	e.props[name+"@odata.type"] = "Edm.Binary"
}

func (e *entity) i64(name string, v int64) {
	e.add(name, strconv.FormatInt(v, 10), 8)
	e.props[name+"@odata.type"] = "Edm.Int64"
}

func (e *entity) boolean(name string, v bool) { e.add(name, v, 1) }

// time stores a DateTime; a zero time is not stored (Azure's DateTime starts
// in 1601).
func (e *entity) time(name string, t time.Time) {
	if t.IsZero() {
		return
	}
	e.add(name, storedTime(t).Format(time.RFC3339Nano), 8)
	e.props[name+"@odata.type"] = "Edm.DateTime"
}

// chunks stores b in binary properties <name>0, <name>1, … of at most
// partBytes each, with the count in <name>N.
func (e *entity) chunks(name string, b []byte) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), partBytes)
		e.bin(name+strconv.Itoa(n), b[:k])
		b = b[k:]
		n++
	}
	e.i64(name+"N", int64(n))
}

// check verifies the entity against Azure's limits.
func (e *entity) check() error {
	if e.err != nil {
		return fmt.Errorf("entity %s/%s: %w", e.pk, e.rk, e.err)
	}
	if err := checkKey("PartitionKey", e.pk); err != nil {
		return err
	}
	if err := checkKey("RowKey", e.rk); err != nil {
		return err
	}
	if e.nprops > maxProperties {
		return fmt.Errorf("entity %s/%s has %d properties; Azure allows %d", e.pk, e.rk, e.nprops, maxProperties)
	}
	if e.size > maxEntityBytes {
		return fmt.Errorf("entity %s/%s is %d bytes; Azure allows %d", e.pk, e.rk, e.size, maxEntityBytes)
	}
	return nil
}

// marshal checks the entity and encodes it for the SDK. Azurite refuses an
// update (Update, InsertReplace, Merge; also inside a transaction) whose
// JSON body exceeds 1 MiB, base64 included, so that is checked too.
func (e *entity) marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e.props)
	if err != nil {
		return nil, err
	}
	if len(b) > maxEntityBytes {
		return nil, fmt.Errorf("entity %s/%s is %d bytes of JSON; Azurite allows %d in an update", e.pk, e.rk, len(b), maxEntityBytes)
	}
	return b, nil
}

// row is an entity read from the table.
type row map[string]json.RawMessage

func parseRow(b []byte) (row, error) {
	var r row
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode entity: %w", err)
	}
	return r, nil
}

func (r row) has(name string) bool { _, ok := r[name]; return ok }

func (r row) str(name string) string {
	var s string
	if v, ok := r[name]; ok {
		_ = json.Unmarshal(v, &s)
	}
	return s
}

func (r row) rowKey() string { return r.str("RowKey") }
func (r row) etag() string   { return r.str("odata.etag") }

func (r row) bin(name string) ([]byte, error) {
	v, ok := r[name]
	if !ok {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("property %s: %w", name, err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("property %s: %w", name, err)
	}
	return b, nil
}

func (r row) i64(name string) (int64, error) {
	v, ok := r[name]
	if !ok {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return strconv.ParseInt(s, 10, 64)
	}
	var n int64
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, fmt.Errorf("property %s: %w", name, err)
	}
	return n, nil
}

func (r row) boolean(name string) bool {
	var b bool
	if v, ok := r[name]; ok {
		_ = json.Unmarshal(v, &b)
	}
	return b
}

func (r row) time(name string) (time.Time, error) {
	s := r.str(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("property %s: %w", name, err)
	}
	return t.UTC(), nil
}

// chunks reads what entity.chunks stored.
func (r row) chunks(name string) ([]byte, error) {
	n, err := r.i64(name + "N")
	if err != nil {
		return nil, err
	}
	var out []byte
	for i := range n {
		b, err := r.bin(name + strconv.FormatInt(i, 10))
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}
