// Package s3driver is the drivers.Store for S3 and S3-compatible object
// stores (AWS, MinIO, versitygw, Ceph RGW, Swift's s3api middleware).
//
// A pool is one bucket. A Cistern container is a key prefix inside it, never
// a bucket of its own (bucket names are too constrained and too few for one
// per queue):
//
//	KeyPrefix + container + "/" + key      an object
//	KeyPrefix + ".containers/" + container  the marker saying the container exists
//	KeyPrefix + ".probe/" + random          start-up probes, deleted at once
//
// Container names never start with '.', so markers and probes can never
// collide with data. Put does not check that the container exists (that would
// cost a request per message): on S3 a put into a missing container succeeds
// and leaves an object that a later CreateContainer makes visible again.
//
// At New the driver probes whether the store honours If-None-Match: * on
// PutObject and reports the result in Capabilities and Warnings; where it
// does not, create-only puts fail with drivers.ErrNotSupported and write
// nothing. It also probes whether the store keeps keys as file paths
// (versitygw's posix backend resolves "a/../b" to "b"); there it refuses keys
// that would leave their container. Keys are limited to S3's 1024 bytes with
// KeyPrefix and container included.
package s3driver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cistern-mq/cistern/drivers"
)

// Reserved key prefixes inside KeyPrefix. Both start with '.', which no
// container name can.
const (
	markerDir = ".containers/"
	probeDir  = ".probe/"
)

// Defaults.
const (
	DefaultRegion  = "us-east-1"
	DefaultTimeout = 30 * time.Second
	// maxIdlePerHost is the idle connection pool per host: an object store
	// is usually one host, and Cistern keeps many requests in flight.
	maxIdlePerHost = 128
	// maxBatch is the most keys one DeleteObjects request takes.
	maxBatch = 1000
	// maxListPage is the most keys one ListObjectsV2 request returns.
	maxListPage = 1000
)

// Config says how to reach one bucket.
type Config struct {
	// Endpoint is the store's base URL ("http://127.0.0.1:8080"); empty
	// means AWS S3 itself.
	Endpoint string
	// Region is the SigV4 signing region; default us-east-1 (which is also
	// what Swift's s3api and versitygw expect unless configured otherwise).
	Region string
	// Bucket is the one bucket holding the pool; required.
	Bucket string
	// AccessKey and SecretKey are static credentials. When both are empty
	// the SDK's default chain is used (AWS_* environment variables, shared
	// config and credentials files, web identity, instance roles).
	AccessKey string
	SecretKey string
	// PathStyle addresses the bucket as ENDPOINT/BUCKET/KEY instead of
	// BUCKET.ENDPOINT/KEY (needed by Swift's s3api, MinIO, versitygw).
	PathStyle bool
	// KeyPrefix, if set, is prepended to every key Cistern writes, so that
	// Cistern can share a bucket. It must end in '/'.
	KeyPrefix string
	// CreateBucket creates the bucket at New when it does not exist.
	CreateBucket bool
	// Timeout bounds one HTTP attempt, including reading the body; default
	// DefaultTimeout. The SDK retries an attempt that times out.
	Timeout time.Duration
}

// Validate checks the configuration without contacting the store.
func (c *Config) Validate() error {
	if c.Bucket == "" {
		return drivers.Errorf(drivers.ErrInvalid, "s3: Bucket is required")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return drivers.Errorf(drivers.ErrInvalid, "s3: set both AccessKey and SecretKey, or neither (default credential chain)")
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return drivers.Errorf(drivers.ErrInvalid, "s3: Endpoint %q: want http(s)://host[:port]", c.Endpoint)
		}
	}
	if c.KeyPrefix != "" {
		if !strings.HasSuffix(c.KeyPrefix, "/") {
			return drivers.Errorf(drivers.ErrInvalid, "s3: KeyPrefix %q must end in '/'", c.KeyPrefix)
		}
		if !utf8.ValidString(c.KeyPrefix) || strings.IndexByte(c.KeyPrefix, 0) >= 0 {
			return drivers.Errorf(drivers.ErrInvalid, "s3: KeyPrefix %q: want UTF-8 without NUL", c.KeyPrefix)
		}
		if err := pathSafe(strings.TrimSuffix(c.KeyPrefix, "/")); err != nil {
			return drivers.Errorf(drivers.ErrInvalid, "s3: KeyPrefix %q: %s", c.KeyPrefix, err)
		}
	}
	if c.Timeout < 0 {
		return drivers.Errorf(drivers.ErrInvalid, "s3: negative Timeout %s", c.Timeout)
	}
	return nil
}

