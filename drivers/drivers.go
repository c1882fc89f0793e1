// Package drivers is the one small interface Cistern keeps all of its state
// behind: named containers of keyed byte objects. Each backend lives in its own
// package (fsdriver, memdriver, swiftdriver, s3driver) so that importing this
// interface drags in no SDK, and every backend passes the same conformance
// suite (drivertest).
//
// Error contract: every method returns either nil, an error for which
// errors.Is holds against exactly one of the sentinel kinds below, or the
// context's error (errors.Is(err, context.Canceled) or
// context.DeadlineExceeded) when ctx ended first.
package drivers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Store is one object store (a pool): a local folder, a Swift account, an S3
// bucket. Implementations are safe for concurrent use.
type Store interface {
	// Put writes data under key, replacing any object there, and returns
	// only when the store has it durably. With opts.CreateOnly it fails with
	// ErrPreconditionFailed when the key already exists (how strongly that
	// holds under concurrency: Capabilities().CreateOnly), and with
	// ErrNotSupported on a store that cannot refuse an overwrite.
	// Putting into a container that does not exist fails with ErrNotFound
	// on fs, mem and swift; on s3, where a container is a key prefix, it
	// succeeds (checking would cost a request per put). Callers create
	// containers first.
	Put(ctx context.Context, container, key string, data []byte, opts *PutOptions) error

	// Get reads the whole object, or opts.Range of it. ErrNotFound when the
	// key or the container does not exist; ErrInvalid for a range that
	// starts at or past the end of a non-empty object.
	Get(ctx context.Context, container, key string, opts *GetOptions) ([]byte, error)

	// Head returns the object's attributes, or ErrNotFound.
	Head(ctx context.Context, container, key string) (Attrs, error)

	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, container, key string) error

	// List returns keys under opts.Prefix strictly after opts.Marker, in
	// byte order, at most opts.Limit of them. Page.Next is the marker of the
	// next page, empty when the listing is complete. A page may hold fewer
	// than Limit keys and still have a Next.
	List(ctx context.Context, container string, opts *ListOptions) (Page, error)

	// CreateContainer makes a container; it is not an error if it exists.
	CreateContainer(ctx context.Context, container string) error

	// DeleteContainer removes an empty container. A missing one is not an
	// error; one that still holds objects gives ErrPreconditionFailed.
	DeleteContainer(ctx context.Context, container string) error

	// ListContainers lists container names (as Page.Objects[i].Key) in byte
	// order after opts.Marker, under opts.Prefix. As with List, a page may
	// be short, even empty, and still have a Next.
	ListContainers(ctx context.Context, opts *ListOptions) (Page, error)

	// Capabilities reports the guarantees this store gives, as probed when
	// the driver was opened where a probe is possible.
	Capabilities() Capabilities

	// Close releases the driver's resources.
	Close() error
}

// BatchDeleter is implemented by stores that delete many keys in one request
// (Swift bulk delete, S3 DeleteObjects). Use DeleteMany, which falls back to
// one Delete per key.
type BatchDeleter interface {
	// DeleteKeys removes keys from container; missing keys are not errors.
	DeleteKeys(ctx context.Context, container string, keys []string) error
}

// DeleteMany removes keys from container with as few requests as the store
// allows.
func DeleteMany(ctx context.Context, s Store, container string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if bd, ok := s.(BatchDeleter); ok {
		return bd.DeleteKeys(ctx, container, keys)
	}
	for _, k := range keys {
		if err := s.Delete(ctx, container, k); err != nil {
			return err
		}
	}
	return nil
}

// PutOptions may be nil.
type PutOptions struct {
	// CreateOnly refuses to overwrite an existing key (If-None-Match: *).
	CreateOnly bool
}

// GetOptions may be nil.
type GetOptions struct {
	// Range, when set, reads only part of the object.
	Range *Range
}

// Range is a byte range of an object. Length < 0 reads to the end; Length
// 0 is invalid.
type Range struct {
	Offset int64
	Length int64
}

// ListOptions may be nil.
type ListOptions struct {
	Prefix string
	Marker string // exclusive: list keys strictly greater than Marker
	Limit  int    // <= 0 means DefaultListLimit; capped at MaxListLimit
}

// Listing limits shared by all drivers.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 10000
)

// Page is one page of a listing.
type Page struct {
	Objects []ObjectInfo
	// Next is the marker for the following page; "" when there is none.
	Next string
}

// ObjectInfo is one listed key.
type ObjectInfo struct {
	Key  string
	Size int64
}

// Attrs are an object's attributes.
type Attrs struct {
	Size    int64
	ModTime time.Time
	ETag    string // opaque; may be empty
}

// CreateOnly says how a store honours PutOptions.CreateOnly.
type CreateOnly int

