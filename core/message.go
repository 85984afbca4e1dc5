package core

import (
	"encoding/json"
	"fmt"
	"time"
)

// Message carries one event to an instance: a start, a completion, a fired
// timer, an external event, or a terminate/suspend/resume request. Every
// message has a unique ID; receivers drop duplicates.
type Message struct {
	ID         string `json:"id"`
	InstanceID string `json:"inst"`
	// ExecutionID targets one execution; empty means the current one.
	// Messages for another execution than the current one are dropped.
	ExecutionID string `json:"exec,omitempty"`
	Event       *Event `json:"event"`

	// DequeueCount is how many times the provider has handed out this
	// message, this time included. Set by the provider on fetch.
	DequeueCount int `json:"-"`
	// Receipt is the provider's handle for the fetched message (its lock).
	// The runtime passes it back unchanged; nil for in-memory deliveries.
	Receipt any `json:"-"`
	// VisibleAt delays a sent message: SendMessages keeps it invisible until
	// then (zero: visible at once). Not stored with the message.
	VisibleAt time.Time `json:"-"`
	// Origin is set on messages delivered in memory: the outbox row that keeps
	// the message durable until the receiving instance's commit has consumed it.
	Origin *OutboxRef `json:"-"`
}

// MessageFormatVersion is the version of the message encoding written by EncodeMessage.
const MessageFormatVersion = 1

type messageDoc struct {
	V int `json:"v"`
	*Message
}

// EncodeMessage encodes a message in the stable, versioned format that providers store.
func EncodeMessage(m *Message) ([]byte, error) {
	return json.Marshal(messageDoc{V: MessageFormatVersion, Message: m})
}

// DecodeMessage decodes what EncodeMessage wrote, checking that the message is
// complete enough to route and apply.
func DecodeMessage(b []byte) (*Message, error) {
	doc := messageDoc{Message: &Message{}}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode message: %w", err)
	}
	if doc.V != MessageFormatVersion {
		return nil, fmt.Errorf("decode message: unsupported format version %d (this build reads %d)", doc.V, MessageFormatVersion)
	}
	m := doc.Message
	if m.ID == "" || m.InstanceID == "" || m.Event == nil {
		return nil, fmt.Errorf("decode message: missing id, instance or event")
	}
	return m, nil
}

// OutboxRef names an outbox unit: the messages one episode committed for sending.
type OutboxRef struct {
	Partition  int    `json:"p"`
	InstanceID string `json:"inst"`
	ID         string `json:"id"`
}