// Store is a drivers.Store over one S3 bucket. It is safe for concurrent use.
type Store struct {
	client   *s3.Client
	http     *http.Client
	bucket   string
	prefix   string
	endpoint string // for messages
	caps     drivers.Capabilities
	warnings []string
	// pathKeys: the store keeps keys as file paths (versitygw's posix
	// backend) and resolves "." and ".." in them; see probePaths.
	pathKeys bool
}

// New connects to the bucket, creates it if cfg.CreateBucket allows, and
// probes the store (about seven small requests under KeyPrefix + ".probe/",
// all deleted again): does it honour create-only puts, does it resolve "."
// and ".." in keys. It fails when the bucket cannot be used.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	buildable := awshttp.NewBuildableClient().
		WithTimeout(cfg.Timeout).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 4 * maxIdlePerHost
			tr.MaxIdleConnsPerHost = maxIdlePerHost
		})
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		config.WithHTTPClient(buildable),
		config.WithRetryer(func() aws.Retryer {
			// No client-side retry quota: a long outage should keep
			// answering ErrUnavailable from the store's own errors, not
			// "retry quota exceeded".
			return retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = ratelimit.None })
		}),
	}
	if cfg.AccessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	if cfg.Endpoint != "" {
		// Stores other than AWS mostly do not know the flexible checksums
		// (CRC32 headers, trailers); WhenRequired keeps requests plain.
		loadOpts = append(loadOpts,
			config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, drivers.Wrap(drivers.ErrInvalid, err, "s3: load SDK config")
	}
	// The SDK may have added options (AWS_CA_BUNDLE); freeze the result so
	// that Close can reach its connection pool.
	b, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		return nil, drivers.Errorf(drivers.ErrInvalid, "s3: SDK config replaced the HTTP client with a %T", awsCfg.HTTPClient)
	}
	httpClient := b.Freeze().(*http.Client)
	awsCfg.HTTPClient = httpClient
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// No "Expect: 100-continue": eventlet-based servers (Swift) close
		// the connection after an early answer without saying so, and the
		// next request on that pooled connection fails.
		o.ContinueHeaderThresholdBytes = -1
	})
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "AWS S3 (" + cfg.Region + ")"
	}
	s := &Store{
		client:   client,
		http:     httpClient,
		bucket:   cfg.Bucket,
		prefix:   cfg.KeyPrefix,
		endpoint: endpoint,
	}
	if err := s.ensureBucket(ctx, cfg.CreateBucket, cfg.Region); err != nil {
		httpClient.CloseIdleConnections()
		return nil, err
	}
	co, warn, err := s.probeCreateOnly(ctx)
	if err == nil {
		s.pathKeys, err = s.probePaths(ctx)
	}
	if err != nil {
		httpClient.CloseIdleConnections()
		return nil, err
	}
	s.caps = drivers.Capabilities{
		Driver:     "s3",
		CreateOnly: co,
		// AWS S3 lists with strong read-after-write consistency (since
		// December 2020), and so do the stores that implement conditional
		// writes (MinIO, versitygw, Ceph RGW list from a consistent
		// index). A store that refuses or ignores them is most likely
		// Swift's s3api, whose listings follow Swift's container
		// databases and lag when a container update goes asynchronous.
		ConsistentList: cfg.Endpoint == "" || co == drivers.CreateOnlyAtomic,
		BatchDelete:    true,
		PathKeys:       s.pathKeys,
	}
	if warn != "" {
		s.warnings = append(s.warnings, warn)
	}
	if s.pathKeys {
		s.warnings = append(s.warnings, fmt.Sprintf("s3 endpoint %s keeps keys as file paths: "+
			"keys with empty, '.' or '..' segments or segments over %d bytes are refused, "+
			"and a key cannot also be the parent of other keys (\"log\" next to \"log/1\")", s.endpoint, maxSegment))
	}
	if !s.caps.ConsistentList {
		s.warnings = append(s.warnings, fmt.Sprintf(
			"s3 endpoint %s: listings are treated as eventually consistent", s.endpoint))
	}
	return s, nil
}

