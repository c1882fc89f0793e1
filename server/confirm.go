package server

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cistern-mq/cistern/notify"
	"github.com/cistern-mq/cistern/topics"
)

// Confirmation notices (Options.RequireConfirmation), as Zaqar's
// send_confirm_notification makes them: a signed URL that lets the
// subscriber PUT .../subscriptions/{id}/confirm itself, sent to the
// subscriber when it subscribes (and again when it subscribes again while
// unconfirmed), and an unsubscribe notice when it is set unconfirmed.

// confirmNotice is the notice's body, in Zaqar's key order. Zaqar adds
// WSGISubscribeURL from Keystone's catalog; Cistern knows no public URL,
// as a Zaqar without Keystone does not.
type confirmNotice struct {
	MessageType     string          `json:"Message_Type"`
	Message         string          `json:"Message"`
	URLSignature    string          `json:"URL-Signature"`
	URLMethods      string          `json:"URL-Methods"`
	URLPaths        string          `json:"URL-Paths"`
	ProjectID       string          `json:"X-Project-ID"`
	URLExpires      string          `json:"URL-Expires"`
	SubscribeBody   json.RawMessage `json:"SubscribeBody"`
	UnsubscribeBody json.RawMessage `json:"UnsubscribeBody"`
}

// confirmPath is the path a notice signs: under /v2/topics for a topic's
// subscription (Zaqar signs a /v2/queues path even then).
func confirmPath(sub notify.Subscription) string {
	base := "/v2/queues/"
	if topics.Is(sub.Queue.Name) {
		base = "/v2/topics/"
	}
	return base + topics.Display(sub.Queue) + "/subscriptions/" + string(sub.ID) + "/confirm"
}

// sourceKind is how a notice names what sub is a subscription of.
func sourceKind(sub notify.Subscription) string {
	if topics.Is(sub.Queue.Name) {
		return "topic"
	}
	return "queue"
}

// sendConfirmNotice sends sub a confirmation (or, unsubscribed, an
// unsubscribe) notice signed for ttl seconds, when confirmation is
// required. Without a secret nothing can be signed: Zaqar logs that and
// sends nothing, and so does Cistern.
func (s *Server) sendConfirmNotice(rq *request, sub notify.Subscription, ttl int64, unsubscribed bool) {
	if !s.requireConfirmation || s.notify == nil {
		return
	}
	if s.secret == nil {
		s.log.Error().Str("request_id", rq.id).Msg("cannot send a confirmation notice: no signed-URL secret is set")
		return
	}
	ttl = min(ttl, s.lim.MaxSignedURLTTL)
	g := signURL(s.secret, []string{confirmPath(sub)}, []string{"PUT"}, rq.project, s.now().Add(time.Duration(ttl)*time.Second))
	n := confirmNotice{
		MessageType:  "SubscriptionConfirmation",
		Message:      fmt.Sprintf("You have chosen to subscribe to the %s: %s", sourceKind(sub), topics.Display(sub.Queue)),
		URLSignature: g.Signature, URLMethods: g.Methods[0], URLPaths: g.Paths[0], ProjectID: g.Project, URLExpires: g.Expires,
		SubscribeBody: json.RawMessage(`{"confirmed": true}`), UnsubscribeBody: json.RawMessage(`{"confirmed": false}`),
	}
	if unsubscribed {
		n.MessageType = "UnsubscribeConfirmation"
		n.Message = fmt.Sprintf("You have unsubscribed successfully to the %s: %s, you can resubscribe it by using confirmed=True.", sourceKind(sub), topics.Display(sub.Queue))
	}
	body, err := json.Marshal(n)
	if err != nil {
		return
	}
	s.notify.Notice(sub, body)
}
