// Package smtptest runs a real SMTP server for tests: Debian's
// python3-aiosmtpd on 127.0.0.1, keeping every mail it takes in a Maildir
// the test reads back, decoded.
//
// Contracts: Start skips the test when aiosmtpd is missing or does not
// come up, and fails it instead when CISTERN_REQUIRE_BACKENDS=1 (as in
// CI, where scripts/test.sh installs it). The server refuses for good
// (550) every recipient whose address starts with "nobody@", as a server
// without that mailbox does. It is stopped when the test ends.
package smtptest

import (
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
)

// Sink is one running SMTP server.
type Sink struct {
	// Addr is where it listens, host:port on 127.0.0.1.
	Addr string
	dir  string
}

// python is Debian's interpreter, where python3-aiosmtpd is installed
// (another python on PATH may lack it).
const python = "/usr/bin/python3"

// handler is the server's aiosmtpd handler: a Maildir that has no
// mailbox nobody@.
const handler = `from aiosmtpd.handlers import Mailbox

class Sink(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"
`

// FreeAddr returns a loopback address nothing listens on now, for a sink
// started later than the code that sends to it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Start starts a sink on addr (see FreeAddr) and waits until it listens.
func Start(t testing.TB, addr string) *Sink {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CISTERN_REQUIRE_BACKENDS") == "1" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		unavailable("no SMTP sink (apt-get install python3-aiosmtpd): %v", err)
	}
	dir := t.TempDir()
	s := &Sink{Addr: addr, dir: filepath.Join(dir, "maildir")}
	if err := os.WriteFile(filepath.Join(dir, "sinkhandler.py"), []byte(handler), 0o644); err != nil {
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
		case <-time.After(20 * time.Millisecond): // polling its readiness, within the deadline
		}
		if time.Now().After(deadline) {
			unavailable("the SMTP sink does not listen on %s", addr)
		}
	}
}

// Mail is one mail the sink took, decoded.
type Mail struct {
	From, To, Subject string
	Header            mail.Header
	// Text is the mail's text (transfer encoding undone) read as a JSON
	// object, which every mail Cistern sends is.
	Text map[string]any
}

// Mails returns every mail taken so far, in no particular order.
func (s *Sink) Mails(t testing.TB) []Mail {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.dir, "new", "*"))
	var out []Mail
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
		sm := Mail{From: m.Header.Get("From"), To: m.Header.Get("To"), Subject: subject, Header: m.Header}
		if err := json.Unmarshal(text, &sm.Text); err != nil {
			t.Fatalf("mail text %q: %v", text, err)
		}
		out = append(out, sm)
	}
	return out
}