// Warnings are the things found at New that an operator must know (create-only
// puts unavailable, eventually consistent listings). The server logs them
// loudly at start-up.
func (s *Store) Warnings() []string { return append([]string(nil), s.warnings...) }

// ensureBucket checks that the bucket answers, and creates it when allowed.
func (s *Store) ensureBucket(ctx context.Context, create bool, region string) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if err == nil {
		return nil
	}
	if statusOf(err) != http.StatusNotFound {
		return s.mapErr(ctx, err, "s3 %s: head bucket %q", s.endpoint, s.bucket)
	}
	if !create {
		return drivers.Wrap(drivers.ErrUnavailable, err, "s3 %s: bucket %q does not exist (set CreateBucket to create it)", s.endpoint, s.bucket)
	}
	in := &s3.CreateBucketInput{Bucket: &s.bucket}
	if region != DefaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	_, err = s.client.CreateBucket(ctx, in)
	if err != nil && codeOf(err) != "BucketAlreadyOwnedByYou" {
		return s.mapErr(ctx, err, "s3 %s: create bucket %q", s.endpoint, s.bucket)
	}
	return nil
}

// probeCreateOnly puts one new key create-only twice and deletes it:
//
//   - the header refused (501 from Swift's s3api 2.30, or a 4xx where a plain
//     put of the same key works): CreateOnlyNone;
//   - the second put succeeds too (the header ignored): CreateOnlyNone;
//   - the second put gets 412: CreateOnlyAtomic, which is what S3 defines
//     conditional writes to be (AWS, MinIO, versitygw). A sequential probe
//     cannot tell an atomic store from a merely best-effort one.
func (s *Store) probeCreateOnly(ctx context.Context) (drivers.CreateOnly, string, error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	key := s.prefix + probeDir + hex.EncodeToString(b)
	body := []byte("cistern create-only probe\n")
	put := func(createOnly bool) error {
		in := &s3.PutObjectInput{
			Bucket:        &s.bucket,
			Key:           &key,
			Body:          bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))),
		}
		if createOnly {
			in.IfNoneMatch = aws.String("*")
		}
		_, err := s.client.PutObject(ctx, in)
		return err
	}
	none := func(what string) string {
		return fmt.Sprintf("s3 endpoint %s %s If-None-Match: *: create-only puts unavailable; "+
			"single-writer safety rests on the process model only", s.endpoint, what)
	}
	if err := put(true); err != nil {
		if !refusesHeader(err) {
			return 0, "", s.mapErr(ctx, err, "s3 %s: create-only probe put", s.endpoint)
		}
		// Make sure it is the header being refused, not the put.
		if perr := put(false); perr != nil {
			return 0, "", s.mapErr(ctx, perr, "s3 %s: probe put", s.endpoint)
		}
		if derr := s.deleteProbe(ctx, key); derr != nil {
			return 0, "", derr
		}
		return drivers.CreateOnlyNone, none("refuses (" + describe(err) + ")"), nil
	}
	co, warn := drivers.CreateOnlyAtomic, ""
	err := put(true)
	switch {
	case err == nil:
		co, warn = drivers.CreateOnlyNone, none("ignores")
	case isPrecondition(err):
	case refusesHeader(err):
		co, warn = drivers.CreateOnlyNone, none("refuses ("+describe(err)+")")
	default:
		err = s.mapErr(ctx, err, "s3 %s: second create-only probe put", s.endpoint)
		_ = s.deleteProbe(ctx, key)
		return 0, "", err
	}
	if err := s.deleteProbe(ctx, key); err != nil {
		return 0, "", err
	}
	return co, warn, nil
}

