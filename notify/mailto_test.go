package notify

import (
	"context"
	"encoding/json"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/index/enginetest"
	"github.com/cistern-mq/cistern/notify/smtptest"
)

func (w *world) mailDeliverer(t *testing.T, addr string, wait func(context.Context, time.Duration) error) *Deliverer {
	t.Helper()
	d, err := NewDeliverer(DeliverOptions{Store: w.subs, Source: w.eng, Now: w.clk.Now, Wait: wait,
		Mail: &MailOptions{Addr: addr, From: "Cistern <cistern@example.net>"}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMailtoDeliveredInZaqarsFormat(t *testing.T) {
	sink := smtptest.Start(t, smtptest.FreeAddr(t))
	w := newWorld(t, fsStore(t), enginetest.NewClock())
	defer w.eng.Close()
	ctx := context.Background()
	// The URI's subject wins over the options' (Zaqar's order); a subject
	// with a line break stays one header.
	if _, _, err := w.subs.Create(ctx, testRef, "mailto:ops@example.com?subject=From%20the%20URI", 3600,
		json.RawMessage(`{"subject": "from the options", "from": "queue@example.org"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.subs.Create(ctx, testRef, "mailto:dev@example.com", 3600,
		json.RawMessage(`{"subject": "line\r\nBcc: evil@example.com", "from": "not an address"}`)); err != nil {
		t.Fatal(err)
	}
	w.post(t, testRef, 0, 3)
	d := w.mailDeliverer(t, sink.Addr, nil)
	defer d.Close()
	drivertest.Eventually(t, "6 mails", func() bool { return len(sink.Mails(t)) >= 6 })
	seen := map[string]int{}
	for _, m := range sink.Mails(t) {
		if m.Text["queue_name"] != "q" || m.Text["Message_Type"] != "Notification" || m.Text["ttl"] != float64(3600) {
			t.Fatalf("mail text %v", m.Text)
		}
		n := m.Text["body"].(map[string]any)["n"]
		seen[m.To+" "+strings.Repeat("x", int(n.(float64)))]++
		switch m.To {
		case "ops@example.com":
			if m.Subject != "From the URI" || m.From != "<queue@example.org>" {
				t.Fatalf("to ops: subject %q from %q", m.Subject, m.From)
			}
		case "dev@example.com":
			if m.Subject != "line\r\nBcc: evil@example.com" || m.From != "Cistern <cistern@example.net>" || m.Header.Get("Bcc") != "" {
				t.Fatalf("to dev: subject %q from %q header %v", m.Subject, m.From, m.Header)
			}
		default:
			t.Fatalf("mail to %q", m.To)
		}
	}
	if len(seen) != 6 {
		t.Fatalf("mails %v, want each of 3 messages to each of 2 subscribers", seen)
	}
}

func TestMailtoRetriedUntilTheServerAnswers(t *testing.T) {
	addr := smtptest.FreeAddr(t)
	w := newWorld(t, fsStore(t), enginetest.NewClock())
	defer w.eng.Close()
	if _, _, err := w.subs.Create(context.Background(), testRef, "mailto:ops@example.com", 3600, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	w.post(t, testRef, 0, 2)
	// Each retry waits until the sink is up, so that the first attempt
	// (refused: nothing listens yet) is the only failed one.
	up := make(chan struct{})
	failed := make(chan struct{}, 1)
	d := w.mailDeliverer(t, addr, func(ctx context.Context, _ time.Duration) error {
		select {
		case failed <- struct{}{}:
		default:
		}
		select {
		case <-up:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	defer d.Close()
	select {
	case <-failed:
	case <-time.After(30 * time.Second):
		t.Fatal("no failed attempt")
	}
	sink := smtptest.Start(t, addr)
	close(up)
	drivertest.Eventually(t, "2 mails", func() bool { return len(sink.Mails(t)) >= 2 })
	drivertest.Eventually(t, "the cursor past both", func() bool {
		c, err := w.subs.Cursor(context.Background(), testRef, mustOnlySub(t, w).ID)
		return err == nil && c.Seq > 0
	})
}

func TestParseMailto(t *testing.T) {
	for _, c := range []struct {
		uri, to, subject string
		ok               bool
	}{
		{"mailto:a@example.com", "a@example.com", "", true},
		{"mailto:a@example.com?Subject=Hi%20there", "a@example.com", "Hi there", true},
		{"mailto:a%40example.com", "a@example.com", "", true},
		{"mailto:a@example.com,b@example.com", "", "", false},
		{"mailto:Name <a@example.com>", "", "", false},
		{"mailto:a@example.com%0D%0ABcc:b@example.com", "", "", false},
		{"mailto://a@example.com", "", "", false},
		{"mailto:", "", "", false},
		{"mailto:nobody", "", "", false},
		{"http://a@example.com", "", "", false},
	} {
		to, subject, ok := ParseMailto(c.uri)
		if to != c.to || subject != c.subject || ok != c.ok {
			t.Errorf("ParseMailto(%q) = %q, %q, %v; want %q, %q, %v", c.uri, to, subject, ok, c.to, c.subject, c.ok)
		}
	}
}

// TestMailtoRefusedForGoodIsNotRetried: a 5xx reply is the server's
// final answer, as a webhook's 4xx: the subscription moves on instead of
// retrying that message until it expires and holding back the next ones.
func TestMailtoRefusedForGoodIsNotRetried(t *testing.T) {
	sink := smtptest.Start(t, smtptest.FreeAddr(t))
	w := newWorld(t, fsStore(t), enginetest.NewClock())
	defer w.eng.Close()
	sub, _, err := w.subs.Create(context.Background(), testRef, "mailto:nobody@example.com", 3600, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	w.post(t, testRef, 0, 2)
	var ws waits
	d := w.mailDeliverer(t, sink.Addr, ws.wait)
	defer d.Close()
	drivertest.Eventually(t, "the cursor past both messages", func() bool {
		c, err := w.subs.Cursor(context.Background(), testRef, sub.ID)
		return err == nil && c.Seq > 0 && c.MessageID != ""
	})
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(ws.d) != 0 || len(sink.Mails(t)) != 0 {
		t.Fatalf("retried after a 550 (waits %v) or delivered %d mails", ws.d, len(sink.Mails(t)))
	}
}

// TestMailtoLongSubject: a subject longer than SMTP's line limit, in
// ASCII and not, arrives whole (folded into encoded words), where as one
// header line the server would refuse the mail for good.
func TestMailtoLongSubject(t *testing.T) {
	sink := smtptest.Start(t, smtptest.FreeAddr(t))
	w := newWorld(t, fsStore(t), enginetest.NewClock())
	defer w.eng.Close()
	subjects := map[string]string{
		"ascii@example.com":   strings.Repeat("queue alert ", 150),
		"unicode@example.com": strings.Repeat("Ünïcödé ✓ ", 150),
	}
	for to, subject := range subjects {
		opts, _ := json.Marshal(map[string]string{"subject": subject})
		if _, _, err := w.subs.Create(context.Background(), testRef, "mailto:"+to, 3600, opts); err != nil {
			t.Fatal(err)
		}
	}
	w.post(t, testRef, 0, 1)
	d := w.mailDeliverer(t, sink.Addr, nil)
	defer d.Close()
	drivertest.Eventually(t, "2 mails", func() bool { return len(sink.Mails(t)) >= 2 })
	for _, m := range sink.Mails(t) {
		if m.Subject != subjects[m.To] {
			t.Errorf("to %s: subject %q", m.To, m.Subject)
		}
	}
}

func TestEncodeSubject(t *testing.T) {
	for _, s := range []string{"", "short", "line\r\nBcc: x@example.com", strings.Repeat("é", 500), strings.Repeat("a", 2000), "\xff\xfe" + strings.Repeat("\x80", 100)} {
		enc := encodeSubject(s)
		for _, line := range strings.Split(enc, "\r\n") {
			if len(line) > 78 || strings.ContainsAny(line, "\r\n") {
				t.Fatalf("encodeSubject(%q) has line %q", s, line)
			}
		}
		dec, err := new(mime.WordDecoder).DecodeHeader(strings.ReplaceAll(enc, "\r\n ", " "))
		if err != nil || dec != s {
			t.Fatalf("encodeSubject(%q) = %q, decodes to %q, %v", s, enc, dec, err)
		}
	}
}
