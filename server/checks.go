package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/cistern-mq/cistern/server/wire"
)

// checkRequest applies Zaqar's before-hooks, in Zaqar's order, to a request
// that matched a route: signed URL, form content type, Accept, Client-ID,
// X-Project-ID, queue name. Unknown routes skip them (as in Falcon) and so
// do /metrics, /healthz and /readyz, which are not part of the Zaqar API
// (openPath).
func (s *Server) checkRequest(rq *request, g *group) error {
	if openPath(g.path) {
		return nil
	}
	r := rq.r
	if _, signed := r.Header["Url-Signature"]; signed && !s.verifySignedURL(rq) {
		return errNotFound404
	}
	if r.ContentLength != 0 && mediaType(r.Header.Get("Content-Type")) == "application/x-www-form-urlencoded" {
		return badRequest("Invalid Content-Type", "Endpoint does not accept `application/x-www-form-urlencoded` content; "+
			"currently supported media type is `application/json`; specify proper client-side media type with the \"Content-Type\" header.")
	}
	if !acceptsJSON(r.Header.Values("Accept")) {
		return &apiError{status: http.StatusNotAcceptable, noBody: true}
	}
	if !strings.HasPrefix(r.URL.Path, "/v2/") {
		return nil // GET /: no client or project needed
	}
	// A repeated Client-ID or X-Project-ID is refused rather than resolved
	// to one of its values: a proxy that adds the project it authenticated
	// must not be overridden by the one the client sent.
	for _, h := range []string{"Client-ID", "X-Project-ID"} {
		if len(r.Header[http.CanonicalHeaderKey(h)]) > 1 {
			return badRequest("Invalid header value", fmt.Sprintf("The %q header was sent more than once.", h))
		}
	}
	cid, ok := headerValue(r, "Client-Id")
	if !ok {
		return badRequest("Missing header value", `The "Client-ID" header is required.`)
	}
	client, err := wire.ParseClientID(cid)
	if err != nil {
		return badRequest("Wrong UUID value", "Malformed hexadecimal UUID.")
	}
	rq.client = client
	project, ok := headerValue(r, "X-Project-Id")
	switch {
	case ok && project == "":
		return badRequest("Empty project header not allowed",
			"X-PROJECT-ID cannot be an empty string. Specify the right header X-PROJECT-ID and retry.")
	case !ok:
		return badRequest("Project-Id Missing", "The header X-PROJECT-ID was missing")
	}
	_, queueRoute := rq.vars["queue_name"]
	queueRoute = queueRoute || rq.topic()
	q := rq.queue()
	badQueue := badRequest("Invalid queue identification", "The format of the submitted queue name or project id is not valid.")
	if rq.topic() {
		// Topic names follow the queue-name rule (Zaqar's
		// validate_topic_identification), in the topic's words.
		badQueue = badRequest("Invalid topic identification", "The format of the submitted topic name or project id is not valid.")
	}
	// The project is checked on every route, and before it is kept: the
	// access log and error texts show only a project that passed.
	if why := checkProject(project, s.lim.MaxProjectIDLength); why != "" {
		if queueRoute {
			return badQueue // Zaqar's answer on the routes where it checks
		}
		return badRequest("Invalid project identification", "The format of the submitted project id is not valid: "+why+".")
	}
	rq.project = project
	if queueRoute && !validQueueName(q, s.lim.MaxQueueNameLength) {
		return badQueue
	}
	return nil
}

// headerValue returns a header and whether it was sent at all (an empty
// X-Project-ID is a different error from a missing one).
func headerValue(r *http.Request, name string) (string, bool) {
	vs, ok := r.Header[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
	}
	return mt
}

// acceptsJSON is Falcon's client_accepts("application/json"): no Accept
// header accepts anything; otherwise some range with q > 0 must cover it.
func acceptsJSON(values []string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			fields := strings.Split(part, ";")
			mt := strings.ToLower(strings.TrimSpace(fields[0]))
			if mt != "application/json" && mt != "application/*" && mt != "*/*" && mt != "*" {
				continue
			}
			q := 1.0
			for _, p := range fields[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			if q > 0 {
				return true
			}
		}
	}
	return false
}

// readBody reads a request body of at most limit bytes. A Content-Length
// over the limit is refused before anything is read, and the body is read
// through http.MaxBytesReader so that a missing or lying Content-Length
// cannot make the server read more. tooLarge makes the error to answer.
func readBody(rq *request, limit int64, tooLarge func() error) ([]byte, error) {
	if rq.r.ContentLength > limit {
		return nil, tooLarge()
	}
	if rq.r.Body == nil || rq.r.Body == http.NoBody {
		return nil, nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(rq.w, rq.r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge()
	}
	if err != nil {
		return nil, badBody("Request body could not be read.")
	}
	return data, nil
}

// readSmallBody reads a body Zaqar sets no limit on.
func (s *Server) readSmallBody(rq *request) ([]byte, error) {
	return readBody(rq, s.lim.MaxSmallBody, func() error {
		return badBody("Request body is larger than " + strconv.FormatInt(s.lim.MaxSmallBody, 10) + " bytes.")
	})
}
