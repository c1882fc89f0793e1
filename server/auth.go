package server

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// auth_strategy keystone on the public listener. Before Zaqar's header
// rules run, every route but GET / (open in Zaqar too), /metrics, /healthz and
// /readyz needs
// an X-Auth-Token that Keystone vouches for (see auth_keystone.go). The
// token decides the project: X-Project-ID is set from it, and a different
// X-Project-ID sent by the client is refused (Zaqar behind keystonemiddleware
// silently replaces it; a refusal tells a confused client). A request with
// URL-Signature needs no token, as in Zaqar: the signature, checked by the
// header rules, binds it to the project that shared the URL. The admin API
// and /v2/health need the admin role. The admin listener is not affected:
// it stays gated by the address it listens on.

// authError is the 401 of keystonemiddleware, with Zaqar's body shape.
func (s *Server) authError() *apiError {
	return &apiError{status: http.StatusUnauthorized, title: "Unauthorized",
		description: "The request you have made requires authentication.",
		header:      map[string]string{"WWW-Authenticate": `Keystone uri="` + s.keystone.o.WWWAuthenticateURI + `"`}}
}

func forbidden(desc string) *apiError {
	return &apiError{status: http.StatusForbidden, title: "Forbidden", description: desc}
}

// authenticate applies auth_strategy keystone to a request of a group that
// needs it.
func (s *Server) authenticate(rq *request, g *group) error {
	if !g.auth || g.path == "/" || openPath(g.path) {
		return nil
	}
	r := rq.r
	if _, signed := r.Header["Url-Signature"]; signed && !g.admin {
		return nil // checkRequest verifies the signature
	}
	token := r.Header.Get("X-Auth-Token")
	if token == "" {
		return s.authError()
	}
	id, err := s.keystone.Validate(rq.ctx(), token)
	switch {
	case err == nil:
	case errors.Is(err, ErrTokenInvalid):
		return s.authError()
	case errors.Is(err, ErrTokenUnscoped):
		return forbidden("The token is not scoped to a project.")
	default:
		return &apiError{status: http.StatusServiceUnavailable, title: "Service temporarily unavailable",
			description: "The token could not be validated: the identity service is unavailable. Please try again in a few seconds.",
			retryAfter:  keystoneRetryAfter, cause: err}
	}
	if p, sent := headerValue(r, "X-Project-Id"); sent && p != id.ProjectID {
		return forbidden("X-Project-ID does not match the project of the token.")
	}
	if g.admin && !id.HasRole(s.keystone.o.AdminRole) {
		return forbidden("This operation needs the " + s.keystone.o.AdminRole + " role.")
	}
	r.Header.Set("X-Project-Id", id.ProjectID)
	rq.project = id.ProjectID
	rq.user = id.UserID
	return nil
}

// keystoneRetryAfter is the Retry-After of a 503 for an unreachable
// Keystone, in seconds.
const keystoneRetryAfter = 5

// adminOnly reports whether a route path needs the admin role on the public
// listener: the admin API, and the detailed health that Zaqar serves only
// in admin mode.
func adminOnly(path string) bool {
	if path == "/v2/health" {
		return true
	}
	for _, rt := range adminRoutes {
		if rt.path == path {
			return true
		}
	}
	return false
}

// registerKeystoneMetrics exposes how often Keystone is asked, so that the
// cache's effect can be watched.
func (s *Server) registerKeystoneMetrics() error {
	k := s.keystone
	_, err := register(s.reg, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "cistern_keystone_requests_total",
		Help: "Requests sent to Keystone: token validations and the service user's authentications.",
	}, func() float64 { return float64(k.Requests()) }))
	return err
}
