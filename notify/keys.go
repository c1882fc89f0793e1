package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/cistern-mq/cistern/index"
)

// The keys this package keeps in a store, all in the control container
// (index.ControlContainer), beside the engine's catalog and placement's
// records; <ref key> is index.RefKey:
//
//	subs/<ref key>/<id>          Record (JSON): one subscription
//	subscriber/<ref key>/<hash>  the id of the subscription of that subscriber
//	                             (hex SHA-256 of the URI): uniqueness, written create-only
//	cursor/<ref key>/<id>        Cursor (JSON): what the subscription was last delivered
//
// A queue's subscriptions are one prefix, so listing them is one listing,
// and deleting a queue's subscriptions three. keys_test.go pins these forms.
const (
	controlContainer = index.ControlContainer
	subsPrefix       = "subs/"
	subscriberPrefix = "subscriber/"
	cursorPrefix     = "cursor/"
)

// queuePrefix is the prefix of every key of kind (one of the prefixes
// above) of queue ref.
func queuePrefix(kind string, ref index.QueueRef) string { return kind + index.RefKey(ref) + "/" }

func subKey(ref index.QueueRef, id ID) string    { return queuePrefix(subsPrefix, ref) + string(id) }
func cursorKey(ref index.QueueRef, id ID) string { return queuePrefix(cursorPrefix, ref) + string(id) }

func subscriberKey(ref index.QueueRef, subscriber string) string {
	sum := sha256.Sum256([]byte(subscriber))
	return queuePrefix(subscriberPrefix, ref) + hex.EncodeToString(sum[:])
}

// parseSubKey reads a subKey back: false when k is not one.
func parseSubKey(k string) (index.QueueRef, ID, bool) {
	rest, ok := strings.CutPrefix(k, subsPrefix)
	if !ok {
		return index.QueueRef{}, "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return index.QueueRef{}, "", false
	}
	id := ID(rest[i+1:])
	if !id.Valid() {
		return index.QueueRef{}, "", false
	}
	ref, ok := index.ParseRefKey(rest[:i])
	if !ok || ref.Name == "" || strings.Contains(ref.Name, "/") {
		return index.QueueRef{}, "", false
	}
	return ref, id, true
}