// probePaths finds out whether the store resolves "." and ".." in keys as a
// file system would, which would let a key such as "../q/meta" escape its
// container: it puts KeyPrefix/.probe/R/x/../p and looks for
// KeyPrefix/.probe/R/p. A store that refuses the key (MinIO) is safe.
func (s *Store) probePaths(ctx context.Context) (bool, error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	dir := s.prefix + probeDir + hex.EncodeToString(b) + "/"
	dotted, cleaned := dir+"x/../p", dir+"p"
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &dotted,
		Body:          bytes.NewReader(nil),
		ContentLength: aws.Int64(0),
	})
	if err != nil {
		if classify(err) == drivers.ErrInvalid {
			return false, nil
		}
		return false, s.mapErr(ctx, err, "s3 %s: path probe put", s.endpoint)
	}
	_, err = s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &cleaned})
	switch {
	case err == nil:
		return true, s.deleteProbe(ctx, cleaned)
	case isNotFound(err):
		return false, s.deleteProbe(ctx, dotted)
	}
	_ = s.deleteProbe(ctx, dotted)
	return false, s.mapErr(ctx, err, "s3 %s: path probe head", s.endpoint)
}

func (s *Store) deleteProbe(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil && !isNotFound(err) {
		return s.mapErr(ctx, err, "s3 %s: delete probe %q", s.endpoint, key)
	}
	return nil
}

// Put implements drivers.Store. It does not check that the container exists:
// on S3 a put into a missing container succeeds.
func (s *Store) Put(ctx context.Context, container, key string, data []byte, opts *drivers.PutOptions) error {
	if err := s.begin(ctx, "put", container, key, true); err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           aws.String(s.objectKey(container, key)),
		Body:          bytes.NewReader(data), // seekable: the SDK can sign and retry it
		ContentLength: aws.Int64(int64(len(data))),
	}
	if opts != nil && opts.CreateOnly {
		if s.caps.CreateOnly == drivers.CreateOnlyNone {
			return drivers.Errorf(drivers.ErrNotSupported, "s3 put %s/%.100q: store %s has no create-only puts", container, key, s.endpoint)
		}
		in.IfNoneMatch = aws.String("*")
	}
	_, err := s.client.PutObject(ctx, in)
	return s.mapErr(ctx, err, "s3 put %s/%.100q", container, key)
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
	if err := s.begin(ctx, "get", container, key, true); err != nil {
		return nil, err
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.objectKey(container, key))}
	if r != nil {
		in.Range = aws.String(rangeHeader(r))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if r != nil && r.Offset == 0 && statusOf(err) == http.StatusRequestedRangeNotSatisfiable {
			// S3 refuses any range of an empty object; the contract
			// gives an empty read at offset 0.
			if a, herr := s.Head(ctx, container, key); herr == nil && a.Size == 0 {
				return []byte{}, nil
			}
		}
		return nil, s.mapErr(ctx, err, "s3 get %s/%.100q", container, key)
	}
	defer out.Body.Close()
	var data []byte
	if out.ContentLength != nil && *out.ContentLength >= 0 {
		// One allocation of the right size; the transport reports a body
		// shorter than its Content-Length as an error.
		data = make([]byte, *out.ContentLength)
		_, err = io.ReadFull(out.Body, data)
	} else {
		data, err = io.ReadAll(out.Body)
	}
	if err != nil {
		return nil, s.mapErr(ctx, err, "s3 get %s/%.100q: read body", container, key)
	}
	return data, nil
}

