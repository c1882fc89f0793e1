package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// rawHeaders sends one HTTP/1.1 request over a plain connection and
// returns the response's header lines as sent, names in their case.
func rawHeaders(t *testing.T, base, method, path string) []string {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nClient-ID: %s\r\nX-Project-ID: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, path, u.Host, clientA, project)
	r := bufio.NewReader(c)
	var lines []string
	for {
		l, err := r.ReadString('\n')
		l = strings.TrimRight(l, "\r\n")
		if err != nil || l == "" {
			return lines
		}
		lines = append(lines, l)
	}
}

// TestHeaderNamesAsZaqarSendsThem: content-type, location, allow and vary
// go out in lower case, once each, as Zaqar sends them.
func TestHeaderNamesAsZaqarSendsThem(t *testing.T) {
	e := newEnv(t, envOpts{})
	hs := httptest.NewServer(e.srv.Handler())
	t.Cleanup(hs.Close)
	for _, c := range []struct {
		method, path string
		want         []string
	}{
		{"PUT", "/v2/queues/hq", []string{"location: "}},
		{"GET", "/v2/queues", []string{"content-type: application/json"}},
		{"POST", "/v2/queues/hq", []string{"allow: ", "vary: Accept", "content-type: application/json"}},
	} {
		lines := rawHeaders(t, hs.URL, c.method, c.path)
		all := strings.Join(lines, "\n")
		for _, w := range c.want {
			if strings.Count(all, "\n"+w) != 1 {
				t.Errorf("%s %s: want one %q line, got:\n%s", c.method, c.path, w, all)
			}
		}
		for _, canon := range []string{"Content-Type:", "Location:", "Allow:", "Vary:"} {
			if strings.Contains(all, "\n"+canon) {
				t.Errorf("%s %s: %s sent in canonical case:\n%s", c.method, c.path, canon, all)
			}
		}
	}
}
