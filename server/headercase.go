package server

import "net/http"

// Zaqar (Falcon behind uWSGI) sends its header names in lower case, and
// some of Zaqar's own clients and tests compare them as strings. HTTP
// header names are case-insensitive, so every other client is unaffected.
// zaqarCase rewrites the names Zaqar's clients look at just before the
// status line goes out, whatever wrote them (a handler, the error writer,
// a forwarded owner's answer).

// lowerHeaders are the names sent in lower case, by canonical name.
var lowerHeaders = [...][2]string{
	{"Content-Type", "content-type"},
	{"Location", "location"},
	{"Allow", "allow"},
	{"Vary", "vary"},
}

// zaqarCase wraps h so that its answers carry lowerHeaders in lower case.
func zaqarCase(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&caseWriter{ResponseWriter: w}, r)
	})
}

type caseWriter struct {
	http.ResponseWriter
	wrote bool
}

// fix moves the values of lowerHeaders to their lower-case names. The
// canonical name stays with a nil value, which tells net/http that the
// header is set (so it adds no Content-Type of its own) and writes nothing
// for it.
func (w *caseWriter) fix() {
	if w.wrote {
		return
	}
	w.wrote = true
	h := w.Header()
	for _, n := range lowerHeaders {
		if v := h[n[0]]; len(v) > 0 {
			h[n[1]] = v
			h[n[0]] = nil
		}
	}
}

func (w *caseWriter) WriteHeader(code int) {
	w.fix()
	w.ResponseWriter.WriteHeader(code)
}

func (w *caseWriter) Write(b []byte) (int, error) {
	w.fix()
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (the metrics exposition) flush.
func (w *caseWriter) Flush() {
	w.fix()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
