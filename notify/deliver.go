package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/topics"
)

// Source is where delivery reads a queue's messages and metadata: the
// engine or the placement router, through their public API.
type Source interface {
	List(ctx context.Context, ref index.QueueRef, o index.ListOptions) ([]index.Message, error)
	Queue(ctx context.Context, ref index.QueueRef) (index.QueueInfo, bool, error)
}

// DeliverOptions configure a Deliverer; zero values take the defaults.
type DeliverOptions struct {
	Store  *Store // required
	Source Source // required
	Logger zerolog.Logger
	// Now tells the time (nil: time.Now); Wait waits d or until ctx ends
	// (nil: a timer). Tests give both of a fake clock.
	Now  func() time.Time
	Wait func(ctx context.Context, d time.Duration) error
	// Allow opens internal networks (loopback, private, link-local) to
	// webhooks; every other internal address is refused at dial time.
	Allow []netip.Prefix
	// PerHost bounds the requests in flight to one subscriber host
	// (default 4).
	PerHost int
	// RequestTimeout bounds one webhook request (default 10 s).
	RequestTimeout time.Duration
	// Rescan is how often every subscription of the store is looked at,
	// beside the queues Posted names (default 1 minute).
	Rescan time.Duration
	// RequireConfirmation delivers to confirmed subscriptions only, as
	// Zaqar's require_confirmation; by default all are delivered to.
	RequireConfirmation bool
	// Mail is the SMTP server of mailto: subscribers; nil: none, and
	// they are not delivered to (the server refuses them).
	Mail *MailOptions
}

// batchSize is how many messages one pass reads; the cursor is written
// after each pass, so a crash repeats at most that many deliveries.
const batchSize = 20

type subKeyT struct {
	ref index.QueueRef
	id  ID
}

// Deliverer delivers messages to subscribers, webhooks and mailto:. It
// keeps in memory only which subscriptions are being worked on: what each
// still owes is its cursor in the store, so a slow or dead subscriber
// holds one goroutine, never a growing backlog.
type Deliverer struct {
	o      DeliverOptions
	log    zerolog.Logger
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	mu      sync.Mutex
	active  map[subKeyT]bool         // a worker runs; true: run it again when it ends
	queues  map[index.QueueRef]bool  // queues known to have subscriptions
	posted  map[index.QueueRef]bool  // queues posted to since the scan loop looked
	hosts   map[string]chan struct{} // per-host request slots
	created map[subKeyT]Subscription // new subscriptions to start
	notices chan struct{}            // slots of confirmation notices in flight
	// envelopeFrom is the SMTP envelope sender: the address of Mail.From.
	envelopeFrom string
}

