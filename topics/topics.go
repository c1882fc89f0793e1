// Package topics names Zaqar v2 topics in the engine's queue namespace.
//
// A topic is stored as a queue (package index) whose name is the topic's
// with Prefix in front. Contracts:
//   - No queue name the API accepts starts with '~' (queue names are
//     [a-zA-Z0-9_.-]+), so a topic never collides with a queue of the same
//     name, unlike Zaqar's Swift driver, which shares one container
//     namespace between them.
//   - '~' sorts after every byte a queue name may hold, so in the engine's
//     by-name listing of a project all queues come first and all topics
//     after them: each kind is one contiguous run, and a listing of one
//     kind stops at the first name of the other.
//   - A stored name holds no '/', so it fits every key form a ref key
//     appears in (index.RefKey, package notify's keys).
//
// This is the only place that knows the prefix.
package topics

import (
	"strings"

	"github.com/cistern-mq/cistern/index"
)

// Prefix starts the stored name of every topic. Stores keep it: changing
// it orphans every existing topic.
const Prefix = "~t:"

// Ref is the engine's ref of topic name in project.
func Ref(project, name string) index.QueueRef {
	return index.QueueRef{Project: project, Name: Prefix + name}
}

// Is reports whether a stored queue name is a topic's.
func Is(stored string) bool { return strings.HasPrefix(stored, Prefix) }

// Name is the topic name of a stored name, and whether it is a topic's.
func Name(stored string) (string, bool) { return strings.CutPrefix(stored, Prefix) }

// Display is the name a client knows ref by: the topic's name for a topic,
// the queue's name otherwise.
func Display(ref index.QueueRef) string {
	if n, ok := Name(ref.Name); ok {
		return n
	}
	return ref.Name
}

// Marker is the engine listing marker that lists the topics after topic
// name marker ("" lists from the first topic).
func Marker(marker string) string { return Prefix + marker }