// Head implements drivers.Store.
func (s *Store) Head(ctx context.Context, container, key string) (drivers.Attrs, error) {
	if err := s.begin(ctx, "head", container, key, true); err != nil {
		return drivers.Attrs{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.objectKey(container, key))})
	if err != nil {
		return drivers.Attrs{}, s.mapErr(ctx, err, "s3 head %s/%.100q", container, key)
	}
	return drivers.Attrs{
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    aws.ToString(out.ETag),
	}, nil
}

// Delete implements drivers.Store.
func (s *Store) Delete(ctx context.Context, container, key string) error {
	if err := s.begin(ctx, "delete", container, key, true); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.objectKey(container, key))})
	if isNotFound(err) {
		return nil
	}
	return s.mapErr(ctx, err, "s3 delete %s/%.100q", container, key)
}

// DeleteKeys implements drivers.BatchDeleter with DeleteObjects, 1000 keys a
// request, in quiet mode. A key that XML 1.0 cannot carry (control
// characters) is deleted on its own.
func (s *Store) DeleteKeys(ctx context.Context, container string, keys []string) error {
	if err := s.begin(ctx, "delete keys", container, "", false); err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.checkKey(container, k); err != nil {
			return err
		}
	}
	batch := make([]types.ObjectIdentifier, 0, min(len(keys), maxBatch))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.deleteBatch(ctx, container, batch)
		batch = batch[:0]
		return err
	}
	for _, k := range keys {
		if !xmlSafe(k) {
			if err := s.Delete(ctx, container, k); err != nil {
				return err
			}
			continue
		}
		batch = append(batch, types.ObjectIdentifier{Key: aws.String(s.objectKey(container, k))})
		if len(batch) == maxBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (s *Store) deleteBatch(ctx context.Context, container string, batch []types.ObjectIdentifier) error {
	if err := drivers.CtxErr(ctx, "s3 delete keys"); err != nil {
		return err
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &s.bucket,
		Delete: &types.Delete{Objects: batch, Quiet: aws.Bool(true)},
	}, func(o *s3.Options) {
		// Swift's s3api (and AWS without flexible checksums) wants Content-MD5.
		o.APIOptions = append(o.APIOptions, smithyhttp.AddContentChecksumMiddleware)
	})
	if err != nil {
		return s.mapErr(ctx, err, "s3 delete %d keys in %s", len(batch), container)
	}
	var failed []string
	var kind error
	for _, e := range out.Errors {
		code := aws.ToString(e.Code)
		if code == "NoSuchKey" || code == "NotFound" {
			continue
		}
		if kind == nil {
			kind = kindOf(code, 0)
		}
		failed = append(failed, fmt.Sprintf("%q: %s %s", strings.TrimPrefix(aws.ToString(e.Key), s.containerPrefix(container)), code, aws.ToString(e.Message)))
	}
	if len(failed) == 0 {
		return nil
	}
	const show = 5
	msg := strings.Join(failed[:min(len(failed), show)], "; ")
	if len(failed) > show {
		msg += fmt.Sprintf("; and %d more", len(failed)-show)
	}
	return drivers.Errorf(kind, "s3 delete keys in %s: %d of %d failed: %s", container, len(failed), len(batch), msg)
}

// List implements drivers.Store. An empty first page costs a second request,
// a HEAD of the container's marker, to tell an empty container from a
// missing one.
func (s *Store) List(ctx context.Context, container string, opts *drivers.ListOptions) (drivers.Page, error) {
	o := drivers.CheckListOptions(opts)
	if err := s.begin(ctx, "list", container, "", false); err != nil {
		return drivers.Page{}, err
	}
	p, err := s.list(ctx, s.containerPrefix(container), o)
	if err != nil {
		return drivers.Page{}, s.mapErr(ctx, err, "s3 list %s", container)
	}
	if len(p.Objects) == 0 && o.Marker == "" {
		_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.markerKey(container))})
		if err != nil {
			return drivers.Page{}, s.mapErr(ctx, err, "s3 list %s: head container marker", container)
		}
	}
	return p, nil
}

