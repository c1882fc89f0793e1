package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/notify/smtptest"
)

// TestMailtoThroughTheBinary: with smtp set (the address by -smtp, the
// sender in the file) the binary takes a mailto: subscriber and mails it
// each message through the SMTP server; without it, mailto: is refused.
func TestMailtoThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	sink := smtptest.Start(t, smtptest.FreeAddr(t))
	bin := buildBinary(t)
	conf := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(conf, []byte("smtp:\n  from: Queues <queues@example.net>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := map[string]any{"subscriber": "mailto:ops@example.com?subject=demo", "ttl": 3600}

	addr := freePort(t)
	p := start(t, bin, addr, "-data", t.TempDir())
	c := &client{base: "http://" + addr, id: "00000000-0000-4000-8000-000000000002", project: "mail", http: &http.Client{Timeout: 10 * time.Second}}
	if code, data, err := c.do("POST", "/v2/queues/mq/subscriptions", sub); err != nil || code != http.StatusBadRequest {
		t.Fatalf("mailto without smtp: %d %v %s", code, err, data)
	}
	p.kill()

	p = start(t, bin, addr, "-data", t.TempDir(), "-config", conf, "-smtp", sink.Addr)
	if code, data, err := c.do("POST", "/v2/queues/mq/subscriptions", sub); err != nil || code != http.StatusCreated {
		t.Fatalf("mailto with smtp: %d %v %s", code, err, data)
	}
	code, data, err := c.do("POST", "/v2/queues/mq/messages", map[string]any{"messages": []map[string]any{{"body": map[string]string{"event": "up"}, "ttl": 300}}})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("post: %d %v %s", code, err, data)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(sink.Mails(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no mail\n%s", p.log.String())
		}
		<-time.After(20 * time.Millisecond) // polling the sink, within the deadline
	}
	m := sink.Mails(t)[0]
	body, _ := m.Text["body"].(map[string]any)
	if m.To != "ops@example.com" || m.From != "Queues <queues@example.net>" || m.Subject != "demo" || m.Text["queue_name"] != "mq" || body["event"] != "up" {
		t.Fatalf("mail %+v", m)
	}
}
