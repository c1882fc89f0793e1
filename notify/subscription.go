// Package notify keeps the subscriptions of queues in the object store and
// delivers each queue's messages to its subscribers (webhooks, and mailto:
// through an SMTP server), at least once across crashes.
//
// Contracts:
//   - A Store keeps subscriptions in the control container of one store
//     (keys.go). Subscriptions are unique per (project, queue, subscriber
//     URI); an expired subscription (its TTL passed since it was created or
//     last given a TTL) reads as missing and is removed when next met.
//   - A Deliverer (deliver.go) owes each deliverable subscription every
//     message of its queue posted after the subscription was created and
//     still in the queue when delivery reaches it. What it owes is a cursor
//     in the store (the last message delivered), advanced only after the
//     subscriber answered, so a crash repeats deliveries and loses none.
//     Mail (mailto.go) goes through the same cursor and retries: the SMTP
//     server accepting the mail counts as the subscriber's answer.
//
// docs/api.md (Subscriptions) says what Zaqar clients see.
package notify

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cistern-mq/cistern/index"
)

// Errors of a Store. Store errors (drivers' kinds) pass through wrapped.
var (
	// ErrNotFound: no such subscription, or it expired.
	ErrNotFound = errors.New("subscription not found")
	// ErrExists: the queue already has a subscription for that subscriber.
	ErrExists = errors.New("subscription already exists")
	// errCorrupt: a stored record does not decode.
	errCorrupt = errors.New("notify: corrupt record")
)

// ID names a subscription: a UUID4 string, as Zaqar's.
type ID string

// NewID returns a random UUID4.
func NewID() ID {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return ID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// Valid reports whether id has the form NewID gives (lower-case hex
// 8-4-4-4-12): anything else names no subscription.
func (id ID) Valid() bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range []byte(id) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// Subscription is one subscription of a queue.
type Subscription struct {
	ID         ID
	Queue      index.QueueRef
	Subscriber string
	TTL        int64           // seconds
	Options    json.RawMessage // a JSON object, kept verbatim
	Confirmed  bool
	Created    time.Time
	Expires    time.Time // Created (or the last TTL change) + TTL
	// ConfirmedAt is when Confirmed last became true (zero: never). With
	// confirmation required, only messages posted since are owed.
	ConfirmedAt time.Time
}

// record is a Subscription as stored.
type record struct {
	ID         ID              `json:"id"`
	Project    string          `json:"project"`
	Queue      string          `json:"queue"`
	Subscriber string          `json:"subscriber"`
	TTL        int64           `json:"ttl"`
	Options    json.RawMessage `json:"options"`
	Confirmed  bool            `json:"confirmed"`
	Created    int64           `json:"created"` // unix ns
	Expires    int64           `json:"expires"` // unix ns
	// ConfirmedAt is unix ns; absent (0) when never confirmed.
	ConfirmedAt int64 `json:"confirmed_at,omitempty"`
}

func encodeRecord(s Subscription) ([]byte, error) {
	return json.Marshal(record{
		ID: s.ID, Project: s.Queue.Project, Queue: s.Queue.Name, Subscriber: s.Subscriber, TTL: s.TTL,
		Options: s.Options, Confirmed: s.Confirmed, Created: s.Created.UnixNano(), Expires: s.Expires.UnixNano(),
		ConfirmedAt: unixNano(s.ConfirmedAt),
	})
}

// decodeRecord refuses a record this package could not have written.
func decodeRecord(data []byte) (Subscription, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return Subscription{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if !r.ID.Valid() || r.Queue == "" || r.Subscriber == "" || len(r.Options) == 0 || r.Options[0] != '{' {
		return Subscription{}, fmt.Errorf("%w: missing or invalid field", errCorrupt)
	}
	return Subscription{
		ID: r.ID, Queue: index.QueueRef{Project: r.Project, Name: r.Queue}, Subscriber: r.Subscriber,
		TTL: r.TTL, Options: r.Options, Confirmed: r.Confirmed,
		Created: time.Unix(0, r.Created), Expires: time.Unix(0, r.Expires), ConfirmedAt: fromUnixNano(r.ConfirmedAt),
	}, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Cursor is how far delivery to one subscription got: every message of
// the queue up to Seq was delivered (or skipped as older than the
// subscription).
type Cursor struct {
	Seq uint64 `json:"seq"`
	// MessageID is the last message delivered, for operators reading the
	// store; Seq is what delivery resumes after.
	MessageID string `json:"message_id,omitempty"`
}
