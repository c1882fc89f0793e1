package swiftdriver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ncw/swift/v2"

	"github.com/cistern-mq/cistern/drivers"
)

// errAuth marks a failure to (re-)authenticate; it wraps drivers.ErrAuth.
var errAuth = fmt.Errorf("swift authentication failed: %w", drivers.ErrAuth)

// fail turns an error from ncw/swift into the drivers error contract. ctx
// is the caller's context: when it has ended, its error is what the caller
// gets, whatever the request died of.
func fail(ctx context.Context, err error, format string, args ...any) error {
	msg := "swift " + fmt.Sprintf(format, args...)
	if cerr := drivers.CtxErr(ctx, msg); cerr != nil {
		return cerr
	}
	kind, cause := classify(err)
	return &drivers.Error{Kind: kind, Msg: msg, Err: cause}
}

// classify maps an error of a request whose caller is still waiting to a
// kind and the cause to report.
func classify(err error) (kind, cause error) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// The driver's own per-call timeout, not the caller's context:
		// flatten it so that errors.Is(err, context.DeadlineExceeded)
		// does not make the caller think its own deadline passed.
		return drivers.ErrUnavailable, fmt.Errorf("request timed out: %s", err.Error())
	}
	if errors.Is(err, errAuth) {
		return drivers.ErrUnavailable, err
	}
	var se *swift.Error
	if !errors.As(err, &se) {
		// Transport errors: refused or reset connections, DNS, EOF.
		return drivers.ErrUnavailable, err
	}
	code := se.StatusCode
	switch {
	case code == http.StatusUnauthorized:
		return drivers.ErrUnavailable, fmt.Errorf("%w: 401 even after re-authenticating (check User, Key and AuthURL, or the AuthToken): %v", errAuth, err)
	case code == http.StatusForbidden:
		return drivers.ErrUnavailable, fmt.Errorf("%w: 403 forbidden: the user may not do this on the account or container: %w", drivers.ErrAuth, err)
	}
	return kindOfStatus(code), err
}

// kindOfStatus maps an HTTP status from Swift to an error kind.
func kindOfStatus(code int) error {
	switch {
	case code == http.StatusNotFound:
		return drivers.ErrNotFound
	case code == http.StatusPreconditionFailed, code == http.StatusConflict:
		// 409 is a DELETE of a container that still holds objects.
		return drivers.ErrPreconditionFailed
	case code == http.StatusRequestTimeout, // also ncw/swift's own timeout
		code == http.StatusUnprocessableEntity, // body corrupted in transit (ETag mismatch)
		code == http.StatusTooManyRequests,
		code == 498, // Swift's ratelimit middleware
		code >= 500:
		return drivers.ErrUnavailable
	case code >= 400:
		// 400, 405, 411, 413, 414, 416, 431: a request the store refuses
		// whatever its state.
		return drivers.ErrInvalid
	}
	// 0 (ncw/swift's own errors) and any unexpected status.
	return drivers.ErrUnavailable
}

// statusOf returns the HTTP status carried by err, or 0.
func statusOf(err error) int {
	var se *swift.Error
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// parseStatusLine reads "404 Not Found", as bulk delete reports statuses.
func parseStatusLine(s string) int {
	code, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	n := 0
	for _, c := range code {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
