package server

import (
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server/wire"
	"github.com/cistern-mq/cistern/topics"
)

// Topics (/v2/topics/...), Zaqar v2's fan-out: a topic is a queue without
// claims whose messages go to its subscribers. Each topic is stored as a
// queue under a name package topics gives it, which no queue name can
// take, so the topic and the queue of one name are two things. The topic
// routes (routes.go) carry {topic_name}: request.ref and queuePath then
// name the topic, and the queue handlers serve stats, purge, messages and
// subscriptions as they are. What differs from a queue is here: the
// listing, GET of a missing topic (404) and the reserved metadata shown.

// nameSpace is one kind of name in the engine's by-name listing of a
// project: queues, then topics (package topics), each one contiguous run.
type nameSpace int

const (
	queueNames nameSpace = iota
	topicNames
)

// marker is the engine's listing marker after the name a client knows.
func (ns nameSpace) marker(m string) string {
	if ns == topicNames {
		return topics.Marker(m)
	}
	return m
}

// keep returns the leading entries of a listing page that are of ns, by
// the names clients know them by, and whether the page ran past ns's run
// (so that nothing of ns follows).
func (ns nameSpace) keep(qs []index.QueueInfo) ([]index.QueueInfo, bool) {
	for i := range qs {
		name, ok := qs[i].Name, !topics.Is(qs[i].Name)
		if ns == topicNames {
			name, ok = topics.Name(qs[i].Name)
		}
		if !ok {
			return qs[:i], true
		}
		qs[i].Name = name
	}
	return qs, false
}

// topicReservedKeys are the reserved metadata keys a topic's GET fills in
// (Zaqar's topic._get_reserved_metadata): a topic has no claims and so no
// dead-letter queue.
var topicReservedKeys = []string{wire.MetaMaxMessagesPostSize, wire.MetaDefaultMessageTTL, wire.MetaDefaultMessageDelay}

// metadataView is meta as GET and PATCH show it: with the reserved
// defaults of a queue, or of a topic on a topic route.
func (s *Server) metadataView(rq *request, meta wire.Object) wire.Object {
	if !rq.topic() {
		return s.withReservedDefaults(meta)
	}
	return s.topicMetadata(meta)
}

// topicMetadata is a topic's meta with its reserved defaults.
func (s *Server) topicMetadata(meta wire.Object) wire.Object {
	out := meta.Clone()
	for _, k := range topicReservedKeys {
		if v, ok := out.Get(k); !ok || !wire.Truthy(v) {
			out.Set(k, s.reservedDefault(k))
		}
	}
	return out
}

// reservedOn reports whether k is a reserved key of the route's queue or
// topic: PATCH may replace or remove those even when unset.
func reservedOn(rq *request, k string) bool {
	if !rq.topic() {
		return isReserved(k)
	}
	for _, r := range topicReservedKeys {
		if r == k {
			return true
		}
	}
	return false
}

// topicListParams are the known parameters of GET /v2/topics; any other is
// a metadata filter, as in Zaqar. Topics have no with_count.
var topicListParams = map[string]bool{"marker": true, "limit": true, "detailed": true, "name": true}

// listTopics answers GET /v2/topics, as listQueues answers for queues.
func (s *Server) listTopics(rq *request) (reply, error) {
	ls, err := s.listStart(rq.q)
	if err != nil {
		return reply{}, err
	}
	filters, err := s.listFilters(rq.q, &ls, topicListParams)
	if err != nil {
		return reply{}, err
	}
	link, marker, limit, detailed, name := ls.link, ls.marker, ls.limit, ls.detailed, ls.name
	found, err := s.scanQueues(rq, topicNames, marker, limit, detailed, name, filters)
	if err != nil {
		return reply{}, err
	}
	out := wire.TopicList{Topics: make([]wire.QueueItem, 0, len(found)), Links: []wire.Link{}}
	for _, t := range found {
		item := wire.QueueItem{Name: t.Name, Href: "/v2/topics/" + t.Name}
		if detailed {
			item.Metadata = s.topicMetadata(decodeStored(t.Metadata))
		}
		out.Topics = append(out.Topics, item)
	}
	if len(found) > 0 {
		link.set("marker", found[len(found)-1].Name)
		out.Links = []wire.Link{{Rel: "next", Href: "/v2/topics" + link.String()}}
	}
	return reply{body: out}, nil
}

// getTopic answers GET /v2/topics/{t}: the metadata with the reserved
// defaults; 404 for a topic that does not exist (a queue's GET answers
// 200 then), as Zaqar does.
func (s *Server) getTopic(rq *request) (reply, error) {
	info, exists, err := s.eng.Queue(rq.ctx(), rq.ref())
	if err != nil {
		return reply{}, err
	}
	if !exists {
		return reply{}, index.ErrQueueNotFound
	}
	return reply{body: s.metadataView(rq, decodeStored(info.Metadata))}, nil
}
