package drivers

import (
	"context"
	"errors"
	"fmt"
)

// The kinds of error a driver returns. Test with errors.Is.
var (
	// ErrNotFound: the key or container does not exist.
	ErrNotFound = errors.New("not found")
	// ErrPreconditionFailed: a create-only put found the key already there,
	// or a container to delete is not empty.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrUnavailable: the store could not be reached or answered with a
	// server error; the operation may be retried.
	ErrUnavailable = errors.New("store unavailable")
	// ErrInvalid: the caller passed something the store refuses (a bad
	// name, range or option).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotSupported: the store cannot do what was asked (a create-only
	// put on a store that ignores or refuses conditional writes).
	ErrNotSupported = errors.New("not supported by this store")

	// ErrAuth is not a kind but a mark in the chain of an ErrUnavailable
	// error: the store refused this client's credentials (401, 403, a bad
	// S3 signature). A request still gets ErrUnavailable, since an
	// operator can fix the key while Cistern runs; start-up does not wait
	// for it, since trying the same wrong key again cannot help.
	ErrAuth = errors.New("the store refused the credentials")
)

// Error is the error type drivers return: one of the kinds above, plus what
// was being done and the underlying cause.
type Error struct {
	Kind error  // one of the Err* sentinels
	Msg  string // what was being done, for people
	Err  error  // the cause, if any
}

func (e *Error) Error() string {
	s := e.Kind.Error()
	if e.Msg != "" {
		s = e.Msg + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, kind) hold for the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap gives the cause, so errors.Is also sees context errors and SDK
// error types underneath.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a formatted message.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of the given kind around cause.
func Wrap(kind error, cause error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// CtxErr returns ctx's error (wrapped with msg) when ctx has ended, so that a
// driver reports cancellation as such rather than as an unavailable store.
func CtxErr(ctx context.Context, msg string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", msg, err)
	}
	return nil
}

// KindOf returns the error kind of err (one of the sentinels), or nil when
// err is nil or of no kind (a context error, for example).
func KindOf(err error) error {
	for _, k := range []error{ErrNotFound, ErrPreconditionFailed, ErrUnavailable, ErrInvalid, ErrNotSupported} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}
