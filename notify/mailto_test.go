package notify

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mq/cistern/drivers/drivertest"
	"github.com/cistern-mq/cistern/index/enginetest"
)

// smtpSink is Debian's python3-aiosmtpd on 127.0.0.1, keeping every mail
// it takes in a Maildir; it refuses recipients nobody@... for good (550),
// as a server without that mailbox does.
type smtpSink struct {
	addr string
	dir  string
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startSMTPSink starts the sink on addr. Without aiosmtpd the test skips,
// or fails when CISTERN_REQUIRE_BACKENDS=1 (scripts/test.sh installs it).
func startSMTPSink(t *testing.T, addr string) *smtpSink {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	// Debian's python, where python3-aiosmtpd is installed.
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		unavailable("no SMTP sink (apt-get install python3-aiosmtpd): %v", err)
	}
	dir := t.TempDir()
	s := &smtpSink{addr: addr, dir: filepath.Join(dir, "maildir")}
	if err := os.WriteFile(filepath.Join(dir, "sinkhandler.py"), []byte(sinkHandler), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-m", "aiosmtpd", "-n", "-l", addr, "-c", "sinkhandler.Sink", s.dir)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		unavailable("starting the SMTP sink: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s
		}
		select {
		case err := <-exited:
			unavailable("the SMTP sink exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			unavailable("the SMTP sink does not listen on %s", addr)
		}
	}
}

// sinkHandler is the sink's aiosmtpd handler: a Maildir that has no
// mailbox nobody@.
const sinkHandler = `from aiosmtpd.handlers import Mailbox

class Sink(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"
`

// sunkMail is one mail the sink took, decoded.
type sunkMail struct {
	from, to, subject string
	header            mail.Header
	msg               map[string]any // the text, a JSON object
}

func (s *smtpSink) mails(t *testing.T) []sunkMail {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.dir, "new", "*"))
	var out []sunkMail
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatalf("mail %s: %v", f, err)
		}
		var body io.Reader = m.Body
		if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		text, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		sm := sunkMail{from: m.Header.Get("From"), to: m.Header.Get("To"), subject: subject, header: m.Header}
		if err := json.Unmarshal(text, &sm.msg); err != nil {
			t.Fatalf("mail text %q: %v", text, err)
		}
		out = append(out, sm)
	}
	return out
}

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
	sink := startSMTPSink(t, freeAddr(t))
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
	d := w.mailDeliverer(t, sink.addr, nil)
	defer d.Close()
	drivertest.Eventually(t, "6 mails", func() bool { return len(sink.mails(t)) >= 6 })
	seen := map[string]int{}
	for _, m := range sink.mails(t) {
		if m.msg["queue_name"] != "q" || m.msg["Message_Type"] != "Notification" || m.msg["ttl"] != float64(3600) {
			t.Fatalf("mail text %v", m.msg)
		}
		n := m.msg["body"].(map[string]any)["n"]
		seen[m.to+" "+strings.Repeat("x", int(n.(float64)))]++
		switch m.to {
		case "ops@example.com":
			if m.subject != "From the URI" || m.from != "<queue@example.org>" {
				t.Fatalf("to ops: subject %q from %q", m.subject, m.from)
			}
		case "dev@example.com":
			if m.subject != "line\r\nBcc: evil@example.com" || m.from != "Cistern <cistern@example.net>" || m.header.Get("Bcc") != "" {
				t.Fatalf("to dev: subject %q from %q header %v", m.subject, m.from, m.header)
			}
		default:
			t.Fatalf("mail to %q", m.to)
		}
	}
	if len(seen) != 6 {
		t.Fatalf("mails %v, want each of 3 messages to each of 2 subscribers", seen)
	}
}

func TestMailtoRetriedUntilTheServerAnswers(t *testing.T) {
	addr := freeAddr(t)
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
	sink := startSMTPSink(t, addr)
	close(up)
	drivertest.Eventually(t, "2 mails", func() bool { return len(sink.mails(t)) >= 2 })
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
	sink := startSMTPSink(t, freeAddr(t))
	w := newWorld(t, fsStore(t), enginetest.NewClock())
	defer w.eng.Close()
	sub, _, err := w.subs.Create(context.Background(), testRef, "mailto:nobody@example.com", 3600, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	w.post(t, testRef, 0, 2)
	var ws waits
	d := w.mailDeliverer(t, sink.addr, ws.wait)
	defer d.Close()
	drivertest.Eventually(t, "the cursor past both messages", func() bool {
		c, err := w.subs.Cursor(context.Background(), testRef, sub.ID)
		return err == nil && c.Seq > 0 && c.MessageID != ""
	})
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(ws.d) != 0 || len(sink.mails(t)) != 0 {
		t.Fatalf("retried after a 550 (waits %v) or delivered %d mails", ws.d, len(sink.mails(t)))
	}
}
