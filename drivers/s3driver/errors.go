package s3driver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"

	"github.com/cistern-mq/cistern/drivers"
)

// authHint is added to every authentication or authorisation failure. They
// map to ErrUnavailable, not ErrInvalid: nothing the caller passed is wrong,
// the store refuses this client (bad or expired credentials, clock skew, a
// bucket policy), an operator has to fix it, and the operation can succeed
// unchanged once they have.
const authHint = "the store refused this client's credentials: check the access key, secret, region, clock and bucket policy"

// codeKinds maps S3 error codes to error kinds, ahead of the HTTP status:
// several codes share a status but not a meaning (400 RequestTimeout is
// retryable, 404 NoSuchBucket is a broken pool, not a missing key).
var codeKinds = map[string]error{
	"NoSuchKey": drivers.ErrNotFound,
	"NotFound":  drivers.ErrNotFound, // HEAD: no body, the SDK names it after the status

	"PreconditionFailed": drivers.ErrPreconditionFailed,
	// AWS answers 409 to a conditional put racing another one on the same key.
	"ConditionalRequestConflict": drivers.ErrPreconditionFailed,

	"InvalidRange":      drivers.ErrInvalid,
	"InvalidArgument":   drivers.ErrInvalid,
	"InvalidRequest":    drivers.ErrInvalid,
	"InvalidObjectName": drivers.ErrInvalid,
	"KeyTooLongError":   drivers.ErrInvalid,
	"EntityTooLarge":    drivers.ErrInvalid,
	"MalformedXML":      drivers.ErrInvalid,

	"NotImplemented": drivers.ErrNotSupported,

	// A missing bucket must never read as a missing key: recovery would
	// take an unreachable queue for an empty one.
	"NoSuchBucket": drivers.ErrUnavailable,

	"SlowDown":             drivers.ErrUnavailable,
	"Throttling":           drivers.ErrUnavailable,
	"ThrottlingException":  drivers.ErrUnavailable,
	"RequestLimitExceeded": drivers.ErrUnavailable,
	"TooManyRequests":      drivers.ErrUnavailable,
	"RequestTimeout":       drivers.ErrUnavailable,
	"InternalError":        drivers.ErrUnavailable,
	"ServiceUnavailable":   drivers.ErrUnavailable,
	"OperationAborted":     drivers.ErrUnavailable,
	"BadDigest":            drivers.ErrUnavailable, // the body changed in transit
	"IncompleteBody":       drivers.ErrUnavailable,
}

// authCodes are the codes of a refused client; see authHint.
var authCodes = map[string]bool{
	"AccessDenied":                 true,
	"AllAccessDisabled":            true,
	"AccountProblem":               true,
	"AuthorizationHeaderMalformed": true,
	"ExpiredToken":                 true,
	"InvalidAccessKeyId":           true,
	"InvalidSecurity":              true,
	"InvalidToken":                 true,
	"RequestTimeTooSkewed":         true,
	"SignatureDoesNotMatch":        true,
	"TokenRefreshRequired":         true,
}

// kindOf classifies an S3 error by its code, then its HTTP status (0 when
// unknown, as for the per-key errors of DeleteObjects).
func kindOf(code string, status int) error {
	if k, ok := codeKinds[code]; ok {
		return k
	}
	if authCodes[code] {
		return drivers.ErrUnavailable
	}
	switch {
	case status == http.StatusNotFound:
		return drivers.ErrNotFound
	case status == http.StatusPreconditionFailed:
		return drivers.ErrPreconditionFailed
	case status == http.StatusRequestedRangeNotSatisfiable:
		return drivers.ErrInvalid
	case status == http.StatusNotImplemented:
		return drivers.ErrNotSupported
	case status == http.StatusUnauthorized, status == http.StatusForbidden,
		status == http.StatusRequestTimeout, status == http.StatusTooManyRequests,
		status >= 500:
		return drivers.ErrUnavailable
	case status >= 400:
		return drivers.ErrInvalid
	}
	// No answer at all: network errors, timeouts, a response the SDK could
	// not parse.
	return drivers.ErrUnavailable
}

func isAuth(code string, status int) bool {
	return authCodes[code] || (codeKinds[code] == nil && (status == http.StatusUnauthorized || status == http.StatusForbidden))
}

// codeOf returns the S3 error code of err, or "".
func codeOf(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// statusOf returns the HTTP status of the response that caused err, or 0.
func statusOf(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// describe is a short "404 NoSuchKey: message" for logs and warnings.
func describe(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		s := fmt.Sprintf("%d %s", statusOf(err), ae.ErrorCode())
		if m := ae.ErrorMessage(); m != "" {
			s += ": " + m
		}
		return s
	}
	return err.Error()
}

func classify(err error) error { return kindOf(codeOf(err), statusOf(err)) }

func isNotFound(err error) bool { return err != nil && classify(err) == drivers.ErrNotFound }

func isPrecondition(err error) bool {
	return err != nil && classify(err) == drivers.ErrPreconditionFailed
}

// refusesHeader reports whether a conditional put failed because the store
// does not take the condition: 501 (Swift's s3api: "Conditional object PUTs
// are not supported"), or a 4xx that is none of auth, missing bucket,
// precondition. The probe confirms a 4xx with a plain put.
func refusesHeader(err error) bool {
	code, status := codeOf(err), statusOf(err)
	switch {
	case status == http.StatusNotImplemented || code == "NotImplemented":
		return true
	case isAuth(code, status), code == "NoSuchBucket", code == "RequestTimeout",
		status == http.StatusNotFound, status == http.StatusPreconditionFailed,
		status == http.StatusConflict, status == http.StatusTooManyRequests:
		return false
	}
	return status >= 400 && status < 500
}

// mapErr turns an SDK error into a drivers error of exactly one kind, or into
// the caller's context error when ctx has ended. format describes the
// operation.
func (s *Store) mapErr(ctx context.Context, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", msg, cerr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Our own per-attempt timeout, not the caller's context: keep the
		// text but not the chain, so errors.Is(err, context.DeadlineExceeded)
		// stays false for a caller whose context is still live.
		return drivers.Wrap(drivers.ErrUnavailable, errors.New(err.Error()), "%s: timed out", msg)
	}
	code, status := codeOf(err), statusOf(err)
	if isAuth(code, status) {
		return drivers.Wrap(drivers.ErrUnavailable, fmt.Errorf("%w: %w", drivers.ErrAuth, err), "%s: %s", msg, authHint)
	}
	if code == "NoSuchBucket" {
		return drivers.Wrap(drivers.ErrUnavailable, err, "%s: bucket %q does not exist", msg, s.bucket)
	}
	return drivers.Wrap(kindOf(code, status), err, "%s", msg)
}
