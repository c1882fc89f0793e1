package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server/wire"
)

func limitText(max int) string {
	return fmt.Sprintf("Limit must be at least 1 and may not be greater than %d.", max)
}

// linkQuery renders query parameters in the order given, as
// falcon.to_query_str renders Zaqar's kwargs.
type linkQuery []struct{ k, v string }

func (lq *linkQuery) set(k, v string) {
	for i := range *lq {
		if (*lq)[i].k == k {
			(*lq)[i].v = v
			return
		}
	}
	*lq = append(*lq, struct{ k, v string }{k, v})
}

func (lq linkQuery) String() string {
	if len(lq) == 0 {
		return ""
	}
	parts := make([]string, len(lq))
	for i, p := range lq {
		parts[i] = url.QueryEscape(p.k) + "=" + url.QueryEscape(p.v)
	}
	return "?" + strings.Join(parts, "&")
}

// pageStart reads a listing's marker and limit (the default when absent),
// recording what the request sent for its next link.
func pageStart(q wire.Query, defaultLimit int) (link linkQuery, marker string, limit int, err error) {
	marker, hasMarker := q.Get("marker")
	if hasMarker {
		link.set("marker", marker)
	}
	limit, hasLimit, err := q.Int("limit")
	if err != nil {
		return nil, "", 0, err
	}
	if hasLimit {
		link.set("limit", strconv.Itoa(limit))
	} else {
		limit = defaultLimit
	}
	return link, marker, limit, nil
}

// boolParam reads a boolean parameter (false when absent), recording it
// for the next link when sent.
func boolParam(q wire.Query, link *linkQuery, name string) (bool, error) {
	v, ok, err := q.Bool(name)
	if ok && err == nil {
		link.set(name, strconv.FormatBool(v))
	}
	return v, err
}

// listStart is what a listing of queues or topics reads first: the page,
// detailed and name, in the order its next link repeats them.
type listStart struct {
	link     linkQuery
	marker   string
	limit    int
	detailed bool
	name     string
}

func (s *Server) listStart(q wire.Query) (listStart, error) {
	var ls listStart
	var err error
	if ls.link, ls.marker, ls.limit, err = pageStart(q, s.lim.DefaultQueuesPerPage); err != nil {
		return ls, err
	}
	if ls.detailed, err = boolParam(q, &ls.link, "detailed"); err != nil {
		return ls, err
	}
	if name, ok := q.Get("name"); ok {
		ls.name = name
		ls.link.set("name", name)
	}
	return ls, nil
}

// listFilters checks the listing's limit and takes every parameter not
// in known as a metadata filter, as Zaqar does, repeating it in the link.
func (s *Server) listFilters(q wire.Query, ls *listStart, known map[string]bool) ([]filter, error) {
	if ls.limit < 1 || ls.limit > s.lim.MaxQueuesPerPage {
		return nil, badAPI(fmt.Sprintf("Limit must be at least 1 and no greater than %d.", s.lim.MaxQueuesPerPage))
	}
	var filters []filter
	for _, k := range q.Names() {
		if !known[k] {
			v, _ := q.Get(k)
			filters = append(filters, filter{k, v})
			ls.link.set(k, v)
		}
	}
	return filters, nil
}

// queueListParams are the known parameters of GET /v2/queues; any other is
// a metadata filter, as in Zaqar.
var queueListParams = map[string]bool{"marker": true, "limit": true, "detailed": true, "name": true, "with_count": true}

// listQueues answers GET /v2/queues. The name (substring) and metadata
// filters are applied here by reading on through the catalog, since the
// engine lists by name only.
func (s *Server) listQueues(rq *request) (reply, error) {
	ls, err := s.listStart(rq.q)
	if err != nil {
		return reply{}, err
	}
	withCount, err := boolParam(rq.q, &ls.link, "with_count")
	if err != nil {
		return reply{}, err
	}
	filters, err := s.listFilters(rq.q, &ls, queueListParams)
	if err != nil {
		return reply{}, err
	}
	link, marker, limit, detailed, name := ls.link, ls.marker, ls.limit, ls.detailed, ls.name

	queues, err := s.scanQueues(rq, queueNames, marker, limit, detailed, name, filters)
	if err != nil {
		return reply{}, err
	}
	out := wire.QueueList{Queues: make([]wire.QueueItem, 0, len(queues)), Links: []wire.Link{}}
	for _, qi := range queues {
		item := wire.QueueItem{Name: qi.Name, Href: "/v2/queues/" + qi.Name}
		if detailed {
			item.Metadata = s.withReservedDefaults(decodeStored(qi.Metadata))
		}
		out.Queues = append(out.Queues, item)
	}
	if len(queues) > 0 {
		link.set("marker", queues[len(queues)-1].Name)
		out.Links = []wire.Link{{Rel: "next", Href: "/v2/queues" + link.String()}}
	}
	if withCount {
		if out.Count, err = s.countQueues(rq); err != nil {
			return reply{}, err
		}
	}
	return reply{body: out}, nil
}

