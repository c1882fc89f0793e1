package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server/wire"
)

// formatMessage is Zaqar's format_message_v1_1: the href carries
// ?claim_id= while the message is claimed.
func (s *Server) formatMessage(base string, m index.Message, now time.Time) wire.Message {
	href := base + "/messages/" + m.ID
	if m.ClaimID != "" {
		href += "?claim_id=" + url.QueryEscape(m.ClaimID)
	}
	return wire.Message{ID: m.ID, Href: href, TTL: m.TTL, Age: ageSeconds(now, m.Created), Body: m.Body}
}

func (s *Server) formatMessages(base string, ms []index.Message) []wire.Message {
	now := s.now()
	out := make([]wire.Message, len(ms))
	for i, m := range ms {
		out[i] = s.formatMessage(base, m, now)
	}
	return out
}

func (s *Server) tooLargePost(limit int64, queueLimit int64) func() error {
	return func() error {
		if queueLimit > 0 && queueLimit < s.lim.MaxMessagesPostSize {
			return badAPI(fmt.Sprintf("Message collection size is too large. The max size for current queue is %d. "+
				"It is calculated by max size = min(max_messages_post_size_config: %d, max_messages_post_size_queue: %d).",
				limit, s.lim.MaxMessagesPostSize, queueLimit))
		}
		return badAPI(fmt.Sprintf("Message collection size is too large. Max size %d", s.lim.MaxMessagesPostSize))
	}
}

// postMessages answers POST /v2/queues/{q}/messages, creating the queue if
// needed. The size limits are checked before the body is read: first the
// server's, then the queue's _max_messages_post_size.
func (s *Server) postMessages(rq *request) (reply, error) {
	if rq.r.ContentLength > s.lim.MaxMessagesPostSize {
		return reply{}, s.tooLargePost(s.lim.MaxMessagesPostSize, 0)()
	}
	info, _, err := s.eng.Queue(rq.ctx(), rq.ref())
	if err != nil {
		return reply{}, err
	}
	set := settings(info.Metadata)
	limit := s.lim.MaxMessagesPostSize
	if set.MaxPostSize > 0 && set.MaxPostSize < limit {
		limit = set.MaxPostSize
	}
	data, err := readBody(rq, limit, s.tooLargePost(limit, set.MaxPostSize))
	if err != nil {
		return reply{}, err
	}
	posted, err := wire.DecodePostMessages(data)
	if err != nil {
		return reply{}, err
	}
	// The answer names every id (the body and the Location header), so the
	// count is bounded too, before anything is committed: 256 KiB of tiny
	// messages made a Location header of 596 KB that clients and proxies
	// refuse after the post had succeeded, and they retried into duplicates.
	if len(posted) > s.lim.MaxMessagesPerPost {
		return reply{}, badAPI(fmt.Sprintf("Message collection may hold at most %d messages; this one holds %d.",
			s.lim.MaxMessagesPerPost, len(posted)))
	}
	defTTL := s.lim.DefaultMessageTTL
	if set.DefaultTTL > 0 {
		defTTL = set.DefaultTTL
	}
	msgs := make([]index.NewMessage, len(posted))
	for i, p := range posted {
		ttl, delay := defTTL, set.DefaultDelay
		if p.TTL != nil {
			ttl = *p.TTL
		}
		if p.Delay != nil {
			delay = *p.Delay
		}
		if ttl < s.lim.MinMessageTTL || ttl > s.lim.MaxMessageTTL {
			return reply{}, badAPI(fmt.Sprintf("The TTL for a message may not exceed %d seconds, and must be at least %d seconds long.",
				s.lim.MaxMessageTTL, s.lim.MinMessageTTL))
		}
		if delay < 0 || delay > s.lim.MaxMessageDelay {
			return reply{}, badAPI(fmt.Sprintf("The Delay TTL for a message may not exceed %d seconds,and must be at least 0 seconds long.",
				s.lim.MaxMessageDelay))
		}
		msgs[i] = index.NewMessage{Body: p.Body, TTL: ttl, Delay: delay}
	}
	ids, err := s.eng.Post(rq.ctx(), rq.ref(), rq.client, msgs)
	if err != nil {
		return reply{}, err
	}
	if s.notify != nil {
		s.notify.Posted(rq.ref())
	}
	s.wsPosted(rq.ref(), ids, msgs)
	base := rq.queuePath() + "/messages"
	res := wire.PostResult{Resources: make([]string, len(ids))}
	for i, id := range ids {
		res.Resources[i] = base + "/" + id
	}
	return reply{status: http.StatusCreated, body: res, location: base + "?ids=" + strings.Join(ids, ",")}, nil
}