// NewDeliverer starts delivering: at once every subscription in the store
// is looked at, so what a crash left owed is delivered first.
func NewDeliverer(o DeliverOptions) (*Deliverer, error) {
	if o.Store == nil || o.Source == nil {
		return nil, errors.New("notify: DeliverOptions need a Store and a Source")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Wait == nil {
		o.Wait = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if o.PerHost <= 0 {
		o.PerHost = 4
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.Rescan <= 0 {
		o.Rescan = time.Minute
	}
	if o.Mail != nil {
		if err := o.Mail.Validate(); err != nil {
			return nil, err
		}
	}
	d := &Deliverer{
		o: o, log: o.Logger.With().Str("component", "notify").Logger(),
		wake: make(chan struct{}, 1), active: map[subKeyT]bool{}, queues: map[index.QueueRef]bool{},
		posted: map[index.QueueRef]bool{}, hosts: map[string]chan struct{}{}, created: map[subKeyT]Subscription{},
		notices: make(chan struct{}, maxNotices),
	}
	if o.Mail != nil {
		a, _ := mail.ParseAddress(o.Mail.From) // Validate parsed it
		d.envelopeFrom = a.Address
	}
	d.client = &http.Client{
		Timeout: o.RequestTimeout,
		Transport: &http.Transport{
			// No proxy: the dialer checks the address it connects to,
			// which must be the subscriber's.
			Proxy:               nil,
			DialContext:         newDialer(o.Allow, o.RequestTimeout).DialContext,
			MaxIdleConnsPerHost: o.PerHost,
			TLSHandshakeTimeout: o.RequestTimeout,
		},
		// A redirect could lead anywhere; Zaqar's requests would follow
		// it, but the dialer checks every hop anyway.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(1)
	go d.scanLoop()
	return d, nil
}

// Close stops delivery and waits for every worker; what they owed stays
// in the store for the next Deliverer.
func (d *Deliverer) Close() {
	// Cancelled under mu, where workers are added after checking it, so
	// that none is added once Wait has begun.
	d.mu.Lock()
	d.cancel()
	d.mu.Unlock()
	d.wg.Wait()
	d.client.CloseIdleConnections()
}

// Posted tells the deliverer that ref has new messages. It never blocks
// and costs nothing for a queue without subscriptions.
func (d *Deliverer) Posted(ref index.QueueRef) {
	d.mu.Lock()
	if !d.queues[ref] {
		d.mu.Unlock()
		return
	}
	d.posted[ref] = true
	d.mu.Unlock()
	d.poke()
}

// maxNotices bounds the confirmation notices in flight; more are dropped
// (logged): the client can ask for one again by creating the
// subscription again.
const maxNotices = 64

// Notice sends body (a confirmation or unsubscribe notice) to sub's
// subscriber in the background, retried on sub's schedule, not beyond it.
// Unlike messages, notices are not kept in the store: a crash loses them,
// as in Zaqar, and creating the subscription again sends a new one.
func (d *Deliverer) Notice(sub Subscription, body []byte) {
	select {
	case d.notices <- struct{}{}:
	default:
		d.log.Warn().Str("subscriber", sub.Subscriber).Msg("too many confirmation notices in flight; this one is dropped")
		return
	}
	d.mu.Lock()
	if d.ctx.Err() != nil {
		d.mu.Unlock()
		<-d.notices
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		defer func() { <-d.notices }()
		n, err := notificationOf(sub, index.Message{}, d.o.Now())
		if err != nil {
			return
		}
		n.webhook, n.text, n.subject = body, body, noticeSubject(body)
		waits, _ := d.policy(sub).Schedule()
		for attempt := 0; ; attempt++ {
			err := d.send(sub, n)
			if err == nil {
				return
			}
			if attempt >= len(waits) {
				d.log.Warn().Err(err).Str("subscriber", sub.Subscriber).Msg("confirmation notice not delivered")
				return
			}
			if waits[attempt] > 0 && d.o.Wait(d.ctx, waits[attempt]) != nil {
				return
			}
		}
	}()
}

// Created tells the deliverer of a new or changed subscription.
func (d *Deliverer) Created(sub Subscription) {
	d.mu.Lock()
	d.queues[sub.Queue] = true
	d.created[subKeyT{sub.Queue, sub.ID}] = sub
	d.mu.Unlock()
	d.poke()
}

func (d *Deliverer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Deliverer) scanLoop() {
	defer d.wg.Done()
	d.scanAll()
	t := time.NewTicker(d.o.Rescan)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			d.scanAll()
		case <-d.wake:
			d.mu.Lock()
			posted, created := d.posted, d.created
			d.posted, d.created = map[index.QueueRef]bool{}, map[subKeyT]Subscription{}
			d.mu.Unlock()
			for k := range created {
				d.start(k)
			}
			for ref := range posted {
				d.scanQueue(ref)
			}
		}
	}
}

// scanAll starts a worker for every subscription in the store and
// refreshes which queues have subscriptions.
func (d *Deliverer) scanAll() {
	seen := map[index.QueueRef]bool{}
	err := d.o.Store.Each(d.ctx, func(ref index.QueueRef, id ID) error {
		seen[ref] = true
		// Known before the worker starts, so that a post landing after
		// the worker read the queue still wakes it.
		d.mu.Lock()
		d.queues[ref] = true
		d.mu.Unlock()
		d.start(subKeyT{ref, id})
		return nil
	})
	if err != nil {
		if d.ctx.Err() == nil {
			d.log.Warn().Err(err).Msg("listing subscriptions failed; delivery retries at the next scan")
		}
		return
	}
	d.mu.Lock()
	for ref := range d.queues {
		if !seen[ref] {
			delete(d.queues, ref)
		}
	}
	d.mu.Unlock()
}

func (d *Deliverer) scanQueue(ref index.QueueRef) {
	var marker ID
	for {
		subs, err := d.o.Store.List(d.ctx, ref, marker, 100)
		if err != nil {
			if d.ctx.Err() == nil {
				d.log.Warn().Err(err).Str("queue", ref.String()).Msg("listing subscriptions failed; delivery retries at the next scan")
			}
			return
		}
		for _, s := range subs {
			d.start(subKeyT{ref, s.ID})
		}
		if len(subs) < 100 {
			return
		}
		marker = subs[len(subs)-1].ID
	}
}

// start runs a worker for k, or asks the running one to look again.
func (d *Deliverer) start(k subKeyT) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.active[k]; ok {
		d.active[k] = true
		return
	}
	if d.ctx.Err() != nil {
		return
	}
	d.active[k] = false
	d.wg.Add(1)
	go d.work(k)
}

// work delivers what k owes until it owes nothing, then ends (again if it
// was asked to look again meanwhile).
func (d *Deliverer) work(k subKeyT) {
	defer d.wg.Done()
	for {
		if err := d.drain(k); err != nil && d.ctx.Err() == nil {
			d.log.Warn().Err(err).Str("queue", k.ref.String()).Str("subscription", string(k.id)).
				Msg("delivery stopped; it resumes at the next scan")
		}
		d.mu.Lock()
		if again := d.active[k]; again && d.ctx.Err() == nil {
			d.active[k] = false
			d.mu.Unlock()
			continue
		}
		delete(d.active, k)
		d.mu.Unlock()
		return
	}
}

// drain delivers k's messages after its cursor, batch by batch.
func (d *Deliverer) drain(k subKeyT) error {
	for {
		sub, err := d.o.Store.Get(d.ctx, k.ref, k.id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.o.RequireConfirmation && !sub.Confirmed {
			return nil
		}
		cur, err := d.o.Store.Cursor(d.ctx, k.ref, k.id)
		if err != nil {
			return err
		}
		msgs, err := d.o.Source.List(d.ctx, k.ref, index.ListOptions{Marker: cur.Seq, Limit: batchSize,
			Echo: true, IncludeClaimed: true, IncludeDelayed: true})
		if errors.Is(err, index.ErrNotOwner) {
			// Cluster mode: the node that owns the queue delivers it.
			return nil
		}
		if err != nil || len(msgs) == 0 {
			return err
		}
		policy := d.policy(sub)
		for _, m := range msgs {
			// Messages older than the subscription (or, with
			// confirmation required, than its confirmation) are not
			// owed to it, as in Zaqar, which notifies of posts made
			// while it is subscribed.
			since := sub.Created
			if d.o.RequireConfirmation && sub.ConfirmedAt.After(since) {
				since = sub.ConfirmedAt
			}
			if !m.Created.Before(since) {
				if err := d.deliver(sub, m, policy, cur); err != nil {
					return err
				}
			}
			cur = Cursor{Seq: m.Seq, MessageID: m.ID}
		}
		if err := d.o.Store.SetCursor(d.ctx, k.ref, k.id, cur); err != nil {
			return err
		}
	}
}

// policy is the retry policy of sub: its own or its queue's.
func (d *Deliverer) policy(sub Subscription) RetryPolicy {
	var queue RetryPolicy
	if info, ok, err := d.o.Source.Queue(d.ctx, sub.Queue); err == nil && ok {
		queue = retryPolicyOf(info.Metadata)
	}
	return choosePolicy(retryPolicyOf(sub.Options), queue)
}

// deliver posts m to sub until the subscriber takes it (any answer
// 200-499), the message expires, the subscription goes, or the deliverer
// closes. Before waiting out a failure it records the cursor reached
// (done), so that a crash during a long outage repeats no more than the
// batch so far.
func (d *Deliverer) deliver(sub Subscription, m index.Message, p RetryPolicy, done Cursor) error {
	n, err := notificationOf(sub, m, d.o.Now())
	if err != nil {
		return err
	}
	waits, after := p.Schedule()
	savedCursor := false
	for attempt := 0; ; attempt++ {
		err := d.send(sub, n)
		if err == nil {
			return nil
		}
		if attempt == 0 {
			d.log.Info().Err(err).Str("subscriber", sub.Subscriber).Str("message", m.ID).Msg("delivery failed; retrying")
		}
		if !m.Expires.After(d.o.Now()) {
			d.log.Warn().Str("subscriber", sub.Subscriber).Str("message", m.ID).Msg("message expired before its subscriber took it")
			return nil
		}
		if !savedCursor && done.Seq > 0 {
			if err := d.o.Store.SetCursor(d.ctx, sub.Queue, sub.ID, done); err != nil {
				return err
			}
			savedCursor = true
		}
		wait := after
		if attempt < len(waits) {
			wait = waits[attempt]
		}
		if wait > 0 {
			if err := d.o.Wait(d.ctx, wait); err != nil {
				return err
			}
		}
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if _, err := d.o.Store.Get(d.ctx, sub.Queue, sub.ID); errors.Is(err, ErrNotFound) {
			return nil
		}
	}
}

// notification is what one delivery sends, to a webhook or by mail.
type notification struct {
	webhook []byte      // the webhook request's body
	header  http.Header // its headers
	text    []byte      // a mail's text: the message as JSON
	subject string      // a mail's subject when neither URI nor options give one
}

// send makes one attempt at delivering n to sub's subscriber: a mail for
// a mailto: subscriber, else a webhook request.
func (d *Deliverer) send(sub Subscription, n notification) error {
	to, subject, ok := ParseMailto(sub.Subscriber)
	if !ok {
		return d.post(sub.Subscriber, n.webhook, n.header)
	}
	if d.o.Mail == nil {
		return errNoSMTP
	}
	var opts struct {
		From    string `json:"from"`
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal(sub.Options, &opts) // a non-string option is as absent
	// As Zaqar: the URI's subject, else the options', else (Cistern) the
	// notice's; the options' from, if it is an address, else the server's.
	if subject == "" {
		subject = opts.Subject
	}
	if subject == "" {
		subject = n.subject
	}
	from := d.o.Mail.From
	if a, err := mail.ParseAddress(opts.From); err == nil {
		from = a.String()
	}
	msg, err := mailMessage(from, to, subject, n.text, d.o.Now())
	if err != nil {
		return err
	}
	slot := d.hostSlot("smtp " + d.o.Mail.Addr)
	select {
	case slot <- struct{}{}:
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
	defer func() { <-slot }()
	err = sendMail(d.ctx, *d.o.Mail, d.envelopeFrom, d.o.RequestTimeout, to, msg)
	if permanentSMTP(err) {
		// Refused for good (no such mailbox...): like a webhook's 4xx,
		// the subscriber answered, and repeating would not change it.
		d.log.Warn().Err(err).Str("subscriber", sub.Subscriber).Msg("the SMTP server refused the mail; not retried")
		return nil
	}
	return err
}

// noticeSubject is the subject of a notice's mail, Zaqar's default
// templates' topics.
func noticeSubject(body []byte) string {
	var n struct {
		Type string `json:"Message_Type"`
	}
	_ = json.Unmarshal(body, &n)
	if n.Type == "UnsubscribeConfirmation" {
		return "Unsubscribe notification"
	}
	return "Hello, please confirm your subscription"
}

// post makes one webhook request, holding one of the host's slots.
func (d *Deliverer) post(target string, data []byte, header http.Header) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	slot := d.hostSlot(u.Host)
	select {
	case slot <- struct{}{}:
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
	defer func() { <-slot }()
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, target, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header = header.Clone()
	res, err := d.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode >= 500 {
		return fmt.Errorf("webhook answered %d", res.StatusCode)
	}
	return nil
}

func (d *Deliverer) hostSlot(host string) chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.hosts[host]
	if !ok {
		c = make(chan struct{}, d.o.PerHost)
		d.hosts[host] = c
	}
	return c
}

// notificationOf is what is sent of m to sub. Its webhook request is the
// request Zaqar's webhook task makes for one message: the
// message as JSON with queue_name (a topic's name for a topic's
// subscription, as in Zaqar) and Message_Type added (Cistern adds
// its id and age too, so that a receiver can drop the duplicates
// at-least-once delivery may bring), or options.post_data with
// "$zaqar_message$" (quoted) replaced by it; headers Content-Type
// application/json and options.post_headers. Its mail text is that
// message as JSON, as Zaqar's mailto task sends it.
func notificationOf(sub Subscription, m index.Message, now time.Time) (notification, error) {
	var opts struct {
		PostData    json.RawMessage            `json:"post_data"`
		PostHeaders map[string]json.RawMessage `json:"post_headers"`
	}
	_ = json.Unmarshal(sub.Options, &opts) // an options object the server checked
	body := m.Body
	if len(body) == 0 {
		body = json.RawMessage("null")
	}
	msg, err := json.Marshal(struct {
		ID          string          `json:"id"`
		Body        json.RawMessage `json:"body"`
		TTL         int64           `json:"ttl"`
		Age         int64           `json:"age"`
		QueueName   string          `json:"queue_name"`
		MessageType string          `json:"Message_Type"`
	}{m.ID, body, m.TTL, max(int64(now.Sub(m.Created)/time.Second), 0), topics.Display(sub.Queue), "Notification"})
	if err != nil {
		return notification{}, err
	}
	data := msg
	var tmpl string
	if json.Unmarshal(opts.PostData, &tmpl) == nil && len(opts.PostData) > 0 {
		data = []byte(strings.ReplaceAll(tmpl, `"$zaqar_message$"`, string(msg)))
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	for k, raw := range opts.PostHeaders {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		h.Set(k, s)
	}
	return notification{webhook: data, header: h, text: msg}, nil
}
