package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// MailOptions is the SMTP server mailto: subscribers are delivered
// through (the smtp setting). Without one, mailto: subscribers are
// refused when subscribing.
type MailOptions struct {
	// Addr is the server's host:port.
	Addr string
	// From is the envelope sender, and the From header when a
	// subscription's options name no valid "from".
	From string
	// User and Password, when User is set, authenticate with PLAIN,
	// which net/smtp sends only over TLS (STARTTLS) or to localhost.
	User, Password string
}

// Validate checks the options before anything is sent.
func (o MailOptions) Validate() error {
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("smtp address %q: want host:port", o.Addr)
	}
	if _, err := mail.ParseAddress(o.From); err != nil {
		return fmt.Errorf("smtp from address %q: %v", o.From, err)
	}
	if o.User == "" && o.Password != "" {
		return errors.New("smtp password given without a user")
	}
	return nil
}

// MailtoScheme is the subscriber URI scheme of mail subscribers.
const MailtoScheme = "mailto"

// ParseMailto reads a mailto: subscriber as Zaqar's mailto task does: the
// recipient is the URI's path (one address), the subject its "subject"
// query parameter (case-insensitive name), if any. ok is false for
// anything that is not one plain address, so that a subscriber can never
// name several recipients or smuggle header lines.
func ParseMailto(subscriber string) (to, subject string, ok bool) {
	u, err := url.Parse(subscriber)
	if err != nil || u.Scheme != MailtoScheme || u.Opaque == "" {
		return "", "", false
	}
	addr, err := url.PathUnescape(u.Opaque)
	if err != nil {
		return "", "", false
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr {
		return "", "", false
	}
	for k, v := range u.Query() {
		if strings.EqualFold(k, "subject") && len(v) > 0 {
			subject = v[0]
		}
	}
	return a.Address, subject, true
}

// errNoSMTP: a mailto: subscription is owed messages but no SMTP server
// is configured (it was removed since the subscription was made).
var errNoSMTP = errors.New("mailto subscriber but no smtp server is configured")

// mailMessage renders one mail: headers, then text as quoted-printable
// UTF-8, which keeps lines under SMTP's 998-octet limit whatever the
// message body holds.
func mailMessage(from, to, subject string, text []byte, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", from, to,
		encodeSubject(subject), now.UTC().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	w := quotedprintable.NewWriter(&b)
	if _, err := w.Write(text); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// encodeSubject renders a subject as one header value: as is when it is
// short printable ASCII, else as base64 encoded words of whole runes,
// one per folded line. A subject can then neither add header lines (CR
// and LF are inside base64) nor pass SMTP's 998-octet line limit, which
// would get the mail refused for good.
func encodeSubject(s string) string {
	const plainMax, chunk = 60, 45 // a 45-byte chunk is a 72-character word
	plain := len(s) <= plainMax
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= ' ' && s[i] <= '~'
	}
	if plain {
		return s
	}
	var words []string
	for len(s) > 0 {
		n := min(chunk, len(s))
		for n < len(s) && n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		if n == 0 { // no rune starts in reach: invalid UTF-8, cut anyway
			n = min(chunk, len(s))
		}
		words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, "\r\n ")
}

// permanentSMTP reports whether err is the server's permanent refusal
// (a 5xx reply): sending the same mail again would be refused again, as a
// webhook's 4xx answer would be.
func permanentSMTP(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}

// sendMail makes one SMTP transaction through o's server, from the
// envelope sender from, bounded by timeout and ctx.
func sendMail(ctx context.Context, o MailOptions, from string, timeout time.Duration, to string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return err
	}
	// The deadline bounds every read and write; closing on ctx's end
	// stops a transaction that Close of the deliverer cancels.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	host, _, _ := net.SplitHostPort(o.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if o.User != "" {
		if err := c.Auth(smtp.PlainAuth("", o.User, o.Password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
