package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Fence makes an engine safe to run beside other nodes on one store
// (cluster mode, docs/cluster.md). The store cannot refuse a stale writer,
// so what counts is not what is in the store but what the fence has
// committed: a queue's head, a small record kept outside the store (in
// etcd) that names the queue's container, its newest snapshot and its last
// committed log object. A node commits a head only while it owns the
// queue; a batch is acknowledged only once its head is committed. A node
// that lost the queue (lease expired, paused, cut off) fails its commit,
// and whatever it wrote and never committed is never read.
//
// The engine keeps the log numbers apart between owners: a new owner
// starts writing two numbers after the head, since the last owner may
// still have one log write in flight (the engine writes a queue's logs one
// at a time and commits each before writing the next), and records the
// number it skipped in the head so that no one ever reads it.
//
// Without a fence (Options.Fence nil) the engine is a single node and
// keeps its heads in the store's catalog entries, as before.
type Fence interface {
	// Epoch is the ownership this node holds on ref now: a number that
	// changes each time the node gains the queue anew (its owner key's
	// revision). ok is false when the node does not own ref.
	Epoch(ref QueueRef) (epoch int64, ok bool)
	// Head reads ref's committed head. ok is false when none was ever
	// committed.
	Head(ctx context.Context, ref QueueRef) (head []byte, ok bool, err error)
	// Commit records head as ref's head (nil deletes it), only if this
	// node still owns ref at the epoch given. ErrFenced (wrapped) when it
	// does not; drivers.ErrUnavailable when the coordinator cannot be
	// reached (nothing is known to be committed then).
	Commit(ctx context.Context, ref QueueRef, epoch int64, head []byte) error
}

// ErrNotOwner: in cluster mode, a request reached a node that does not own
// the queue (the server forwards before that; this is the race where
// ownership moved in between). Retry-able.
var ErrNotOwner = errors.New("this node does not own the queue")

// ErrClusterQueue: a single node (no fence) found a queue that a cluster
// wrote; only a cluster node can read it (its head is in etcd).
var ErrClusterQueue = errors.New("the queue was written in cluster mode: serve this store with -etcd")

// head is a queue's committed state in cluster mode (see Fence).
type head struct {
	Gen string `json:"gen"`
	// Snap is the snapshot recovery starts from (0: none).
	Snap uint64 `json:"snap,omitempty"`
	// Log is the last committed log object (0: none).
	Log uint64 `json:"log,omitempty"`
	// Skip lists log numbers above Snap that must never be read: each
	// one a stale owner may have written without committing it.
	Skip []uint64 `json:"skip,omitempty"`
	// Created (unix nanoseconds) and Meta are the queue's creation time
	// and metadata. The catalog entry keeps a copy for listings; this one
	// is fenced like the rest, so a stale owner cannot change it.
	Created int64           `json:"created,omitempty"`
	Meta    json.RawMessage `json:"meta,omitempty"`
}

// maxSkip bounds Skip: a head that names more skipped logs than this is
// refused as corrupt (each ownership change adds one until the next
// snapshot, which drops them).
const maxSkip = 4096

func encodeHead(h head) []byte {
	data, err := json.Marshal(h)
	if err != nil {
		panic(err) // a struct of strings and numbers always encodes
	}
	return data
}

// decodeHead reads a head back and checks it: a valid generation, Skip
// ascending, between Snap and Log+1 and bounded.
func decodeHead(data []byte) (head, error) {
	var h head
	if err := json.Unmarshal(data, &h); err != nil {
		return head{}, fmt.Errorf("%w: head: %v", errCorrupt, err)
	}
	if !validGen(h.Gen) {
		return head{}, fmt.Errorf("%w: head: generation %q", errCorrupt, h.Gen)
	}
	if h.Snap > h.Log {
		return head{}, fmt.Errorf("%w: head: snapshot %d after log %d", errCorrupt, h.Snap, h.Log)
	}
	if h.Meta != nil && !isJSONObject(h.Meta) {
		return head{}, fmt.Errorf("%w: head: metadata is not a JSON object", errCorrupt)
	}
	if len(h.Skip) > maxSkip {
		return head{}, fmt.Errorf("%w: head: %d skipped logs", errCorrupt, len(h.Skip))
	}
	for i, s := range h.Skip {
		if s <= h.Snap || s > h.Log+1 || i > 0 && s <= h.Skip[i-1] {
			return head{}, fmt.Errorf("%w: head: skipped log %d out of order", errCorrupt, s)
		}
	}
	return h, nil
}

// skipped reports whether log seq is one the head says never to read.
func (h head) skipped(seq uint64) bool {
	_, found := slices.BinarySearch(h.Skip, seq)
	return found
}

// withSnap returns h starting from snapshot snap: skipped logs at or below
// it are dropped, as recovery never reads below the snapshot.
func (h head) withSnap(snap uint64) head {
	h.Snap = snap
	i := 0
	for i < len(h.Skip) && h.Skip[i] <= snap {
		i++
	}
	h.Skip = slices.Clone(h.Skip[i:])
	return h
}

// isJSONObject reports whether raw is a JSON object.
func isJSONObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}
