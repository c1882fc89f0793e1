// Package swiftdriver is the drivers.Store of OpenStack Swift, through
// github.com/ncw/swift/v2. A Cistern container is the Swift container
// Config.ContainerPrefix + name; a key is an object name, passed through
// unchanged (ncw/swift escapes it into the URL path).
//
// Guarantees, as Capabilities reports them:
//
//   - A Put returns once Swift answered 201, that is once a quorum of
//     object replicas wrote and fsynced it (or 202: a copy with a newer
//     timestamp was there first, and wins).
//   - Create-only puts send If-None-Match: *. Each object server checks it
//     before the body arrives, so of several concurrent creators of a new
//     key more than one may succeed (measured on a one-node Swift 2.30: 1
//     to 16 of 16): CreateOnlyBestEffort. New probes it; a cluster that
//     ignores the header gets CreateOnlyNone. A create-only put answered
//     202 (a newer copy already there) is reported as a conflict.
//   - Listings are not consistent (ConsistentList false): they come from
//     container databases that object servers update after the write, and
//     an update that times out (1 s by default, easily reached under load)
//     is queued as an async pending and replayed later by the
//     object-updater. A listing may miss an acknowledged put or still show
//     a deleted key for seconds or, while a node is down, much longer.
//   - DeleteKeys uses the bulk middleware (one POST ?bulk-delete for up to
//     1000 keys) when New found it working, else one DELETE per key.
package swiftdriver

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/cistern-mq/cistern/drivers"
)

// probeContainer (after ContainerPrefix) holds New's create-only probe. It
// starts with '.', so no Cistern container name maps to it and
// ListContainers never shows it.
const probeContainer = ".cistern-probe"

// bulkBatch is the most keys sent in one bulk delete. Swift's default
// allows 10000, but one request must finish within Config.Timeout, and a
// small Swift deletes about 200 objects a second.
const bulkBatch = 1000

// Store is a Swift account as a drivers.Store. It is safe for concurrent
// use.
type Store struct {
	conn      *swift.Connection
	transport *http.Transport
	prefix    string
	timeout   time.Duration
	caps      drivers.Capabilities

	// Limits of the cluster, from /info when it answers.
	listLimit     int // container_listing_limit
	accountLimit  int // account_listing_limit
	bulkMax       int // bulk_delete max_deletes_per_request
	bulkMaxLine   int // the longest quoted line bulk delete reads
	bulkAvailable atomic.Bool
}

var (
	_ drivers.Store        = (*Store)(nil)
	_ drivers.BatchDeleter = (*Store)(nil)
)

