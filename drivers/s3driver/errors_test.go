package s3driver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cistern-mq/cistern/drivers"
)

// sdkErr builds an error shaped like the SDK's: an operation error around a
// response error around an API error.
func sdkErr(status int, code string) error {
	var api error = &smithy.GenericAPIError{Code: code, Message: "m"}
	if code == "" {
		api = errors.New("deserialization failed")
	}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      api,
		},
	}}
}

func TestMapErr(t *testing.T) {
	s := &Store{bucket: "b"}
	cases := []struct {
		name   string
		err    error
		kind   error
		inText string
	}{
		{"get missing", sdkErr(404, "NoSuchKey"), drivers.ErrNotFound, ""},
		{"head missing", sdkErr(404, "NotFound"), drivers.ErrNotFound, ""},
		{"404 without code", sdkErr(404, ""), drivers.ErrNotFound, ""},
		{"missing bucket is no missing key", sdkErr(404, "NoSuchBucket"), drivers.ErrUnavailable, `bucket "b" does not exist`},
		{"create-only lost", sdkErr(412, "PreconditionFailed"), drivers.ErrPreconditionFailed, ""},
		{"create-only race (AWS)", sdkErr(409, "ConditionalRequestConflict"), drivers.ErrPreconditionFailed, ""},
		{"other conflict", sdkErr(409, "ObjectParentIsFile"), drivers.ErrInvalid, ""},
		{"range", sdkErr(416, "InvalidRange"), drivers.ErrInvalid, ""},
		{"bad argument", sdkErr(400, "InvalidArgument"), drivers.ErrInvalid, ""},
		{"key too long", sdkErr(400, "KeyTooLongError"), drivers.ErrInvalid, ""},
		{"socket timeout is a 400", sdkErr(400, "RequestTimeout"), drivers.ErrUnavailable, ""},
		{"conditional puts refused", sdkErr(501, "NotImplemented"), drivers.ErrNotSupported, ""},
		{"slow down", sdkErr(503, "SlowDown"), drivers.ErrUnavailable, ""},
		{"too many requests", sdkErr(429, ""), drivers.ErrUnavailable, ""},
		{"internal", sdkErr(500, "InternalError"), drivers.ErrUnavailable, ""},
		{"bad gateway without body", sdkErr(502, ""), drivers.ErrUnavailable, ""},
		{"denied", sdkErr(403, "AccessDenied"), drivers.ErrUnavailable, "credentials"},
		{"bad signature", sdkErr(403, "SignatureDoesNotMatch"), drivers.ErrUnavailable, "credentials"},
		{"wrong region", sdkErr(400, "AuthorizationHeaderMalformed"), drivers.ErrUnavailable, "region"},
		{"clock skew", sdkErr(403, "RequestTimeTooSkewed"), drivers.ErrUnavailable, "clock"},
		{"401", sdkErr(401, ""), drivers.ErrUnavailable, "credentials"},
		{"network", &smithy.OperationError{Err: errors.New("dial tcp 127.0.0.1:1: connection refused")}, drivers.ErrUnavailable, ""},
		{"own timeout", &smithy.OperationError{Err: context.DeadlineExceeded}, drivers.ErrUnavailable, "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.mapErr(context.Background(), tc.err, "op")
			if got := drivers.KindOf(err); got != tc.kind {
				t.Errorf("kind %v, want %v (%v)", got, tc.kind, err)
			}
			n := 0
			for _, k := range []error{drivers.ErrNotFound, drivers.ErrPreconditionFailed, drivers.ErrUnavailable, drivers.ErrInvalid, drivers.ErrNotSupported} {
				if errors.Is(err, k) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%v is of %d kinds, want exactly 1", err, n)
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Errorf("%v reads as a context error while the caller's context is live", err)
			}
			if !strings.Contains(err.Error(), tc.inText) {
				t.Errorf("%q does not mention %q", err, tc.inText)
			}
			// Start-up stops at once on a refused key instead of waiting.
			if auth := tc.inText == "credentials" || tc.inText == "region" || tc.inText == "clock"; errors.Is(err, drivers.ErrAuth) != auth {
				t.Errorf("errors.Is(%v, ErrAuth) = %v, want %v", err, !auth, auth)
			}
		})
	}
	if s.mapErr(context.Background(), nil, "op") != nil {
		t.Errorf("mapErr(nil) != nil")
	}
}

func TestMapErrCancelled(t *testing.T) {
	s := &Store{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.mapErr(ctx, sdkErr(503, "SlowDown"), "op")
	if !errors.Is(err, context.Canceled) || drivers.KindOf(err) != nil {
		t.Errorf("with a cancelled context: %v (kind %v), want context.Canceled and no kind", err, drivers.KindOf(err))
	}
}

func TestDeleteObjectsKeyErrors(t *testing.T) {
	// Per-key errors of DeleteObjects carry a code and no status.
	for code, kind := range map[string]error{
		"AccessDenied":  drivers.ErrUnavailable,
		"InternalError": drivers.ErrUnavailable,
		"SlowDown":      drivers.ErrUnavailable,
		"NoSuchKey":     drivers.ErrNotFound,
		"Unheard":       drivers.ErrUnavailable,
	} {
		if got := kindOf(code, 0); got != kind {
			t.Errorf("kindOf(%q, 0) = %v, want %v", code, got, kind)
		}
	}
}

func TestRefusesHeader(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{sdkErr(501, "NotImplemented"), true},
		{sdkErr(400, "InvalidArgument"), true},
		{sdkErr(400, "InvalidRequest"), true},
		{sdkErr(412, "PreconditionFailed"), false},
		{sdkErr(409, "ConditionalRequestConflict"), false},
		{sdkErr(403, "AccessDenied"), false},
		{sdkErr(400, "AuthorizationHeaderMalformed"), false},
		{sdkErr(404, "NoSuchBucket"), false},
		{sdkErr(503, "SlowDown"), false},
		{errors.New("connection reset"), false},
	}
	for _, tc := range cases {
		if got := refusesHeader(tc.err); got != tc.want {
			t.Errorf("refusesHeader(%s) = %v, want %v", describe(tc.err), got, tc.want)
		}
	}
}
