package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
)

// DeadLetterPath is where a node takes the messages other nodes move to a
// dead-letter queue it owns. Only nodes of the cluster can post there: each
// request is signed with the cluster's secret.
const DeadLetterPath = "/cluster/v1/dead-letters"

// signatureHeader carries the hex HMAC-SHA256 of the request body under
// the cluster's secret.
const signatureHeader = "X-Cistern-Cluster-Signature"

// maxMovedBytes bounds a moved message's request: a message body is at
// most a few hundred KiB (the server's limits), with room for the rest.
const maxMovedBytes = 4 << 20

// ownerFinder says who owns a queue (Node.Owner).
type ownerFinder interface {
	Owner(project, queue string) (self bool, owner string)
}

// DeadLetters posts the messages a queue moves to its dead-letter queue
// (index.DeadLetterPoster) when that queue may be owned by another node:
// to the local poster when this node owns it, else to its owner's
// DeadLetterPath. Each move carries its origin, so the owner posts it once
// however often it is retried.
type DeadLetters struct {
	owners ownerFinder
	local  index.DeadLetterPoster
	secret []byte
	client *http.Client
}

// NewDeadLetters returns a poster that routes to owners, with local as
// this node's own poster (the placement router) and secret the cluster's.
func NewDeadLetters(owners ownerFinder, local index.DeadLetterPoster, secret []byte) *DeadLetters {
	return &DeadLetters{owners: owners, local: local, secret: secret, client: &http.Client{Timeout: 10 * time.Second}}
}

// movedMessage is the body of a request to DeadLetterPath.
type movedMessage struct {
	Project string          `json:"project"`
	Queue   string          `json:"queue"`
	Client  string          `json:"client_id"`
	Body    json.RawMessage `json:"body"`
	TTL     int64           `json:"ttl"`
	Delay   int64           `json:"delay,omitempty"`
	Origin  string          `json:"origin"`
}

// PostMoved posts msg to ref, here or on its owner.
func (d *DeadLetters) PostMoved(ctx context.Context, ref index.QueueRef, clientID string, msg index.NewMessage, origin string) (string, error) {
	self, owner := d.owners.Owner(ref.Project, ref.Name)
	if self {
		return d.local.PostMoved(ctx, ref, clientID, msg, origin)
	}
	if owner == "" {
		return "", fmt.Errorf("%w: %s has no owner yet", drivers.ErrUnavailable, ref)
	}
	body, err := json.Marshal(movedMessage{Project: ref.Project, Queue: ref.Name, Client: clientID,
		Body: msg.Body, TTL: msg.TTL, Delay: msg.Delay, Origin: origin})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, owner+DeadLetterPath, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signatureHeader, d.sign(body))
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: moving to %s on %s: %v", drivers.ErrUnavailable, ref, owner, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: moving to %s on %s: %s %s", drivers.ErrUnavailable, ref, owner, resp.Status, bytes.TrimSpace(data))
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("%w: moving to %s on %s: answer %q", drivers.ErrUnavailable, ref, owner, data)
	}
	return out.ID, nil
}

func (d *DeadLetters) sign(body []byte) string {
	m := hmac.New(sha256.New, d.secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Handler serves DeadLetterPath: a signed move from another node, posted
// to the local poster. Answers: 200 {"id"}; 403 for a bad signature; 400
// for a body that does not decode; 503 when the post fails (this node no
// longer owns the queue, or its store is down): the sender retries.
func (d *DeadLetters) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"title": "Method not allowed", "description": "POST only."})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMovedBytes))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"title": "Invalid request", "description": "The body could not be read."})
			return
		}
		got, err := hex.DecodeString(r.Header.Get(signatureHeader))
		want, _ := hex.DecodeString(d.sign(body))
		if err != nil || !hmac.Equal(got, want) {
			writeJSON(w, http.StatusForbidden, map[string]string{"title": "Forbidden", "description": "Only nodes of this cluster may post here."})
			return
		}
		var m movedMessage
		if err := json.Unmarshal(body, &m); err != nil || m.Queue == "" || m.Origin == "" || m.TTL < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"title": "Invalid request", "description": "A moved message needs a queue, an origin and a TTL."})
			return
		}
		id, err := d.local.PostMoved(r.Context(), index.QueueRef{Project: m.Project, Name: m.Queue}, m.Client,
			index.NewMessage{Body: m.Body, TTL: m.TTL, Delay: m.Delay}, m.Origin)
		if err != nil {
			status := http.StatusServiceUnavailable
			if errors.Is(err, index.ErrInvalidMessage) {
				status = http.StatusBadRequest
			}
			w.Header().Set("Retry-After", "1")
			writeJSON(w, status, map[string]string{"title": "Not posted", "description": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