// list lists the keys under base + o.Prefix strictly after base + o.Marker,
// with base cut off. It returns SDK errors unmapped.
func (s *Store) list(ctx context.Context, base string, o drivers.ListOptions) (drivers.Page, error) {
	in := &s3.ListObjectsV2Input{
		Bucket:       &s.bucket,
		Prefix:       aws.String(base + o.Prefix),
		MaxKeys:      aws.Int32(int32(min(o.Limit, maxListPage))),
		EncodingType: types.EncodingTypeUrl, // keys may hold characters XML cannot
	}
	if o.Marker != "" {
		in.StartAfter = aws.String(base + o.Marker)
	}
	for {
		out, err := s.client.ListObjectsV2(ctx, in)
		if err != nil {
			return drivers.Page{}, err
		}
		p := drivers.Page{Objects: make([]drivers.ObjectInfo, 0, len(out.Contents))}
		for _, obj := range out.Contents {
			k, err := decodeKey(aws.ToString(obj.Key), out.EncodingType)
			if err != nil {
				return drivers.Page{}, err
			}
			if !strings.HasPrefix(k, base) || len(k) == len(base) {
				continue
			}
			p.Objects = append(p.Objects, drivers.ObjectInfo{Key: k[len(base):], Size: aws.ToInt64(obj.Size)})
		}
		truncated := aws.ToBool(out.IsTruncated)
		if len(p.Objects) > 0 {
			if truncated {
				p.Next = p.Objects[len(p.Objects)-1].Key
			}
			return p, nil
		}
		// A truncated page with no key to continue from: follow the
		// server's token rather than end the listing early.
		if !truncated || aws.ToString(out.NextContinuationToken) == "" {
			return p, nil
		}
		in.ContinuationToken = out.NextContinuationToken
		in.StartAfter = nil
	}
}

// CreateContainer implements drivers.Store: it puts the container's marker.
func (s *Store) CreateContainer(ctx context.Context, container string) error {
	if err := s.begin(ctx, "create container", container, "", false); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           aws.String(s.markerKey(container)),
		Body:          bytes.NewReader(nil),
		ContentLength: aws.Int64(0),
	})
	return s.mapErr(ctx, err, "s3 create container %s", container)
}

// DeleteContainer implements drivers.Store: one list of at most one key,
// then the delete of the marker.
func (s *Store) DeleteContainer(ctx context.Context, container string) error {
	if err := s.begin(ctx, "delete container", container, "", false); err != nil {
		return err
	}
	p, err := s.list(ctx, s.containerPrefix(container), drivers.ListOptions{Limit: 1})
	if err != nil {
		return s.mapErr(ctx, err, "s3 delete container %s: list", container)
	}
	if len(p.Objects) > 0 {
		return drivers.Errorf(drivers.ErrPreconditionFailed, "s3 delete container %s: not empty (holds %q)", container, p.Objects[0].Key)
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.markerKey(container))})
	if isNotFound(err) {
		return nil
	}
	return s.mapErr(ctx, err, "s3 delete container %s", container)
}

// ListContainers implements drivers.Store by listing the markers.
func (s *Store) ListContainers(ctx context.Context, opts *drivers.ListOptions) (drivers.Page, error) {
	o := drivers.CheckListOptions(opts)
	if err := drivers.CtxErr(ctx, "s3 list containers"); err != nil {
		return drivers.Page{}, err
	}
	p, err := s.list(ctx, s.prefix+markerDir, o)
	if err != nil {
		return drivers.Page{}, s.mapErr(ctx, err, "s3 list containers")
	}
	return p, nil
}

// Capabilities implements drivers.Store: CreateOnly is what the probe at New
// found.
func (s *Store) Capabilities() drivers.Capabilities { return s.caps }

// Close implements drivers.Store.
func (s *Store) Close() error {
	s.http.CloseIdleConnections()
	return nil
}

var (
	_ drivers.Store        = (*Store)(nil)
	_ drivers.BatchDeleter = (*Store)(nil)
)
