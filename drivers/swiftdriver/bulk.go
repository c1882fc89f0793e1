package swiftdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ncw/swift/v2"

	"github.com/cistern-mq/cistern/drivers"
)

// DeleteKeys implements drivers.BatchDeleter with Swift's bulk delete,
// bulkBatch keys per request, falling back to one DELETE per key where bulk
// delete cannot be used.
func (s *Store) DeleteKeys(ctx context.Context, container string, keys []string) error {
	// Each request below gets its own timeout.
	sc, err := s.check(ctx, "delete keys", container, keys...)
	if err != nil {
		return err
	}
	var bulk, single []string
	for _, k := range keys {
		if s.bulkAvailable.Load() && s.bulkable(sc, k) {
			bulk = append(bulk, k)
		} else {
			single = append(single, k)
		}
	}
	for chunk := range slices.Chunk(bulk, s.bulkMax) {
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := s.bulkDelete(cctx, ctx, sc, chunk)
		cancel()
		if errBulkUnusable(err) {
			// Not bulk delete's answer, or a request it refused whole:
			// do these one by one.
			single = append(single, chunk...)
			continue
		}
		if err != nil {
			return err
		}
	}
	for _, k := range single {
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := s.deleteObject(cctx, ctx, sc, k)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// bulkable reports whether bulk delete takes key: it reads its body in
// lines of a bounded length (1282 bytes by default) and refuses the whole
// request with 400 "Invalid File Name" when a quoted line is longer, as a
// 512-character "é..." key is (measured).
func (s *Store) bulkable(sc, key string) bool {
	return len(bulkLine(sc, key)) <= s.bulkMaxLine
}

// bulkLine is one line of a bulk delete body: the path, URL-quoted (Swift
// strips whitespace off each line before unquoting it, and the quoting
// escapes all of it).
func bulkLine(sc, key string) string {
	u := url.URL{Path: "/" + sc + "/" + key}
	return u.EscapedPath()
}

// errBulkUnsupported: the cluster answered a bulk delete with something
// other than bulk delete's report.
type errBulkUnsupported struct{ detail string }

func (e *errBulkUnsupported) Error() string {
	return "swift bulk delete is not available: " + e.detail
}

// errBulkUnusable reports whether keys that bulk delete failed on are
// worth deleting one by one: it is not there, or it refused the request
// whole (400, 413: limits smaller than the ones assumed).
func errBulkUnusable(err error) bool {
	var unsupported *errBulkUnsupported
	var de *drivers.Error
	return errors.As(err, &unsupported) || errors.As(err, &de) && de.Kind == drivers.ErrInvalid
}

// bulkDelete deletes keys of sc in one POST ?bulk-delete (POST rather than
// ncw/swift's DELETE: without the bulk middleware a DELETE of the account
// URL is an account delete, while a POST without metadata changes
// nothing). Missing keys count as deleted.
func (s *Store) bulkDelete(cctx, ctx context.Context, sc string, keys []string) error {
	var body bytes.Buffer
	for _, k := range keys {
		body.WriteString(bulkLine(sc, k))
		body.WriteByte('\n')
	}
	resp, _, err := s.call(cctx, swift.RequestOpts{
		Operation:  http.MethodPost,
		Parameters: url.Values{"bulk-delete": {"1"}},
		Headers: swift.Headers{
			"Accept":         "application/json",
			"Content-Type":   "text/plain",
			"Content-Length": strconv.Itoa(body.Len()),
		},
		Body: bytes.NewReader(body.Bytes()),
	})
	if err != nil {
		if st := statusOf(err); st == http.StatusForbidden || st == http.StatusMethodNotAllowed {
			s.bulkAvailable.Store(false)
			return &errBulkUnsupported{detail: err.Error()}
		}
		return fail(ctx, err, "bulk delete of %d keys in %s", len(keys), sc)
	}
	defer resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		s.bulkAvailable.Store(false)
		return &errBulkUnsupported{detail: fmt.Sprintf("POST ?bulk-delete answered %s, %q", resp.Status, resp.Header.Get("Content-Type"))}
	}
	var report struct {
		Status   string     `json:"Response Status"`
		Body     string     `json:"Response Body"`
		Deleted  int        `json:"Number Deleted"`
		NotFound int        `json:"Number Not Found"`
		Errors   [][]string `json:"Errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		return fail(ctx, err, "bulk delete in %s: reading the report", sc)
	}
	for _, e := range report.Errors {
		if len(e) != 2 {
			continue
		}
		code := parseStatusLine(e[1])
		if code == http.StatusNotFound {
			continue
		}
		return &drivers.Error{
			Kind: kindOfStatus(code),
			Msg:  fmt.Sprintf("swift bulk delete in %s: %d of %d keys failed, first %s", sc, len(report.Errors), len(keys), e[0]),
			Err:  fmt.Errorf("%s", e[1]),
		}
	}
	if code := parseStatusLine(report.Status); code/100 != 2 {
		return &drivers.Error{
			Kind: kindOfStatus(code),
			Msg:  fmt.Sprintf("swift bulk delete of %d keys in %s", len(keys), sc),
			Err:  fmt.Errorf("%s: %s", report.Status, report.Body),
		}
	}
	return nil
}
