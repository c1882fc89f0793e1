package s3driver

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cistern-mq/cistern/drivers"
)

// maxS3Key is the longest key S3 (and Swift's s3api) stores, in bytes,
// KeyPrefix and container included.
const maxS3Key = 1024

// maxSegment is the longest path segment a file-system backed store keeps
// (NAME_MAX).
const maxSegment = 255

// The mapping of containers and keys onto the bucket (see the package doc).

func (s *Store) containerPrefix(container string) string { return s.prefix + container + "/" }
func (s *Store) objectKey(container, key string) string  { return s.prefix + container + "/" + key }
func (s *Store) markerKey(container string) string       { return s.prefix + markerDir + container }

// begin checks ctx and the names, before any request.
func (s *Store) begin(ctx context.Context, op, container, key string, checkKey bool) error {
	if err := drivers.CtxErr(ctx, "s3 "+op); err != nil {
		return err
	}
	if err := drivers.ValidContainer(container); err != nil {
		return err
	}
	if checkKey {
		return s.checkKey(container, key)
	}
	return nil
}

// checkKey checks key against the drivers' rules and against what this store
// can hold once the key is mapped.
func (s *Store) checkKey(container, key string) error {
	if err := drivers.ValidKey(key); err != nil {
		return err
	}
	if n := len(s.objectKey(container, key)); n > maxS3Key {
		return drivers.Errorf(drivers.ErrInvalid, "key of %d bytes in %s: %d bytes with the prefix, over S3's limit of %d", len(key), container, n, maxS3Key)
	}
	if s.pathKeys {
		if err := pathSafe(key); err != nil {
			return drivers.Errorf(drivers.ErrInvalid, "key %.80q in %s: %s on a store that keeps keys as file paths (%s)", key, container, err, s.endpoint)
		}
	}
	return nil
}

// pathSafe says why key cannot be a relative file path that stays where it
// is put: an empty, "." or ".." segment (a file system resolves them, so
// "../x" would land in a neighbouring container) or one over NAME_MAX.
func pathSafe(key string) error {
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("an empty path segment")
		case seg == "." || seg == "..":
			return fmt.Errorf("a %q path segment", seg)
		case len(seg) > maxSegment:
			return fmt.Errorf("a path segment of %d bytes (over %d)", len(seg), maxSegment)
		}
	}
	return nil
}

// rangeHeader renders r as an HTTP Range value.
func rangeHeader(r *drivers.Range) string {
	if r.Length < 0 {
		return fmt.Sprintf("bytes=%d-", r.Offset)
	}
	return fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Length-1)
}

// xmlSafe reports whether key survives the XML body of DeleteObjects (the
// SDK replaces characters outside XML 1.0's Char production).
func xmlSafe(key string) bool {
	for _, r := range key {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}

// decodeKey undoes EncodingType=url. S3 encodes a space as '+' and a '+' as
// "%2B", so QueryUnescape is the inverse.
func decodeKey(k string, enc types.EncodingType) (string, error) {
	if enc != types.EncodingTypeUrl {
		return k, nil
	}
	d, err := url.QueryUnescape(k)
	if err != nil {
		return "", fmt.Errorf("listing returned a badly encoded key %q: %w", k, err)
	}
	return d, nil
}
