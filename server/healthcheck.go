package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server/wire"
)

// The admin GET /v2/health runs Zaqar's operation check: on a scratch queue
// of a scratch project, create it, post messages, claim them, list them,
// delete one with its claim, release the claim, delete the queue, timing
// each step. A step that fails gets a reference, logged with its error, and
// the steps that need it are skipped, as in Zaqar.

// healthMessages is how many messages the check posts (Zaqar posts 100;
// ten exercise the same paths at a tenth of the cost).
const healthMessages = 10

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// operationStatus runs the check and returns each step's status.
func (s *Server) operationStatus(ctx context.Context) map[string]wire.OperationStatus {
	out := map[string]wire.OperationStatus{}
	ref, ok := s.healthQueue()
	if !ok {
		// Cluster mode, and this node owns no shard now.
		r := "no-shard-owned"
		out["create_queue"] = wire.OperationStatus{Ref: &r}
		return out
	}
	step := func(name string, f func() error) bool {
		start := time.Now()
		err := f()
		st := wire.OperationStatus{Succeeded: err == nil, Seconds: time.Since(start).Seconds()}
		if err != nil {
			r := "req-" + randomHex(16)
			st.Ref = &r
			s.log.Warn().Err(err).Str("ref", r).Str("operation", name).Str("queue", ref.String()).Msg("health check step failed")
		}
		out[name] = st
		return err == nil
	}
	client := "health-" + randomHex(8)
	if !step("create_queue", func() error { _, err := s.eng.CreateQueue(ctx, ref, nil); return err }) {
		return out
	}
	defer step("delete_queue", func() error { return s.eng.DeleteQueue(context.WithoutCancel(ctx), ref) })
	msgs := make([]index.NewMessage, healthMessages)
	for i := range msgs {
		msgs[i] = index.NewMessage{Body: json.RawMessage(fmt.Sprintf(`{"event":"p_%d"}`, i)), TTL: 600}
	}
	if !step("post_messages", func() error { _, err := s.eng.Post(ctx, ref, client, msgs); return err }) {
		return out
	}
	var claim *index.Claim
	step("claim_messages", func() error {
		var err error
		claim, err = s.eng.Claim(ctx, ref, index.ClaimOptions{TTL: 60, Grace: 300, Limit: healthMessages})
		if err == nil && (claim == nil || len(claim.Messages) == 0) {
			err = fmt.Errorf("nothing to claim after posting %d messages", healthMessages)
		}
		return err
	})
	step("list_messages", func() error {
		_, err := s.eng.List(ctx, ref, index.ListOptions{Limit: healthMessages, Echo: true, ClientID: client, IncludeClaimed: true})
		return err
	})
	if claim != nil && len(claim.Messages) > 0 {
		step("delete_messages", func() error { return s.eng.DeleteMessage(ctx, ref, claim.Messages[0].ID, claim.ID) })
		step("delete_claim", func() error { return s.eng.ReleaseClaim(ctx, ref, claim.ID) })
	}
	return out
}

// healthQueue names the scratch queue: a random project and name, which in
// cluster mode must fall in a shard this node owns (the check runs here,
// not on another node).
func (s *Server) healthQueue() (index.QueueRef, bool) {
	project := randomHex(16)
	for range 256 {
		ref := index.QueueRef{Project: project, Name: "health-" + randomHex(8)}
		if s.cluster == nil {
			return ref, true
		}
		if self, _ := s.cluster.Owner(ref.Project, ref.Name); self {
			return ref, true
		}
	}
	return index.QueueRef{}, false
}
