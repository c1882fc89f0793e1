package cluster

import (
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cistern-mq/cistern/index"
)

// keys lays out the cluster's keys under the prefix (doc.go lists them).
// The watched range starts at members/ and runs to the end of the prefix:
// it holds members/, owners/ and ring, and not heads/, which sorts before.
type keys struct{ prefix string }

func (k keys) member(id NodeID) string { return k.prefix + "members/" + string(id) }
func (k keys) ring() string            { return k.prefix + "ring" }
func (k keys) owner(s Shard) string    { return k.prefix + "owners/" + strconv.FormatUint(uint64(s), 10) }
func (k keys) head(pool string, ref index.QueueRef) string {
	return k.prefix + "heads/" + pool + "/" + index.RefKey(ref)
}

func (k keys) watchStart() string { return k.prefix + "members/" }
func (k keys) watchEnd() string   { return clientv3.GetPrefixRangeEnd(k.prefix) }

// kind tells which of the watched keys key is, with its member id or shard.
func (k keys) parse(key string, shards int) (kind keyKind, id NodeID, s Shard) {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return keyOther, "", 0
	}
	if rest == "ring" {
		return keyRing, "", 0
	}
	if m, ok := strings.CutPrefix(rest, "members/"); ok && m != "" {
		return keyMember, NodeID(m), 0
	}
	if o, ok := strings.CutPrefix(rest, "owners/"); ok {
		n, err := strconv.ParseUint(o, 10, 32)
		if err == nil && n < uint64(shards) && strconv.FormatUint(n, 10) == o {
			return keyOwner, "", Shard(n)
		}
	}
	return keyOther, "", 0
}

type keyKind int

const (
	keyOther keyKind = iota
	keyMember
	keyRing
	keyOwner
)
