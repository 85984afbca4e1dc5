package core

import (
	"encoding/json"
	"fmt"
)

// Codec turns payloads (inputs, outputs, event data, custom status) into bytes
// and back. The default is JSON; replace it with Options.Codec and ClientOptions.Codec,
// using the same codec on every host and client of a task hub.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default codec.
type JSONCodec struct{}

// Marshal encodes v as JSON. A nil value encodes as no bytes.
func (JSONCodec) Marshal(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if r, ok := v.(RawPayload); ok {
		return []byte(r), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot encode payload of type %T as JSON: %v", ErrInvalidInput, v, err)
	}
	return b, nil
}

// Unmarshal decodes JSON into v. Empty data leaves v at its zero value.
func (JSONCodec) Unmarshal(data []byte, v any) error {
	if len(data) == 0 || v == nil {
		return nil
	}
	if r, ok := v.(*RawPayload); ok {
		*r = append((*r)[:0], data...)
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("cannot decode payload into %T: %w", v, err)
	}
	return nil
}

// RawPayload is an already-encoded payload. Passing it as an input or asking
// for it as an output skips the codec: useful for untyped by-name calls.
type RawPayload []byte

// Void is the type of "no value", for activities and orchestrations without input or output.
type Void struct{}
