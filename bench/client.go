package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// MessageID and ClaimID are the server's ids, passed back verbatim.
type (
	MessageID string
	ClaimID   string
)

// Claim is the answer to a claim request. A claim that found nothing
// (204) has an empty ID and no messages.
type Claim struct {
	ID       ClaimID
	Messages []MessageID
}

// errDecode marks a success answer whose body could not be used.
var errDecode = errors.New("unexpected answer")

// StatusError is an HTTP answer other than the operation's success code.
// Title and Description come from Zaqar's {"title","description"} error
// body when there is one.
type StatusError struct {
	Op          Op
	Code        int
	Title       string
	Description string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.Op, e.Code)
	if e.Title != "" {
		msg += ": " + e.Title
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Client speaks the Zaqar v2 HTTP API as one client: it sends its own
// Client-ID on every request. Clients can share an *http.Client (and so
// its keep-alive connection pool); a Client is safe for concurrent use.
type Client struct {
	hc       *http.Client
	base     string // scheme://host[:port][/prefix], no trailing slash
	project  string
	token    string
	clientID string
}

// NewClient returns a client of the endpoint at base (for example
// http://127.0.0.1:8888) for the given project, with a fresh random
// Client-ID. token, when not empty, is sent as X-Auth-Token.
func NewClient(hc *http.Client, base, project, token string) *Client {
	return &Client{
		hc:       hc,
		base:     strings.TrimRight(base, "/"),
		project:  project,
		token:    token,
		clientID: newUUID(),
	}
}

// ClientID returns the Client-ID header value this client sends.
func (c *Client) ClientID() string { return c.clientID }

// newUUID returns a random (version 4) UUID in its canonical form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (c *Client) queuePath(q string, rest ...string) string {
	return "/v2/queues/" + url.PathEscape(q) + strings.Join(rest, "")
}

// do sends one request and returns the response (its body already
// closed), with the body decoded into out when out is not nil and the
// status is one of ok. Any other status is a *StatusError. The body is
// always drained, so that the connection goes back to the pool.
func (c *Client) do(ctx context.Context, op Op, method, pathQuery string, body []byte, out any, ok ...int) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+pathQuery, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Client-ID", c.clientID)
	req.Header.Set("X-Project-ID", c.project)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	for _, code := range ok {
		if resp.StatusCode != code {
			continue
		}
		if out != nil && code != http.StatusNoContent {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				return resp, fmt.Errorf("%s: %w: the %d answer: %w", op, errDecode, code, err)
			}
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp, nil
	}
	se := &StatusError{Op: op, Code: resp.StatusCode}
	var wire struct{ Title, Description string }
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&wire) == nil {
		se.Title, se.Description = wire.Title, wire.Description
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp, se
}

// CreateQueue creates queue q with PUT; created is false when it existed
// already (204).
func (c *Client) CreateQueue(ctx context.Context, q string) (created bool, err error) {
	resp, err := c.do(ctx, OpQueue, http.MethodPut, c.queuePath(q), nil, nil, http.StatusCreated, http.StatusNoContent)
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusCreated, nil
}

// DeleteQueue deletes queue q.
func (c *Client) DeleteQueue(ctx context.Context, q string) error {
	_, err := c.do(ctx, OpQueue, http.MethodDelete, c.queuePath(q), nil, nil, http.StatusNoContent)
	return err
}

// PostMessages posts a pre-encoded {"messages": [...]} document. The
// answer's body (the new messages' hrefs) is not read.
func (c *Client) PostMessages(ctx context.Context, q string, doc []byte) error {
	_, err := c.do(ctx, OpPost, http.MethodPost, c.queuePath(q, "/messages"), doc, nil, http.StatusCreated)
	return err
}

// ClaimMessages claims up to limit messages for ttl seconds with the
// given grace; a ttl or grace of 0 leaves it to the server's default.
func (c *Client) ClaimMessages(ctx context.Context, q string, limit, ttl, grace int) (Claim, error) {
	body := claimDoc(ttl, grace)
	var out struct {
		Messages []struct {
			ID   MessageID `json:"id"`
			Href string    `json:"href"`
		} `json:"messages"`
	}
	resp, err := c.do(ctx, OpClaim, http.MethodPost, c.queuePath(q, "/claims?limit="+strconv.Itoa(limit)), body, &out, http.StatusCreated, http.StatusNoContent)
	if err != nil || resp.StatusCode == http.StatusNoContent {
		return Claim{}, err
	}
	var cl Claim
	// The Location header names the claim (/v2/queues/q/claims/cid); so
	// does each message's href (…?claim_id=cid), for a server that
	// leaves the header out.
	if loc := resp.Header.Get("Location"); loc != "" {
		cl.ID = ClaimID(path.Base(loc))
	}
	for _, m := range out.Messages {
		cl.Messages = append(cl.Messages, m.ID)
		if u, err := url.Parse(m.Href); cl.ID == "" && err == nil {
			cl.ID = ClaimID(u.Query().Get("claim_id"))
		}
	}
	if cl.ID == "" && len(cl.Messages) > 0 {
		return Claim{}, fmt.Errorf("%s: %w: the 201 answer names no claim id", OpClaim, errDecode)
	}
	return cl, nil
}

func claimDoc(ttl, grace int) []byte {
	var fields []string
	if ttl > 0 {
		fields = append(fields, `"ttl": `+strconv.Itoa(ttl))
	}
	if grace > 0 {
		fields = append(fields, `"grace": `+strconv.Itoa(grace))
	}
	return []byte("{" + strings.Join(fields, ", ") + "}")
}

// DeleteMessage deletes one claimed message with its claim id.
func (c *Client) DeleteMessage(ctx context.Context, q string, id MessageID, claim ClaimID) error {
	p := c.queuePath(q, "/messages/", url.PathEscape(string(id)), "?claim_id=", url.QueryEscape(string(claim)))
	_, err := c.do(ctx, OpDelete, http.MethodDelete, p, nil, nil, http.StatusNoContent)
	return err
}

// PopMessages deletes up to n messages with DELETE ?pop=n and returns how
// many came back.
func (c *Client) PopMessages(ctx context.Context, q string, n int) (int, error) {
	var out struct {
		Messages []json.RawMessage `json:"messages"`
	}
	_, err := c.do(ctx, OpPop, http.MethodDelete, c.queuePath(q, "/messages?pop="+strconv.Itoa(n)), nil, &out, http.StatusOK)
	return len(out.Messages), err
}

// ListMessages lists the first page of up to limit messages, including
// this client's own (echo=true), and returns how many came back.
func (c *Client) ListMessages(ctx context.Context, q string, limit int) (int, error) {
	var out struct {
		Messages []json.RawMessage `json:"messages"`
	}
	_, err := c.do(ctx, OpList, http.MethodGet, c.queuePath(q, "/messages?echo=true&limit="+strconv.Itoa(limit)), nil, &out, http.StatusOK)
	return len(out.Messages), err
}

// errorClass names an error for the per-operation error table: the HTTP
// status for a *StatusError, otherwise "timeout", "decode" or "net".
func errorClass(err error) string {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return strconv.Itoa(se.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, errDecode):
		return "decode"
	default:
		return "net"
	}
}
