package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cistern-mq/cistern/drivers"
	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/notify"
	"github.com/cistern-mq/cistern/placement"
	"github.com/cistern-mq/cistern/server/wire"
)

// apiError is an HTTP error answer with Zaqar's body.
type apiError struct {
	status      int
	title       string
	description string
	retryAfter  int               // seconds; 0: no Retry-After
	allow       string            // Allow header of a 405
	noBody      bool              // a 406 has no body: the client takes no JSON
	header      map[string]string // more headers (WWW-Authenticate of a 401)
	cause       error             // logged, never shown
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.status, e.title, e.description, e.cause)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.title, e.description)
}

func (e *apiError) Unwrap() error { return e.cause }

func badRequest(title, desc string) *apiError {
	return &apiError{status: http.StatusBadRequest, title: title, description: desc}
}

func badAPI(desc string) *apiError  { return badRequest(wire.TitleInvalidAPI, desc) }
func badBody(desc string) *apiError { return badRequest(wire.TitleInvalidBody, desc) }

func notFound(desc string) *apiError {
	return &apiError{status: http.StatusNotFound, title: "Not found", description: desc}
}

// errNotFound404 is Falcon's bare 404 (unknown route, failed signed URL).
var errNotFound404 = &apiError{status: http.StatusNotFound, title: "404 Not Found"}

// Unavailable reports whether err is a fault of the store or of the moment
// rather than of the request: the client should try again. Such errors are
// 503 with Retry-After, never 500. toAPIError answers drivers.ErrInvalid,
// a fault of the request, with 400 before it asks.
func Unavailable(err error) bool {
	return drivers.KindOf(err) != nil ||
		errors.Is(err, index.ErrFenced) ||
		errors.Is(err, index.ErrClosed) ||
		errors.Is(err, index.ErrMoved) ||
		errors.Is(err, index.ErrNotOwner) ||
		errors.Is(err, ErrNoOwner) ||
		errors.Is(err, errForwardLoop) ||
		errors.Is(err, errForwardFailed) ||
		errors.Is(err, placement.ErrNoPool) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled)
}

// toAPIError maps any error a handler or a header rule returns to the HTTP
// answer. It is the only place that does.
func (s *Server) toAPIError(rq *request, err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ve *wire.ValidationError
	if errors.As(err, &ve) {
		return badRequest(ve.Title, ve.Description)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return badBody(fmt.Sprintf("Request body is larger than %d bytes.", mbe.Limit))
	}
	q, p := rq.queue(), rq.project
	switch {
	case errors.Is(err, notify.ErrNotFound):
		return errNotFound404 // Zaqar's bare falcon.HTTPNotFound()
	case errors.Is(err, notify.ErrExists):
		return errSubscriptionExists
	case errors.Is(err, index.ErrClaimNotFound):
		return notFound(fmt.Sprintf("Claim %s does not exist in queue %s for project %s", rq.vars["claim_id"], q, p))
	case errors.Is(err, index.ErrMessageNotFound):
		return notFound(fmt.Sprintf("Message %s does not exist in queue %s for project %s", rq.vars["message_id"], q, p))
	case errors.Is(err, index.ErrQueueNotFound) && rq.topic():
		return notFound(fmt.Sprintf("Topic %s does not exist for project %s", q, p))
	case errors.Is(err, index.ErrQueueNotFound):
		return notFound(fmt.Sprintf("Queue %s does not exist for project %s", q, p))
	case errors.Is(err, index.ErrMessageClaimed), errors.Is(err, index.ErrMessageNotClaimedBy):
		return &apiError{status: http.StatusForbidden, title: "Unable to delete",
			description: "This message is claimed; it cannot be deleted without a valid claim ID."}
	case errors.Is(err, index.ErrQueueDamaged):
		return &apiError{status: http.StatusServiceUnavailable, title: "Service temporarily unavailable",
			description: fmt.Sprintf("The objects of queue %s are missing from the store; an operator must restore them, or delete the queue.", q),
			retryAfter:  30, cause: err}
	case errors.Is(err, index.ErrInvalidMessage):
		return badAPI(err.Error())
	case errors.Is(err, placement.ErrFlavorNotFound):
		return badBody("The flavor named in _flavor does not exist.")
	case errors.Is(err, placement.ErrFlavorEmpty):
		// Not a 503: no retry helps until an operator gives the flavor a pool.
		return badBody("The flavor named in _flavor has no pool that takes queues: an operator must add a pool to it, or ask for another flavor.")
	case errors.Is(err, index.ErrClaimUnknown):
		return badRequest("Unable to delete", "The specified claim does not exist or has expired.")
	case errors.Is(err, index.ErrMessageNotClaimed):
		return badRequest("Unable to delete", "A claim was specified, but the message is not currently claimed.")
	case errors.Is(err, drivers.ErrInvalid):
		// The store refused a name or value: retrying cannot help, so not
		// a 503. The header rules should have caught it; the cause is kept
		// for the log.
		return &apiError{status: http.StatusBadRequest, title: wire.TitleInvalidAPI,
			description: "The object store refused a name or value of this request as invalid.", cause: err}
	case errors.Is(err, index.ErrNotOwner), errors.Is(err, ErrNoOwner), errors.Is(err, errForwardLoop):
		// Cluster mode: the queue is between owners. The next owner takes
		// it within seconds; the client's retry finds it.
		return &apiError{status: http.StatusServiceUnavailable, title: "Service temporarily unavailable",
			description: fmt.Sprintf("Queue %s is moving between nodes. Please try again in a few seconds.", q),
			retryAfter:  1, cause: err}
	case errors.Is(err, errForwardFailed):
		// The owner's address is internal: logged, never shown.
		return &apiError{status: http.StatusServiceUnavailable, title: "Service temporarily unavailable",
			description: fmt.Sprintf("The node that serves queue %s could not be reached. Please try again in a few seconds.", q),
			retryAfter:  1, cause: err}
	case Unavailable(err):
		what := "The request could not be completed."
		if rq.rt != nil && rq.rt.fail != "" {
			what = rq.rt.fail
		}
		return &apiError{status: http.StatusServiceUnavailable, title: "Service temporarily unavailable",
			description: what + " Please try again in a few seconds.", retryAfter: 1, cause: err}
	default:
		return &apiError{status: http.StatusInternalServerError, title: "Internal server error",
			description: "The server failed to complete the request; its log has the details under request id " + rq.id + ".",
			cause:       err}
	}
}

// maxLoggedPath bounds the path a log line shows: a message or claim id
// segment is the client's text, up to the header limit (1 MB).
const maxLoggedPath = 256

// clip cuts s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// writeError writes e with Zaqar's headers (Falcon adds Vary: Accept to
// error answers) and logs the cause of a 5xx with the request id.
func (s *Server) writeError(w http.ResponseWriter, rq *request, e *apiError) {
	if e.status >= 500 {
		ev := s.log.Error()
		if e.status == http.StatusServiceUnavailable {
			ev = s.log.Warn()
		}
		ev.Err(e.cause).Str("request_id", rq.id).Str("method", rq.r.Method).
			Str("path", clip(rq.r.URL.Path, maxLoggedPath)).Int("status", e.status).Msg("request failed")
	}
	h := w.Header()
	h.Set("Vary", "Accept")
	h.Set("Content-Type", "application/json")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	if e.allow != "" {
		h.Set("Allow", e.allow)
	}
	for k, v := range e.header {
		h.Set(k, v)
	}
	var data []byte
	if !e.noBody {
		data, _ = encodeJSON(wire.Error{Title: e.title, Description: e.description})
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(e.status)
	if rq.r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}
