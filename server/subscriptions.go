package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/cistern-mq/cistern/notify"
	"github.com/cistern-mq/cistern/server/wire"
	"github.com/cistern-mq/cistern/topics"
)

// Subscriptions (/v2/queues/{q}/subscriptions...), answered as Zaqar 15
// answers them; package notify keeps them and delivers. Without
// Options.Subscriptions the server has no subscriptions: a queue has none
// (list 200 empty, get/update/confirm 404, delete 204), and creating one is
// refused with 400, whose title and description clients surface.

// minSubscriptionTTL is Zaqar's MIN_SUBSCRIPTION_TTL.
const minSubscriptionTTL = 60

// maxSubscriptionExpiry is Python's datetime.max, past which Zaqar refuses
// a subscription TTL.
var maxSubscriptionExpiry = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

// subscriberTypes are the subscriber URI schemes Cistern delivers to:
// mailto only with an SMTP server to send through. Zaqar's default also
// has trust+http(s), which Cistern does not deliver to and so refuses
// rather than accept in silence.
func subscriberTypes(mailto bool) []string {
	if mailto {
		return []string{"http", "https", notify.MailtoScheme}
	}
	return []string{"http", "https"}
}

// subscriptionView is a subscription as GET and list show it, in Zaqar's
// key order.
type subscriptionView struct {
	ID         notify.ID       `json:"id"`
	Source     string          `json:"source"`
	Subscriber string          `json:"subscriber"`
	TTL        int64           `json:"ttl"`
	Age        int64           `json:"age"`
	Options    json.RawMessage `json:"options"`
	Confirmed  bool            `json:"confirmed"`
}

func (s *Server) subscriptionView(sub notify.Subscription) subscriptionView {
	return subscriptionView{ID: sub.ID, Source: topics.Display(sub.Queue), Subscriber: sub.Subscriber, TTL: sub.TTL,
		Age: ageSeconds(s.now(), sub.Created), Options: sub.Options, Confirmed: sub.Confirmed}
}

// errSubscriptionExists is Zaqar's 409 for a subscriber a queue already
// has (its text lacks a space, as Zaqar's does).
var errSubscriptionExists = &apiError{status: http.StatusConflict, title: "Resource conflict",
	description: "Such subscription already exists.Subscriptions are unique by project + queue + subscriber URI."}

var errNoSubscriptions = badRequest("Subscriptions not supported", "subscriptions are not supported by this server")

// subscriptionDoc is a decoded POST or PATCH body.
type subscriptionDoc struct {
	subscriber *string
	ttl        *int64
	options    json.RawMessage // nil: absent
}

