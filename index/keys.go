package index

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// The keys of a pool's store, all in one place (codec.go has the format of
// the log and snapshot objects, docs/architecture.md the long form):
//
//	cistern-control/            the control container
//	  catalog/<ref key>         catalogEntry (JSON): the queue exists, as generation <gen>
//	  trash/<gen>               a deleted queue whose container is still being emptied
//	  journal/<seq>             one group commit of the whole node: sections of many queues
//	  journal-start             the oldest journal object recovery must read (JSON)
//	q-<gen>/                    one container per queue generation
//	  log/<seq>                 one group commit of the queue alone; <seq> is 20 zero-padded digits
//	  body/<seq>                bodies a fold copied out of the journal
//	  snap/<seq>                the queue's index as of log <seq>
//
// A ref key is "<escaped project>/<queue>": the project with "%" and "/"
// escaped ("" is "%"), so that one project's queues are one prefix and list
// by name. Package placement keeps its own records in the same control
// container under its own prefixes, keyed by RefKey too.
//
// Existing stores must keep loading: keys_test.go pins these forms.

// ControlContainer is the container of the catalog, the trash list and the
// records of package placement.
const ControlContainer = "cistern-control"

const (
	controlContainer = ControlContainer
	catalogPrefix    = "catalog/"
	trashPrefix      = "trash/"
	containerPrefix  = "q-"
	logPrefix        = "log/"
	snapPrefix       = "snap/"
	bodyPrefix       = "body/"
	journalPrefix    = "journal/"
	journalStartKey  = "journal-start"
)

// RefKey is "<escaped project>/<queue>", the part of a key that names a
// queue.
func RefKey(r QueueRef) string { return escapeProject(r.Project) + "/" + r.Name }

// ParseRefKey reads a RefKey back; false if k is not one. Only the escaping
// RefKey writes is taken ("%41" is not "A"), so that a key names one queue
// and that queue's key is k.
func ParseRefKey(k string) (QueueRef, bool) {
	i := strings.IndexByte(k, '/')
	if i < 0 {
		return QueueRef{}, false
	}
	project, err := unescapeProject(k[:i])
	if err != nil || escapeProject(project) != k[:i] {
		return QueueRef{}, false
	}
	return QueueRef{Project: project, Name: k[i+1:]}, true
}

func escapeProject(p string) string {
	if p == "" {
		return "%"
	}
	return strings.NewReplacer("%", "%25", "/", "%2F").Replace(p)
}

func unescapeProject(s string) (string, error) {
	if s == "%" {
		return "", nil
	}
	return url.PathUnescape(s)
}

// catalogKey is the catalog entry of a queue.
func catalogKey(r QueueRef) string { return catalogPrefix + RefKey(r) }

// catalogProjectPrefix is the prefix of every catalog entry of a project.
func catalogProjectPrefix(project string) string { return catalogPrefix + escapeProject(project) + "/" }

// queueContainer is the container of one queue generation.
func queueContainer(gen string) string { return containerPrefix + gen }

func logKey(seq uint64) string  { return fmt.Sprintf("%s%020d", logPrefix, seq) }
func snapKey(seq uint64) string { return fmt.Sprintf("%s%020d", snapPrefix, seq) }

// bodyObjectKey is a body object of a queue, written by a fold (fold.go).
func bodyObjectKey(seq uint64) string { return fmt.Sprintf("%s%020d", bodyPrefix, seq) }

// journalKey is one object of the node's journal (journal.go), in the
// control container.
func journalKey(seq journalSeq) string { return fmt.Sprintf("%s%020d", journalPrefix, uint64(seq)) }

// parseSeqKey reads the sequence of a log or snapshot key with prefix.
func parseSeqKey(key, prefix string) (uint64, bool) {
	if !strings.HasPrefix(key, prefix) {
		return 0, false
	}
	v, err := strconv.ParseUint(key[len(prefix):], 10, 64)
	return v, err == nil
}

// catalogEntry is what the catalog holds about one queue.
type catalogEntry struct {
	Gen      string          `json:"gen"`
	Created  int64           `json:"created"`
	Metadata json.RawMessage `json:"metadata"`
	// Snap is the newest snapshot recorded (0: none yet), so that loading
	// a queue reads it directly instead of listing snapshots. Entries
	// written before it existed, and adopted ones, have none (nil): their
	// snapshots are found by listing.
	Snap *uint64 `json:"snap,omitempty"`
	// Folded says the recorded snapshot was written by a fold of the
	// node's journal (fold.go): no log object follows it, so a load reads
	// none. An engine without the journal clears it before writing logs.
	Folded bool `json:"folded,omitempty"`
	// Cluster marks an entry written in cluster mode, where the queue's
	// committed head (fence.go), not this entry, says whether it exists
	// and where it starts from: without a head, the entry is what is
	// left of a create or a delete that did not finish.
	Cluster bool `json:"cluster,omitempty"`
	// Bare says the queue's container may not exist yet: an engine with
	// the node's journal makes a queue with its catalog entry alone, and
	// its container at its first fold (or migration, or when an engine
	// without the journal loads it). Nothing of a bare queue is in its
	// container but what a fold wrote before its record was lost, so a
	// load reads no log there.
	Bare bool `json:"bare,omitempty"`
}

// decodeCatalogEntry reads a catalog entry. The generation names the
// queue's container and its first 8 digits end every message id, so one
// that is not at least 8 lowercase hex digits is refused as corrupt rather
// than trusted.
func decodeCatalogEntry(data []byte) (catalogEntry, error) {
	var ent catalogEntry
	if err := json.Unmarshal(data, &ent); err != nil {
		return catalogEntry{}, fmt.Errorf("%w: catalog entry: %v", errCorrupt, err)
	}
	if !validGen(ent.Gen) {
		return catalogEntry{}, fmt.Errorf("%w: catalog entry: generation %q", errCorrupt, ent.Gen)
	}
	return ent, nil
}

// validGen reports whether g is a generation newID could have made (it
// makes 32 digits; anything from 8 to 64 is taken).
func validGen(g string) bool {
	if len(g) < 8 || len(g) > 64 {
		return false
	}
	for i := 0; i < len(g); i++ {
		if c := g[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