type filter struct{ key, value string }

// matches is Zaqar's metadata equality filter: a value that reads as an
// int is compared as one, otherwise as a string.
func (f filter) matches(meta wire.Object) bool {
	raw, ok := meta.Get(f.key)
	if !ok {
		return false
	}
	if n, isInt := wire.ParsePyInt(f.value); isInt {
		v, ok := wire.Int(raw)
		return ok && v == int64(n)
	}
	s, ok := wire.String(raw)
	return ok && s == f.value
}

// scanQueues lists up to limit queues (or topics: ns) after marker that
// pass the filters, by the names clients know them by.
func (s *Server) scanQueues(rq *request, ns nameSpace, marker string, limit int, detailed bool, name string, filters []filter) ([]index.QueueInfo, error) {
	marker = ns.marker(marker)
	if name == "" && len(filters) == 0 {
		qs, err := s.eng.ListQueues(rq.ctx(), rq.project, marker, limit, detailed)
		kept, _ := ns.keep(qs)
		return kept, err
	}
	var out []index.QueueInfo
	// Large pages: each listing may cost a read of the project's whole
	// catalog directory (fs), so a scan costs about ceil(n/scanPage) of
	// them for a project of n queues.
	page := max(limit, scanPage)
	for len(out) < limit {
		qs, err := s.eng.ListQueues(rq.ctx(), rq.project, marker, page, detailed || len(filters) > 0)
		if err != nil {
			return nil, err
		}
		if len(qs) == 0 {
			break
		}
		kept, end := ns.keep(qs)
		for _, qi := range kept {
			marker = ns.marker(qi.Name)
			if name != "" && !strings.Contains(qi.Name, name) {
				continue
			}
			if len(filters) > 0 {
				meta := decodeStored(qi.Metadata)
				ok := true
				for _, f := range filters {
					ok = ok && f.matches(meta)
				}
				if !ok {
					continue
				}
			}
			out = append(out, qi)
			if len(out) == limit {
				break
			}
		}
		if end {
			break
		}
	}
	return out, nil
}

// scanPage is how many queues a filter or count reads per listing.
const scanPage = 1000

// countQueues counts a project's queues by reading the project's whole
// catalog listing (never other projects') up to its topics; the engine
// keeps no count.
func (s *Server) countQueues(rq *request) (int, error) {
	n, marker := 0, ""
	for {
		qs, err := s.eng.ListQueues(rq.ctx(), rq.project, marker, scanPage, false)
		if err != nil {
			return 0, err
		}
		kept, end := queueNames.keep(qs)
		n += len(kept)
		if len(qs) == 0 || end {
			return n, nil
		}
		marker = qs[len(qs)-1].Name
	}
}

func (s *Server) readMetadataBody(rq *request, title string) ([]byte, error) {
	return readBody(rq, s.lim.MaxQueueMetadata, func() error {
		return badRequest(title, fmt.Sprintf("Queue metadata is too large. Max size: %d", s.lim.MaxQueueMetadata))
	})
}

// createQueue answers PUT /v2/queues/{q}: 201 when created, 204 when it
// existed (its metadata is then left alone, as every Zaqar driver does).
func (s *Server) createQueue(rq *request) (reply, error) {
	data, err := s.readMetadataBody(rq, wire.TitleInvalidAPI)
	if err != nil {
		return reply{}, err
	}
	var meta json.RawMessage
	if len(data) > 0 {
		obj, err := wire.DecodeMetadata(data)
		if err != nil {
			return reply{}, err
		}
		if msg := s.checkReserved(obj); msg != "" {
			return reply{}, badAPI(msg)
		}
		if meta, err = json.Marshal(obj); err != nil {
			return reply{}, err
		}
	}
	created, err := s.eng.CreateQueue(rq.ctx(), rq.ref(), meta)
	if err != nil {
		return reply{}, err
	}
	if !created {
		return reply{status: http.StatusNoContent, location: rq.queuePath()}, nil
	}
	return reply{status: http.StatusCreated, location: rq.queuePath(), raw: []byte{}}, nil
}

// getQueue answers GET /v2/queues/{q}: the metadata with the reserved
// defaults, also for a queue that does not exist.
func (s *Server) getQueue(rq *request) (reply, error) {
	info, _, err := s.eng.Queue(rq.ctx(), rq.ref())
	if err != nil {
		return reply{}, err
	}
	return reply{body: s.withReservedDefaults(decodeStored(info.Metadata))}, nil
}