// decodeSubscription is Zaqar's subscription_posting (post) or
// subscription_patching, with its texts.
func (s *Server) decodeSubscription(data []byte, post bool) (subscriptionDoc, error) {
	var d subscriptionDoc
	obj := wire.Object{}
	if len(data) > 0 {
		var err error
		if obj, err = wire.DecodeMetadata(data); err != nil {
			if ve, ok := err.(*wire.ValidationError); ok && ve.Description == wire.DescDocType {
				return d, badAPI("Subscriptions must be a dict.")
			}
			return d, err
		}
	}
	raw, hasSubscriber := obj.Get("subscriber")
	if post && !hasSubscriber {
		return d, badAPI("Missing parameter subscriber in body.")
	}
	if len(obj) == 0 {
		return d, badAPI("No subscription to create.")
	}
	if hasSubscriber && (post || wire.Truthy(raw)) {
		str, ok := wire.String(raw)
		u, err := url.Parse(str)
		if !ok || err != nil || !slices.Contains(s.subscriberTypes, u.Scheme) {
			return d, badAPI(fmt.Sprintf("The subscriber type of subscription must be supported in the list %s.", pyList(s.subscriberTypes)))
		}
		// Zaqar checks the scheme only; Cistern refuses what it could
		// not deliver to: a webhook without a host, a mailto: that is
		// not one plain address.
		if _, _, isMail := notify.ParseMailto(str); u.Scheme == notify.MailtoScheme && !isMail {
			return d, badAPI("The subscriber of a mailto subscription must be one address, like mailto:ops@example.com.")
		} else if u.Scheme != notify.MailtoScheme && u.Host == "" {
			return d, badAPI(fmt.Sprintf("The subscriber type of subscription must be supported in the list %s.", pyList(s.subscriberTypes)))
		}
		d.subscriber = &str
	}
	if raw, ok := obj.Get("options"); ok {
		switch {
		case wire.Kind(raw) == 'n':
			d.options = json.RawMessage(`{}`)
		case wire.Kind(raw) != '{':
			return d, badAPI("Options must be a dict.")
		default:
			opts := wire.Object{}
			if err := json.Unmarshal(raw, &opts); err != nil {
				return d, badAPI("Options must be a dict.")
			}
			if msg := checkRetryPolicy(opts); msg != "" {
				return d, badAPI(msg)
			}
			d.options = raw
		}
	}
	if raw, ok := obj.Get("ttl"); ok && wire.Kind(raw) != 'n' {
		ttl, isInt := wire.Int(raw)
		if !isInt {
			return d, badAPI("TTL must be an integer.")
		}
		if ttl < minSubscriptionTTL {
			return d, badAPI(fmt.Sprintf("The TTL for a subscription must be at least %d seconds long.", minSubscriptionTTL))
		}
		if ttl > int64(maxSubscriptionExpiry.Sub(s.now())/time.Second) {
			return d, badAPI("The TTL seconds for a subscription plus current time must be less than 9999-12-31 23:59:59.999999.")
		}
		d.ttl = &ttl
	}
	return d, nil
}

// pyList renders strings as Python prints a list of them.
func pyList(items []string) string {
	out := "["
	for i, it := range items {
		if i > 0 {
			out += ", "
		}
		out += "'" + it + "'"
	}
	return out + "]"
}

func (rq *request) subscriptionID() notify.ID { return notify.ID(rq.vars["subscription_id"]) }

// listSubscriptions answers GET /v2/queues/{q}/subscriptions. As in Zaqar,
// the answer always has a next link, whose marker is the last id listed
// (or the one asked with).
func (s *Server) listSubscriptions(rq *request) (reply, error) {
	link, marker, limit, err := pageStart(rq.q, defaultSubscriptionsPerPage)
	if err != nil {
		return reply{}, err
	}
	if limit < 1 || limit > s.lim.MaxSubscriptionsPerPage {
		return reply{}, badAPI(limitText(s.lim.MaxSubscriptionsPerPage))
	}
	out := wire.SubscriptionList{Subscriptions: []json.RawMessage{}, Links: []wire.Link{}}
	if s.subs == nil {
		return reply{body: out}, nil
	}
	subs, err := s.subs.List(rq.ctx(), rq.ref(), notify.ID(marker), limit)
	if err != nil {
		return reply{}, err
	}
	for _, sub := range subs {
		raw, err := json.Marshal(s.subscriptionView(sub))
		if err != nil {
			return reply{}, err
		}
		out.Subscriptions = append(out.Subscriptions, raw)
	}
	if len(subs) > 0 {
		marker = string(subs[len(subs)-1].ID)
	}
	link.set("marker", marker)
	out.Links = []wire.Link{{Rel: "next", Href: rq.queuePath() + "/subscriptions" + link.String()}}
	return reply{body: out}, nil
}

// defaultSubscriptionsPerPage is Zaqar's DEFAULT_SUBSCRIPTIONS_PER_PAGE.
const defaultSubscriptionsPerPage = 10