// New authenticates, reads the cluster's limits from /info, and probes
// what create-only puts and bulk deletes do on this cluster.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := open(cfg, newBaseTransport())
	if err := s.authenticate(ctx, cfg); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.readInfo(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.probe(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// open builds a Store without talking to Swift. The capabilities are the
// ones a probe finds on a stock Swift.
func open(cfg Config, base *http.Transport) *Store {
	conn := &swift.Connection{
		AuthUrl:      cfg.AuthURL,
		UserName:     cfg.User,
		ApiKey:       cfg.Key,
		Domain:       cfg.UserDomain,
		Tenant:       cfg.Project,
		TenantDomain: cfg.ProjectDomain,
		Region:       cfg.Region,
		AuthVersion:  cfg.AuthVersion,
		EndpointType: swift.EndpointType(cfg.EndpointType),
		Transport:    noExpect{next: base},
		UserAgent:    "cistern-swiftdriver",
		// ncw/swift's own timers: ConnectTimeout runs until the response
		// headers, Timeout while a body stalls. The call's context bounds
		// the whole of it anyway.
		ConnectTimeout: cfg.Timeout,
		Timeout:        cfg.Timeout,
	}
	if cfg.AuthURL == "" {
		conn.StorageUrl = cfg.StorageURL
		conn.AuthToken = cfg.AuthToken
		conn.Auth = tokenOnly{}
	}
	s := &Store{
		conn:         conn,
		transport:    base,
		prefix:       cfg.ContainerPrefix,
		timeout:      cfg.Timeout,
		listLimit:    drivers.MaxListLimit,
		accountLimit: drivers.MaxListLimit,
		bulkMax:      bulkBatch,
		bulkMaxLine:  1024 + 256 + 2, // Swift's default name limits
		caps: drivers.Capabilities{
			Driver:         "swift",
			CreateOnly:     drivers.CreateOnlyBestEffort,
			ConsistentList: false,
		},
	}
	s.bulkAvailable.Store(true)
	return s
}

func (s *Store) authenticate(ctx context.Context, cfg Config) error {
	if cfg.AuthURL == "" {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.conn.Authenticate(cctx); err != nil {
		if st := statusOf(err); st == http.StatusUnauthorized || st == http.StatusForbidden {
			err = fmt.Errorf("%w at %s as %q (status %d): %v", errAuth, cfg.AuthURL, cfg.User, st, err)
		}
		return fail(ctx, err, "authenticate")
	}
	if cfg.StorageURL != "" {
		// No request runs yet, so the fields need no lock.
		s.conn.Auth = &fixedStorageURL{Authenticator: s.conn.Auth, url: cfg.StorageURL}
		s.conn.StorageUrl = cfg.StorageURL
	}
	return nil
}

// readInfo takes the listing and bulk delete limits from /info. A cluster
// that hides /info keeps Swift's defaults.
func (s *Store) readInfo(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	info, err := s.conn.QueryInfo(cctx)
	if err != nil {
		return drivers.CtxErr(ctx, "swift /info")
	}
	num := func(section map[string]any, key string) int {
		if v, ok := section[key].(float64); ok && v >= 1 {
			return int(v)
		}
		return 0
	}
	if sw, ok := info["swift"].(map[string]any); ok {
		if n := num(sw, "container_listing_limit"); n > 0 {
			s.listLimit = min(n, drivers.MaxListLimit)
		}
		if n := num(sw, "account_listing_limit"); n > 0 {
			s.accountLimit = min(n, drivers.MaxListLimit)
		}
		obj, cont := num(sw, "max_object_name_length"), num(sw, "max_container_name_length")
		if obj > 0 && cont > 0 {
			s.bulkMaxLine = obj + cont + 2
		}
	}
	if bd, ok := info["bulk_delete"].(map[string]any); ok {
		if n := num(bd, "max_deletes_per_request"); n > 0 {
			s.bulkMax = min(n, bulkBatch)
		}
	}
	return nil
}

// probe finds out what this cluster does with create-only puts and bulk
// deletes, with an object of its own in the probe container: created
// create-only twice (201 then 412 is best-effort; a second 201 means the
// header is ignored), then removed with a bulk delete.
func (s *Store) probe(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 4*s.timeout)
	defer cancel()
	pc := s.prefix + probeContainer
	if err := s.conn.ContainerCreate(cctx, pc, nil); err != nil {
		return fail(ctx, err, "probe: create container %s", pc)
	}
	key := "create-only-" + randHex(8)
	err := s.putObject(cctx, ctx, pc, key, []byte("probe"), true)
	if st := statusOf(err); st == http.StatusBadRequest || st == http.StatusNotImplemented {
		// A Swift-compatible store that refuses the header altogether.
		s.caps.CreateOnly = drivers.CreateOnlyNone
		return nil
	}
	if err != nil {
		return fmt.Errorf("probe: first create-only put of %s/%s: %w", pc, key, err)
	}
	defer func() {
		// Remove the probe object even when the caller gave up.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		if s.bulkAvailable.Load() {
			if err := s.bulkDelete(dctx, dctx, pc, []string{key}); err == nil {
				return
			}
		}
		_ = s.conn.ObjectDelete(dctx, pc, key)
	}()
	err = s.putObject(cctx, ctx, pc, key, []byte("probe again"), true)
	switch {
	case err == nil:
		s.caps.CreateOnly = drivers.CreateOnlyNone
	case statusOf(err) == http.StatusPreconditionFailed:
		s.caps.CreateOnly = drivers.CreateOnlyBestEffort
	default:
		return fmt.Errorf("probe: second create-only put of %s/%s: %w", pc, key, err)
	}
	// Bulk delete: POST ?bulk-delete of a key that is not there. A
	// cluster without the middleware answers 204 (an account POST without
	// metadata, harmless) or 403 instead of a JSON report.
	// bulkDelete itself turns bulk deletes off on such an answer.
	err = s.bulkDelete(cctx, ctx, pc, []string{key + "-absent"})
	var unsupported *errBulkUnsupported
	if err != nil && !errors.As(err, &unsupported) {
		return fmt.Errorf("probe: bulk delete: %w", err)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Capabilities implements drivers.Store. BatchDelete turns false if a
// cluster stops answering bulk deletes.
func (s *Store) Capabilities() drivers.Capabilities {
	c := s.caps
	c.BatchDelete = s.bulkAvailable.Load()
	return c
}

// Close implements drivers.Store.
func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// check checks the caller's context and the names, and returns the Swift
// container name.
func (s *Store) check(ctx context.Context, op, container string, keys ...string) (string, error) {
	if err := drivers.CtxErr(ctx, "swift "+op); err != nil {
		return "", err
	}
	if err := drivers.ValidContainer(container); err != nil {
		return "", err
	}
	for _, k := range keys {
		if err := drivers.ValidKey(k); err != nil {
			return "", err
		}
	}
	return s.prefix + container, nil
}

// begin is check, plus a context bounded by the driver's timeout.
func (s *Store) begin(ctx context.Context, op, container string, keys ...string) (string, context.Context, context.CancelFunc, error) {
	sc, err := s.check(ctx, op, container, keys...)
	if err != nil {
		return "", nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	return sc, cctx, cancel, nil
}

// Put implements drivers.Store.
func (s *Store) Put(ctx context.Context, container, key string, data []byte, opts *drivers.PutOptions) error {
	sc, cctx, cancel, err := s.begin(ctx, "put", container, key)
	if err != nil {
		return err
	}
	defer cancel()
	createOnly := opts != nil && opts.CreateOnly
	if createOnly && s.caps.CreateOnly == drivers.CreateOnlyNone {
		return drivers.Errorf(drivers.ErrNotSupported, "swift put %s/%s: this cluster ignores If-None-Match (probed at start)", container, key)
	}
	return s.putObject(cctx, ctx, sc, key, data, createOnly)
}

// putObject PUTs data with its MD5 as ETag, so that Swift refuses a body
// damaged on the way (422). cctx bounds the request; ctx is the caller's.
func (s *Store) putObject(cctx, ctx context.Context, sc, key string, data []byte, createOnly bool) error {
	sum := md5.Sum(data)
	h := swift.Headers{
		"Content-Length": strconv.Itoa(len(data)),
		"Content-Type":   "application/octet-stream",
		"Etag":           hex.EncodeToString(sum[:]),
	}
	if createOnly {
		h["If-None-Match"] = "*"
	}
	var body io.Reader
	if len(data) > 0 {
		body = bytes.NewReader(data) // seekable, so a 401 can be retried
	}
	resp, _, err := s.call(cctx, swift.RequestOpts{
		Container:  sc,
		ObjectName: key,
		Operation:  http.MethodPut,
		Headers:    h,
		Body:       body,
		NoResponse: true,
	})
	if err != nil {
		return fail(ctx, err, "put %s/%s", sc, key)
	}
	if createOnly && resp.StatusCode == http.StatusAccepted {
		// The proxy turns an object server's 409 (it already holds a copy
		// with a newer or equal timestamp) into 202: this body was
		// dropped because another writer's is there.
		return drivers.Errorf(drivers.ErrPreconditionFailed, "swift put %s/%s: a concurrent writer's copy is already stored (202)", sc, key)
	}
	return nil
}

// call sends one request to the storage URL.
func (s *Store) call(ctx context.Context, p swift.RequestOpts) (*http.Response, swift.Headers, error) {
	u, err := s.conn.GetStorageUrl(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Runs with ncw/swift's auth lock held, after a re-authentication.
	p.OnReAuth = func() (string, error) { return s.conn.StorageUrl, nil }
	return s.conn.Call(ctx, u, p)
}

// Get implements drivers.Store.
func (s *Store) Get(ctx context.Context, container, key string, opts *drivers.GetOptions) ([]byte, error) {
	var r *drivers.Range
	if opts != nil {
		r = opts.Range
	}
	if err := drivers.ValidRange(r); err != nil {
		return nil, err
	}
	sc, cctx, cancel, err := s.begin(ctx, "get", container, key)
	if err != nil {
		return nil, err
	}
	defer cancel()
	h := swift.Headers{}
	if r != nil {
		h["Range"] = rangeHeader(r)
	}
	// A whole object's MD5 is checked against its ETag as it is read.
	f, headers, err := s.conn.ObjectOpen(cctx, sc, key, r == nil, h)
	if err != nil {
		if r != nil && r.Offset == 0 && statusOf(err) == http.StatusRequestedRangeNotSatisfiable {
			// Swift answers 416 to any range of an empty object; the
			// contract gives an empty read from offset 0.
			return []byte{}, nil
		}
		return nil, fail(ctx, err, "get %s/%s", sc, key)
	}
	var buf bytes.Buffer
	if n, err := strconv.ParseInt(headers["Content-Length"], 10, 64); err == nil && n >= 0 && n < 1<<30 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err = buf.ReadFrom(f)
	if cerr := f.Close(); err == nil {
		err = cerr // a short body or an MD5 mismatch
	}
	if err != nil {
		return nil, fail(ctx, err, "get %s/%s: reading the body", sc, key)
	}
	data := buf.Bytes()
	if data == nil {
		data = []byte{}
	}
	if r != nil && headers["Content-Range"] == "" {
		// The whole object came back (a server that ignores ranges).
		return drivers.SliceRange(data, r)
	}
	return data, nil
}

// rangeHeader writes r (valid and non-nil) as an HTTP Range; Swift clips
// an end past the object's end.
func rangeHeader(r *drivers.Range) string {
	if r.Length < 0 || r.Offset > (1<<63-1)-r.Length {
		return fmt.Sprintf("bytes=%d-", r.Offset)
	}
	return fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Length-1)
}

// Head implements drivers.Store.
func (s *Store) Head(ctx context.Context, container, key string) (drivers.Attrs, error) {
	sc, cctx, cancel, err := s.begin(ctx, "head", container, key)
	if err != nil {
		return drivers.Attrs{}, err
	}
	defer cancel()
	info, headers, err := s.conn.Object(cctx, sc, key)
	if err != nil {
		return drivers.Attrs{}, fail(ctx, err, "head %s/%s", sc, key)
	}
	a := drivers.Attrs{Size: info.Bytes, ModTime: info.LastModified, ETag: info.Hash}
	if t, ok := parseTimestamp(headers["X-Timestamp"]); ok {
		a.ModTime = t
	}
	return a, nil
}

// parseTimestamp reads Swift's X-Timestamp ("1795614398.72036"), which has
// the microseconds that Last-Modified lacks.
func parseTimestamp(s string) (time.Time, bool) {
	secs, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || sec <= 0 || len(frac) > 9 {
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		n, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, false
		}
		for i := len(frac); i < 9; i++ {
			n *= 10
		}
		nsec = n
	}
	return time.Unix(sec, nsec), true
}

// Delete implements drivers.Store.
func (s *Store) Delete(ctx context.Context, container, key string) error {
	sc, cctx, cancel, err := s.begin(ctx, "delete", container, key)
	if err != nil {
		return err
	}
	defer cancel()
	return s.deleteObject(cctx, ctx, sc, key)
}

func (s *Store) deleteObject(cctx, ctx context.Context, sc, key string) error {
	err := s.conn.ObjectDelete(cctx, sc, key)
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fail(ctx, err, "delete %s/%s", sc, key)
	}
	return nil
}

// List implements drivers.Store.
func (s *Store) List(ctx context.Context, container string, opts *drivers.ListOptions) (drivers.Page, error) {
	o := drivers.CheckListOptions(opts)
	sc, cctx, cancel, err := s.begin(ctx, "list", container)
	if err != nil {
		return drivers.Page{}, err
	}
	defer cancel()
	limit := min(o.Limit, s.listLimit)
	objs, err := s.conn.Objects(cctx, sc, &swift.ObjectsOpts{Prefix: o.Prefix, Marker: o.Marker, Limit: limit})
	if err != nil {
		return drivers.Page{}, fail(ctx, err, "list %s", sc)
	}
	p := drivers.Page{Objects: make([]drivers.ObjectInfo, len(objs))}
	for i, obj := range objs {
		p.Objects[i] = drivers.ObjectInfo{Key: obj.Name, Size: obj.Bytes}
	}
	// Swift returns at most limit names and fewer only at the end.
	if len(objs) >= limit {
		p.Next = objs[len(objs)-1].Name
	}
	return p, nil
}

// CreateContainer implements drivers.Store.
func (s *Store) CreateContainer(ctx context.Context, container string) error {
	sc, cctx, cancel, err := s.begin(ctx, "create container", container)
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.conn.ContainerCreate(cctx, sc, nil); err != nil {
		return fail(ctx, err, "create container %s", sc)
	}
	return nil
}

// DeleteContainer implements drivers.Store.
func (s *Store) DeleteContainer(ctx context.Context, container string) error {
	sc, cctx, cancel, err := s.begin(ctx, "delete container", container)
	if err != nil {
		return err
	}
	defer cancel()
	err = s.conn.ContainerDelete(cctx, sc)
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fail(ctx, err, "delete container %s", sc)
	}
	return nil
}

// ListContainers implements drivers.Store. Only Swift containers whose
// names start with ContainerPrefix are listed, without it; others that
// are no Cistern container name (the probe container) are skipped, so a
// page may be short and still have a Next.
func (s *Store) ListContainers(ctx context.Context, opts *drivers.ListOptions) (drivers.Page, error) {
	o := drivers.CheckListOptions(opts)
	if err := drivers.CtxErr(ctx, "swift list containers"); err != nil {
		return drivers.Page{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	limit := min(o.Limit, s.accountLimit)
	so := &swift.ContainersOpts{Prefix: s.prefix + o.Prefix, Limit: limit}
	if o.Marker != "" {
		so.Marker = s.prefix + o.Marker
	}
	cs, err := s.conn.Containers(cctx, so)
	if statusOf(err) == http.StatusNotFound {
		return drivers.Page{}, nil // an account not created yet holds nothing
	}
	if err != nil {
		return drivers.Page{}, fail(ctx, err, "list containers")
	}
	var p drivers.Page
	for _, c := range cs {
		name, ok := strings.CutPrefix(c.Name, s.prefix)
		if !ok || drivers.ValidContainer(name) != nil {
			continue
		}
		p.Objects = append(p.Objects, drivers.ObjectInfo{Key: name})
	}
	if len(cs) >= limit {
		p.Next = strings.TrimPrefix(cs[len(cs)-1].Name, s.prefix)
	}
	return p, nil
}