// patchQueue answers PATCH /v2/queues/{q} (json-patch on /metadata/<key>).
func (s *Server) patchQueue(rq *request) (reply, error) {
	if rq.r.ContentLength > s.lim.MaxQueueMetadata {
		return reply{}, badBody(fmt.Sprintf("Queue metadata is too large. Max size: %d", s.lim.MaxQueueMetadata))
	}
	if mediaType(rq.r.Header.Get("Content-Type")) != wire.PatchContentType {
		return reply{}, &apiError{status: http.StatusUnsupportedMediaType,
			title: "Accepted media type for PATCH: {'Accept-Patch': '" + wire.PatchContentType + "'}."}
	}
	data, err := s.readMetadataBody(rq, wire.TitleInvalidBody)
	if err != nil {
		return reply{}, err
	}
	ops, err := wire.DecodePatch(data)
	if err != nil {
		return reply{}, err
	}
	info, exists, err := s.eng.Queue(rq.ctx(), rq.ref())
	if err != nil {
		return reply{}, err
	}
	if !exists {
		return reply{}, index.ErrQueueNotFound
	}
	meta := decodeStored(info.Metadata)
	for _, op := range ops {
		switch op.Op {
		case "add":
			meta.Set(op.Key, op.Value)
		case "replace":
			if _, ok := meta.Get(op.Key); !ok && !reservedOn(rq, op.Key) {
				return reply{}, &apiError{status: http.StatusConflict, title: "Resource conflict",
					description: "Can't replace non-existent object " + op.Key + "."}
			}
			meta.Set(op.Key, op.Value)
		case "remove":
			if !meta.Delete(op.Key) && !reservedOn(rq, op.Key) {
				return reply{}, &apiError{status: http.StatusConflict, title: "Resource conflict",
					description: "Can't remove non-existent object " + op.Key + "."}
			}
		}
	}
	if msg := s.checkReserved(meta); msg != "" {
		return reply{}, badBody(msg)
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return reply{}, err
	}
	if int64(len(raw)) > s.lim.MaxQueueMetadata {
		return reply{}, badBody(fmt.Sprintf("Queue metadata is too large. Max size: %d", s.lim.MaxQueueMetadata))
	}
	if err := s.eng.SetMetadata(rq.ctx(), rq.ref(), raw); err != nil {
		return reply{}, err
	}
	return reply{body: s.metadataView(rq, meta)}, nil
}

// deleteQueue answers DELETE /v2/queues/{q}, deleting the queue's
// subscriptions too: after the queue, so that a failure leaves
// subscriptions of a missing queue (delivering nothing) rather than a live
// queue without them.
func (s *Server) deleteQueue(rq *request) (reply, error) {
	if err := s.eng.DeleteQueue(rq.ctx(), rq.ref()); err != nil {
		return reply{}, err
	}
	if s.subs != nil {
		if err := s.subs.DeleteAll(rq.ctx(), rq.ref()); err != nil {
			return reply{}, err
		}
	}
	return reply{status: http.StatusNoContent}, nil
}

const statTimeFormat = "2006-01-02T15:04:05Z"

// queueStats answers GET /v2/queues/{q}/stats. Delayed messages count as
// free, as on Zaqar's mongo store: they are neither claimed nor gone.
func (s *Server) queueStats(rq *request) (reply, error) {
	st, err := s.eng.Stats(rq.ctx(), rq.ref())
	if err != nil {
		return reply{}, err
	}
	ms := wire.MessageStats{Claimed: st.Claimed, Free: st.Free + st.Delayed, Total: st.Total}
	now := s.now()
	stat := func(m *index.MessageStat) *wire.StatMessage {
		if m == nil || st.Total == 0 {
			return nil
		}
		return &wire.StatMessage{
			Age:     ageSeconds(now, m.Created),
			Created: m.Created.UTC().Format(statTimeFormat),
			Href:    rq.queuePath() + "/messages/" + m.ID,
		}
	}
	ms.Oldest, ms.Newest = stat(st.Oldest), stat(st.Newest)
	return reply{body: wire.Stats{Messages: ms}}, nil
}

func ageSeconds(now, then time.Time) int64 {
	return max(int64(now.Sub(then)/time.Second), 0)
}

// purgeQueue answers POST /v2/queues/{q}/purge. Purging subscriptions
// deletes all of them (Zaqar deletes only the first page of ten).
func (s *Server) purgeQueue(rq *request) (reply, error) {
	data, err := s.readSmallBody(rq)
	if err != nil {
		return reply{}, err
	}
	p, err := wire.DecodePurge(data)
	if err != nil {
		return reply{}, err
	}
	for _, t := range p.ResourceTypes {
		switch {
		case t == "messages":
			if err := s.eng.Purge(rq.ctx(), rq.ref()); err != nil {
				return reply{}, err
			}
		case t == "subscriptions" && s.subs != nil:
			if err := s.subs.DeleteAll(rq.ctx(), rq.ref()); err != nil {
				return reply{}, err
			}
		}
	}
	return reply{status: http.StatusNoContent}, nil
}