// createSubscription answers POST /v2/queues/{q}/subscriptions. It creates
// the queue if missing, as a post does.
func (s *Server) createSubscription(rq *request) (reply, error) {
	data, err := s.readSmallBody(rq)
	if err != nil {
		return reply{}, err
	}
	if s.subs == nil {
		return reply{}, errNoSubscriptions
	}
	d, err := s.decodeSubscription(data, true)
	if err != nil {
		return reply{}, err
	}
	ttl := s.lim.DefaultSubscriptionTTL
	if d.ttl != nil {
		ttl = *d.ttl
	}
	if d.options == nil {
		d.options = json.RawMessage(`{}`)
	}
	if _, err := s.eng.CreateQueue(rq.ctx(), rq.ref(), nil); err != nil {
		return reply{}, err
	}
	sub, created, err := s.subs.Create(rq.ctx(), rq.ref(), *d.subscriber, ttl, d.options)
	if err != nil {
		return reply{}, err
	}
	path := rq.queuePath() + "/subscriptions"
	if !created && sub.Confirmed {
		e := *errSubscriptionExists
		e.header = map[string]string{"Location": path}
		return reply{}, &e
	}
	if s.notify != nil {
		s.notify.Created(sub)
	}
	s.sendConfirmNotice(rq, sub, ttl, false)
	return reply{status: http.StatusCreated, location: path,
		body: map[string]notify.ID{"subscription_id": sub.ID}}, nil
}

func (s *Server) getSubscription(rq *request) (reply, error) {
	if s.subs == nil {
		return reply{}, errNotFound404
	}
	sub, err := s.subs.Get(rq.ctx(), rq.ref(), rq.subscriptionID())
	if err != nil {
		return reply{}, err
	}
	return reply{body: s.subscriptionView(sub)}, nil
}

// updateSubscription answers PATCH .../subscriptions/{id}.
func (s *Server) updateSubscription(rq *request) (reply, error) {
	data, err := s.readSmallBody(rq)
	if err != nil {
		return reply{}, err
	}
	d, err := s.decodeSubscription(data, false)
	if err != nil {
		return reply{}, err
	}
	if s.subs == nil {
		return reply{}, errNotFound404
	}
	p := notify.Patch{Subscriber: d.subscriber, TTL: d.ttl, Options: d.options}
	sub, err := s.subs.Update(rq.ctx(), rq.ref(), rq.subscriptionID(), p)
	if err != nil {
		return reply{}, err
	}
	if s.notify != nil {
		s.notify.Created(sub)
	}
	return reply{status: http.StatusNoContent, location: rq.r.URL.Path}, nil
}

// confirmSubscription answers PUT .../subscriptions/{id}/confirm.
func (s *Server) confirmSubscription(rq *request) (reply, error) {
	data, err := s.readSmallBody(rq)
	if err != nil {
		return reply{}, err
	}
	obj := wire.Object{}
	if len(data) > 0 {
		if obj, err = wire.DecodeMetadata(data); err != nil {
			return reply{}, err
		}
	}
	raw, _ := obj.Get("confirmed")
	if k := wire.Kind(raw); k != 't' && k != 'f' {
		return reply{}, badAPI("The 'confirmed' should be boolean.")
	}
	confirmed := wire.Kind(raw) == 't'
	if s.subs == nil {
		return reply{}, errNotFound404
	}
	sub, err := s.subs.Update(rq.ctx(), rq.ref(), rq.subscriptionID(), notify.Patch{Confirmed: &confirmed})
	if err != nil {
		return reply{}, err
	}
	if s.notify != nil {
		s.notify.Created(sub)
	}
	if !confirmed {
		s.sendConfirmNotice(rq, sub, s.lim.DefaultSubscriptionTTL, true)
	}
	return reply{status: http.StatusNoContent, location: rq.r.URL.Path}, nil
}

func (s *Server) deleteSubscription(rq *request) (reply, error) {
	if s.subs != nil {
		if err := s.subs.Delete(rq.ctx(), rq.ref(), rq.subscriptionID()); err != nil {
			return reply{}, err
		}
	}
	return reply{status: http.StatusNoContent}, nil
}