// parseMarker reads a listing marker: the decimal Seq Cistern's links
// carry, or a message id (whose first 16 hex digits are its Seq). Anything
// else lists nothing, as a bad marker does on Zaqar's mongo store.
func parseMarker(s string) (uint64, bool) {
	if len(s) == 24 {
		if v, err := strconv.ParseUint(s[:16], 16, 64); err == nil {
			return v, true
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// getMessages answers GET /v2/queues/{q}/messages, by listing or by ?ids=.
func (s *Server) getMessages(rq *request) (reply, error) {
	if ids := rq.q.List("ids"); ids != nil {
		return s.getMessagesByID(rq, ids)
	}
	q := rq.q
	link, marker, limit, err := pageStart(q, s.lim.DefaultMessagesPerPage)
	if err != nil {
		return reply{}, err
	}
	opts := index.ListOptions{Limit: limit, ClientID: rq.client}
	if opts.Echo, err = boolParam(q, &link, "echo"); err != nil {
		return reply{}, err
	}
	if opts.IncludeClaimed, err = boolParam(q, &link, "include_claimed"); err != nil {
		return reply{}, err
	}
	if opts.IncludeDelayed, err = boolParam(q, &link, "include_delayed"); err != nil {
		return reply{}, err
	}
	if limit < 1 || limit > s.lim.MaxMessagesPerPage {
		return reply{}, badAPI(limitText(s.lim.MaxMessagesPerPage))
	}
	info, _, err := s.eng.Queue(rq.ctx(), rq.ref())
	if err != nil {
		return reply{}, err
	}
	if settings(info.Metadata).DefaultDelay == 0 {
		// Without a default delay Zaqar does not filter delayed messages.
		opts.IncludeDelayed = true
		link.set("include_delayed", "true")
	}
	out := wire.MessageList{Messages: []wire.Message{}, Links: []wire.Link{}}
	if marker != "" {
		seq, ok := parseMarker(marker)
		if !ok {
			return reply{body: out}, nil
		}
		opts.Marker = seq
	}
	msgs, err := s.eng.List(rq.ctx(), rq.ref(), opts)
	if err != nil {
		return reply{}, err
	}
	if len(msgs) > 0 {
		out.Messages = s.formatMessages(rq.queuePath(), msgs)
		link.set("marker", strconv.FormatUint(msgs[len(msgs)-1].Seq, 10))
		out.Links = []wire.Link{{Rel: "next", Href: rq.queuePath() + "/messages" + link.String()}}
	}
	return reply{body: out}, nil
}

func (s *Server) getMessagesByID(rq *request, ids []string) (reply, error) {
	if len(ids) > s.lim.MaxMessagesPerPage {
		return reply{}, badAPI(limitText(s.lim.MaxMessagesPerPage))
	}
	msgs, err := s.eng.GetMessages(rq.ctx(), rq.ref(), ids)
	if err != nil {
		return reply{}, err
	}
	if len(msgs) == 0 {
		return reply{}, notFound(fmt.Sprintf("No messages with IDs: %s found in the queue %s for project %s.",
			wire.PyList(ids), rq.queue(), rq.project))
	}
	return reply{body: wire.Messages{Messages: s.formatMessages(rq.queuePath(), msgs)}}, nil
}

// getMessage answers GET /v2/queues/{q}/messages/{id}.
func (s *Server) getMessage(rq *request) (reply, error) {
	msgs, err := s.eng.GetMessages(rq.ctx(), rq.ref(), []string{rq.vars["message_id"]})
	if err != nil {
		return reply{}, err
	}
	if len(msgs) == 0 {
		return reply{}, index.ErrMessageNotFound
	}
	return reply{body: s.formatMessage(rq.queuePath(), msgs[0], s.now())}, nil
}

// deleteMessage answers DELETE /v2/queues/{q}/messages/{id}[?claim_id=].
func (s *Server) deleteMessage(rq *request) (reply, error) {
	claimID, _ := rq.q.Get("claim_id")
	if err := s.eng.DeleteMessage(rq.ctx(), rq.ref(), rq.vars["message_id"], claimID); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}

// deleteMessages answers DELETE /v2/queues/{q}/messages?ids= (claims are
// not checked, as in Zaqar) and ?pop=.
func (s *Server) deleteMessages(rq *request) (reply, error) {
	ids := rq.q.List("ids")
	pop, hasPop, err := rq.q.Int("pop")
	if err != nil {
		return reply{}, err
	}
	switch {
	case hasPop && ids != nil:
		return reply{}, badAPI("pop and id params cannot be present together in the delete request.")
	case !hasPop && ids == nil:
		return reply{}, badAPI(`The request should have either "ids" or "pop" parameter in the request, to be able to delete.`)
	case hasPop && (pop < 1 || pop > s.lim.MaxMessagesPerClaimOrPop):
		return reply{}, badAPI(fmt.Sprintf("Pop value must be at least 1 and may not be greater than %d.", s.lim.MaxMessagesPerClaimOrPop))
	case ids != nil && len(ids) > s.lim.MaxMessagesPerPage:
		return reply{}, badAPI(fmt.Sprintf("ids parameter should have at least 1 and not greater than %d values.", s.lim.MaxMessagesPerPage))
	}
	if ids != nil {
		if err := s.eng.DeleteMessages(rq.ctx(), rq.ref(), ids); err != nil {
			return reply{}, err
		}
		return reply{status: http.StatusNoContent}, nil
	}
	msgs, err := s.eng.Pop(rq.ctx(), rq.ref(), pop)
	if err != nil {
		return reply{}, err
	}
	now := s.now()
	res := wire.PopResult{Messages: make([]wire.PopMessage, len(msgs))}
	for i, m := range msgs {
		f := s.formatMessage(rq.queuePath(), m, now)
		res.Messages[i] = wire.PopMessage{ID: f.ID, Href: rq.queuePath() + "/messages/" + m.ID,
			TTL: f.TTL, Age: f.Age, Body: f.Body, ClaimCount: m.ClaimCount}
	}
	return reply{body: res}, nil
}