const (
	// CreateOnlyNone: the store cannot refuse an overwrite; create-only
	// puts fail with ErrNotSupported.
	CreateOnlyNone CreateOnly = iota
	// CreateOnlyBestEffort: an existing key is refused, but two writers
	// racing on the same new key may both succeed (Swift).
	CreateOnlyBestEffort
	// CreateOnlyAtomic: of any number of concurrent creators exactly one
	// succeeds (fs, mem, S3 stores that implement conditional writes).
	CreateOnlyAtomic
)

func (c CreateOnly) String() string {
	switch c {
	case CreateOnlyNone:
		return "none"
	case CreateOnlyBestEffort:
		return "best-effort"
	case CreateOnlyAtomic:
		return "atomic"
	}
	return fmt.Sprintf("CreateOnly(%d)", int(c))
}

// Capabilities are the guarantees a store gives.
type Capabilities struct {
	Driver string // "fs", "mem", "swift", "s3"
	// CreateOnly is the strength of create-only puts.
	CreateOnly CreateOnly
	// ConsistentList is true when a listing reflects every put and delete
	// that returned before it started.
	ConsistentList bool
	// BatchDelete is true when DeleteMany costs one request per batch.
	BatchDelete bool
	// PathKeys is true when the store keeps keys as file paths (an S3
	// gateway over a file system, such as versitygw's posix backend): a
	// key with an empty, "." or ".." segment or a segment over 255 bytes
	// is refused with ErrInvalid, and a key cannot also be the parent of
	// other keys. Cistern's own keys never need either.
	PathKeys bool
}

// PathUnsafe reports whether key is one that a PathKeys store refuses:
// an empty, "." or ".." segment, or a segment over 255 bytes.
func PathUnsafe(key string) bool {
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > 255 {
			return true
		}
	}
	return false
}

// Name limits shared by all drivers. S3 limits a whole object key to 1024
// bytes, and the S3 driver puts the container name and a prefix in front of
// the key, so keys stop at 768 bytes.
const (
	MaxContainerLen = 200
	MaxKeyLen       = 768
)

// ValidContainer reports whether name is a valid container name: 1 to
// MaxContainerLen bytes of [A-Za-z0-9._-], not starting with '.'.
func ValidContainer(name string) error {
	if name == "" || len(name) > MaxContainerLen || name[0] == '.' {
		return Errorf(ErrInvalid, "container name %q: want 1 to %d bytes, not starting with '.'", name, MaxContainerLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return Errorf(ErrInvalid, "container name %q: byte %q is not one of [A-Za-z0-9._-]", name, c)
		}
	}
	return nil
}

// ValidKey reports whether key is a valid object key: 1 to MaxKeyLen bytes
// of valid UTF-8 without NUL. Anything else ('/', "..", spaces, any script)
// is allowed, and each driver encodes it so that it cannot escape its
// container.
func ValidKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return Errorf(ErrInvalid, "key of %d bytes: want 1 to %d", len(key), MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return Errorf(ErrInvalid, "key %q is not valid UTF-8", key)
	}
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return Errorf(ErrInvalid, "key %q holds a NUL byte", key)
		}
	}
	return nil
}

// ValidRange checks a range given in GetOptions.
func ValidRange(r *Range) error {
	if r == nil {
		return nil
	}
	if r.Offset < 0 || r.Length == 0 {
		return Errorf(ErrInvalid, "range offset %d length %d", r.Offset, r.Length)
	}
	return nil
}

// CheckListOptions normalises opts: a nil opts gives the defaults, and Limit
// is brought into 1..MaxListLimit.
func CheckListOptions(opts *ListOptions) ListOptions {
	var o ListOptions
	if opts != nil {
		o = *opts
	}
	if o.Limit <= 0 {
		o.Limit = DefaultListLimit
	}
	if o.Limit > MaxListLimit {
		o.Limit = MaxListLimit
	}
	return o
}

// SliceRange applies a range to a whole object's bytes with the contract of
// Store.Get, for drivers that hold whole objects.
func SliceRange(data []byte, r *Range) ([]byte, error) {
	if r == nil {
		return slices.Clone(data), nil
	}
	size := int64(len(data))
	if r.Offset >= size && !(size == 0 && r.Offset == 0) {
		return nil, Errorf(ErrInvalid, "range offset %d past the end (%d bytes)", r.Offset, size)
	}
	end := size
	if r.Length > 0 && r.Offset+r.Length < size {
		end = r.Offset + r.Length
	}
	return slices.Clone(data[r.Offset:end]), nil
}

// PageOf sorts infos and cuts the page that o asks for, for drivers that
// list everything and page in memory.
func PageOf(infos []ObjectInfo, o ListOptions) Page {
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	var p Page
	for _, info := range infos {
		if info.Key <= o.Marker || !strings.HasPrefix(info.Key, o.Prefix) {
			continue
		}
		if len(p.Objects) == o.Limit {
			p.Next = p.Objects[len(p.Objects)-1].Key
			break
		}
		p.Objects = append(p.Objects, info)
	}
	return p
}
