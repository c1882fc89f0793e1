package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The websocket transport is Zaqar's: a client sends text frames
// {"action", "headers", "body"} and gets one answer frame per request,
// {"request": {...}, "body": ..., "headers": {"status": N}}, in order.
// Every action is turned into the HTTP request of the same operation and
// served by the public handler (websocket_actions.go), so header rules,
// limits, authentication, forwarding and the error mapper (errors.go) are
// the HTTP API's own. A subscription_create without a subscriber
// subscribes the socket itself: the queue's new messages are pushed to it
// as Zaqar's notification payloads (websocket_push.go).

// wsFrameSlack is what a frame may carry beyond the largest body the HTTP
// API takes (the envelope, headers and field names).
const wsFrameSlack = 64 << 10

// wsWriteTimeout bounds one write to a socket, so that a client that stops
// reading cannot hold the connection's writer forever.
const wsWriteTimeout = 10 * time.Second

// wsConn is one open socket.
type wsConn struct {
	s      *Server
	ws     *websocket.Conn
	id     string
	remote string
	host   string
	// token is the Keystone token an authenticate action validated; frames
	// without an X-Auth-Token of their own use it.
	token string

	writeMu sync.Mutex
	push    chan []byte

	subsMu sync.Mutex
	subs   map[wsSubID]wsSub
}

// WebsocketHandler serves Zaqar's websocket transport: give it a listener
// of its own (Zaqar's default port is 9000). Close closes its sockets.
func (s *Server) WebsocketHandler() http.Handler {
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader has answered 400
		}
		c := &wsConn{s: s, ws: ws, id: newUUID(), remote: r.RemoteAddr, host: r.Host,
			push: make(chan []byte, wsPushBacklog), subs: map[wsSubID]wsSub{}}
		s.ws.add(c)
		c.serve(r.Context())
	})
}

// frameLimit is the largest frame answered: the largest HTTP body plus
// the envelope. Up to twice that is read and refused with a 400; more
// closes the socket (close code 1009).
func (s *Server) frameLimit() int64 {
	return max(s.lim.MaxMessagesPostSize, s.lim.MaxSmallBody) + wsFrameSlack
}

// serve reads frames and answers them until the socket closes.
func (c *wsConn) serve(parent context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.pushLoop(ctx)
	}()
	defer func() {
		c.s.ws.remove(c)
		cancel()
		wg.Wait()
		_ = c.ws.Close()
	}()
	limit := c.s.frameLimit()
	c.ws.SetReadLimit(2 * limit)
	for {
		kind, rd, err := c.ws.NextReader()
		if err != nil {
			return
		}
		data, err := io.ReadAll(io.LimitReader(rd, limit+1))
		if err != nil {
			return
		}
		if int64(len(data)) > limit {
			if _, err := io.Copy(io.Discard, rd); err != nil {
				return
			}
			c.send(wsAnswer(nil, http.StatusBadRequest, wsErrorBody(badBody(
				"Frame is larger than "+itoa64(limit)+" bytes."))))
			continue
		}
		if kind != websocket.TextMessage {
			// Zaqar does not take binary frames.
			c.send(wsAnswer(nil, http.StatusBadRequest, map[string]string{"error": "Schema validation failed."}))
			continue
		}
		if err := c.send(c.handle(ctx, data)); err != nil {
			return
		}
	}
}

// pushLoop writes pushed notifications until ctx ends.
func (c *wsConn) pushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case frame := <-c.push:
			if c.write(frame) != nil {
				_ = c.ws.Close() // the reader then ends the connection
				return
			}
		}
	}
}

// send writes an answer frame.
func (c *wsConn) send(v any) error {
	data, err := encodeJSON(v)
	if err != nil {
		return err
	}
	return c.write(data)
}

func (c *wsConn) write(data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// wsRequestEcho is the "request" member of an answer: the frame as Zaqar
// read it.
type wsRequestEcho struct {
	Action  json.RawMessage `json:"action"`
	Body    json.RawMessage `json:"body"`
	Headers json.RawMessage `json:"headers"`
	API     string          `json:"api"`
}

// wsResponse is one answer frame.
type wsResponse struct {
	Request wsRequestEcho  `json:"request"`
	Body    any            `json:"body"`
	Headers map[string]any `json:"headers"`
}

// wsAnswer builds an answer to req (nil: a frame that could not be read).
func wsAnswer(req *wsRequestEcho, status int, body any) wsResponse {
	echo := wsRequestEcho{Action: json.RawMessage("null"), Body: json.RawMessage("{}"),
		Headers: json.RawMessage("{}"), API: "v2"}
	if req != nil {
		echo = *req
	}
	return wsResponse{Request: echo, Body: body, Headers: map[string]any{"status": status}}
}

// wsErrorBody is an error's body on the socket: Zaqar's "error" (what
// python-zaqarclient shows) beside the HTTP API's title and description.
func wsErrorBody(e *apiError) map[string]string {
	return map[string]string{"error": e.description, "title": e.title, "description": e.description}
}

// decodeFrame reads a frame's top level. A frame that is not a JSON object
// is Zaqar's 400 with the parser's message.
func decodeFrame(data []byte) (map[string]json.RawMessage, error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&top); err != nil {
		return nil, err
	}
	if top == nil {
		return nil, errors.New("the frame is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("extra data after the JSON object")
	}
	return top, nil
}

// wsRecorder keeps the HTTP answer of an action.
type wsRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *wsRecorder) Header() http.Header { return w.header }

func (w *wsRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *wsRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// discardWriter is the ResponseWriter of a request the socket serves
// itself: http.MaxBytesReader needs one, nothing is written to it.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
