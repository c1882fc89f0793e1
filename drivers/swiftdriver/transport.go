package swiftdriver

import (
	"net/http"
	"time"
)

// newBaseTransport is http.DefaultTransport with a connection pool sized
// for many concurrent queue writers against one proxy.
func newBaseTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// noExpect removes the "Expect: 100-continue" header that ncw/swift puts on
// every upload. When Swift's proxy answers such a request early (a 412 for
// If-None-Match: *), eventlet closes the connection without saying so, Go
// sends the body anyway and keeps the connection pooled, and the next
// request on it fails with EOF or a broken pipe (measured: 132-160 of 200
// PUTs after a refused create-only PUT; none with the header removed).
type noExpect struct {
	next http.RoundTripper
}

func (t noExpect) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := req.Header["Expect"]; !ok {
		return t.next.RoundTrip(req)
	}
	// A RoundTripper must not change the caller's request.
	r := req.Clone(req.Context())
	r.Header.Del("Expect")
	return t.next.RoundTrip(r)
}

// CloseIdleConnections lets ncw/swift flush the pool on re-authentication
// and Store.Close release it.
func (t noExpect) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
