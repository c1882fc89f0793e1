package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cistern-mq/cistern/drivers"
)

// secret is the key of the cluster's shared secret.
func (k keys) secret() string { return k.prefix + "secret" }

// Secret returns the cluster's shared secret, which signs the requests
// nodes make to each other (DeadLetters). The first node that asks makes
// it (32 random bytes) in a transaction that only creates it; every other
// node reads the same one. Whoever can read etcd's keys can read it, as
// they could read everything else the cluster keeps there.
func (n *Node) Secret(ctx context.Context) ([]byte, error) {
	k := n.keys.secret()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	fresh := hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, fresh)).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return nil, fmt.Errorf("%w: cluster: read the cluster secret: %v", drivers.ErrUnavailable, err)
	}
	if resp.Succeeded {
		return []byte(fresh), nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || len(kvs[0].Value) < 32 {
		return nil, fmt.Errorf("cluster: the cluster secret at %s is missing or too short", k)
	}
	return kvs[0].Value, nil
}

// clusterID is the key of the cluster's id.
func (k keys) clusterID() string { return k.prefix + "id" }

// ID returns the cluster's id, made by the first node that asks (as
// Secret). The stores a cluster serves record it (placement's
// BindCluster), so that a node pointed at another etcd, or at an etcd
// whose data was lost, refuses to start instead of reading every queue as
// empty.
func (n *Node) ClusterID(ctx context.Context) (string, error) {
	k := n.keys.clusterID()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	fresh := hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, fresh)).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return "", fmt.Errorf("%w: cluster: read the cluster id: %v", drivers.ErrUnavailable, err)
	}
	if resp.Succeeded {
		return fresh, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || len(kvs[0].Value) == 0 {
		return "", fmt.Errorf("cluster: the cluster id at %s is missing", k)
	}
	return string(kvs[0].Value), nil
}
