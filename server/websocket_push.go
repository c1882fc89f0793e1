package server

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/cistern-mq/cistern/index"
)

// Pushes to subscribed sockets: a socket that sent subscription_create
// without a subscriber gets each message posted to the queue afterwards,
// as Zaqar's notification payload, through a bounded backlog of its own.

// wsPushBacklog is how many pushed messages may wait for a slow socket;
// beyond it pushes are dropped (and counted), so a slow socket never slows
// posting down nor grows memory without bound.
const wsPushBacklog = 256

// wsSubID names a subscription of a socket to a queue.
type wsSubID string

// wsSub is a socket's subscription to a queue. It lives as long as the
// socket, as Zaqar deletes a socket's subscriptions when it closes.
type wsSub struct {
	id      wsSubID
	ref     index.QueueRef
	ttl     int64
	options json.RawMessage
	created time.Time
}

// wsHub knows the open sockets and which queues they subscribed to.
type wsHub struct {
	mu    sync.Mutex
	conns map[*wsConn]struct{}
	subs  map[index.QueueRef]map[*wsConn]struct{}
}

func newWSHub() *wsHub {
	return &wsHub{conns: map[*wsConn]struct{}{}, subs: map[index.QueueRef]map[*wsConn]struct{}{}}
}

func (h *wsHub) add(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns[c] = struct{}{}
}

// remove forgets c and its subscriptions.
func (h *wsHub) remove(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
	for ref, m := range h.subs {
		delete(m, c)
		if len(m) == 0 {
			delete(h.subs, ref)
		}
	}
}

func (h *wsHub) subscribe(c *wsConn, ref index.QueueRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.subs[ref]
	if m == nil {
		m = map[*wsConn]struct{}{}
		h.subs[ref] = m
	}
	m[c] = struct{}{}
}

// unsubscribe drops c from ref unless another of c's subscriptions still
// names ref (the caller has removed the one it drops from c.subs).
func (h *wsHub) unsubscribe(c *wsConn, ref index.QueueRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unsubscribeLocked(c, ref)
}

func (h *wsHub) unsubscribeLocked(c *wsConn, ref index.QueueRef) {
	c.subsMu.Lock()
	still := false
	for _, s := range c.subs {
		still = still || s.ref == ref
	}
	c.subsMu.Unlock()
	if still {
		return
	}
	if m := h.subs[ref]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(h.subs, ref)
		}
	}
}

// posted pushes new messages of ref to the sockets subscribed to it. It
// never blocks: a socket whose backlog is full misses them.
func (h *wsHub) posted(ref index.QueueRef, ids []string, msgs []index.NewMessage, onDrop func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	targets := h.subs[ref]
	if len(targets) == 0 {
		return
	}
	for i, id := range ids {
		if i >= len(msgs) {
			break
		}
		frame := wsNotification(ref, id, msgs[i])
		for c := range targets {
			select {
			case c.push <- frame:
			default:
				onDrop()
			}
		}
	}
}

// closeAll closes every socket; their handlers then return.
func (h *wsHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		_ = c.ws.Close()
	}
}

// wsNotification is the frame pushed to a subscribed socket for one new
// message: Zaqar's notification payload, as webhooks get it.
func wsNotification(ref index.QueueRef, id string, m index.NewMessage) []byte {
	body := m.Body
	if len(body) == 0 {
		body = json.RawMessage("null")
	}
	data, _ := encodeJSON(struct {
		ID          string          `json:"id"`
		Body        json.RawMessage `json:"body"`
		TTL         int64           `json:"ttl"`
		Age         int64           `json:"age"`
		QueueName   string          `json:"queue_name"`
		MessageType string          `json:"Message_Type"`
	}{id, body, m.TTL, 0, ref.Name, "Notification"})
	return data
}

// wsPosted tells the sockets subscribed to ref of new messages.
func (s *Server) wsPosted(ref index.QueueRef, ids []string, msgs []index.NewMessage) {
	s.ws.posted(ref, ids, msgs, func() { s.metrics.wsDropped.Inc() })
}
