package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/placement"
	"github.com/cistern-mq/cistern/server/wire"
)

// Zaqar's admin API (pools and flavors), plus Cistern's migrations. It is
// served only by AdminHandler, meant for a listener that only operators
// reach (Zaqar gates the same routes behind admin_mode and the admin role).
var adminRoutes = []route{
	{"GET", "/v2/pools", (*Server).listPools, "Pools could not be listed."},
	{"GET", "/v2/pools/{pool}", (*Server).getPool, "Pool could not be read."},
	{"PUT", "/v2/pools/{pool}", (*Server).putPool, "Pool could not be created."},
	{"PATCH", "/v2/pools/{pool}", (*Server).patchPool, "Pool could not be updated."},
	{"DELETE", "/v2/pools/{pool}", (*Server).deletePool, "Pool could not be deleted."},
	{"GET", "/v2/flavors", (*Server).listFlavors, "Flavors could not be listed."},
	{"GET", "/v2/flavors/{flavor}", (*Server).getFlavor, "Flavor could not be read."},
	{"PUT", "/v2/flavors/{flavor}", (*Server).putFlavor, "Flavor could not be created."},
	{"PATCH", "/v2/flavors/{flavor}", (*Server).patchFlavor, "Flavor could not be updated."},
	{"DELETE", "/v2/flavors/{flavor}", (*Server).deleteFlavor, "Flavor could not be deleted."},
	{"POST", "/v2/migrations", (*Server).startMigration, "Migration could not be started."},
	{"GET", "/v2/migrations", (*Server).getMigration, "Migration status could not be read."},
	{"GET", "/v2/migrations/plan", (*Server).planMigration, "Migration plan could not be computed."},
	{"GET", "/v2/queues/{queue_name}/pool", (*Server).queuePool, "Queue placement could not be read."},
}

// poolJSON is a pool as the admin API shows it.
type poolJSON struct {
	Name    string          `json:"name"`
	Href    string          `json:"href"`
	Weight  int64           `json:"weight"`
	URI     string          `json:"uri"`
	Flavor  *string         `json:"flavor"`
	Options json.RawMessage `json:"options,omitempty"`
}

func showPool(p placement.PoolSpec, detailed bool) poolJSON {
	out := poolJSON{Name: p.Name, Href: "/v2/pools/" + p.Name, Weight: p.Weight, URI: redactURI(p.URI)}
	if p.Flavor != "" {
		f := p.Flavor
		out.Flavor = &f
	}
	if detailed {
		out.Options = redactOptions(p.Options)
		if out.Options == nil {
			out.Options = json.RawMessage(`{}`)
		}
	}
	return out
}

// redactOptions hides credentials in a pool's options.
func redactOptions(o json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(o, &m) != nil {
		return o
	}
	for k := range m {
		if secretOption(k) {
			m[k] = json.RawMessage(`"***"`)
		}
	}
	out, _ := json.Marshal(m)
	return out
}

// secretOption reports whether a pool option holds a credential: its name
// is or ends in key, secret, password or token (access keys included: they
// name an account), so a driver option added later is hidden too.
func secretOption(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"key", "secret", "password", "token"} {
		if n == w || strings.HasSuffix(n, "_"+w) || strings.Contains(n, "secret") || strings.Contains(n, "password") {
			return true
		}
	}
	return false
}

// redactURI hides a password in a URI's user info.
func redactURI(u string) string {
	for i := 0; i+3 < len(u); i++ {
		if u[i:i+3] == "://" {
			rest := u[i+3:]
			for j := 0; j < len(rest) && rest[j] != '/'; j++ {
				if rest[j] == '@' {
					return u[:i+3] + "***@" + rest[j+1:]
				}
			}
			break
		}
	}
	return u
}

// decodeStrict reads a small JSON body into v, refusing unknown fields; an
// empty body leaves v as it is.
func (s *Server) decodeStrict(rq *request, v any) error {
	data, err := s.readSmallBody(rq)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badBody("Malformed JSON or unknown field: " + err.Error())
	}
	return nil
}

func (s *Server) admin() (*placement.Router, error) {
	if s.pools == nil {
		return nil, errNotFound404
	}
	return s.pools, nil
}

func (s *Server) adminError(err error) error {
	switch {
	case errors.Is(err, placement.ErrPoolNotFound), errors.Is(err, placement.ErrFlavorNotFound):
		return notFound(err.Error())
	case errors.Is(err, placement.ErrPoolInUse):
		return &apiError{status: http.StatusConflict, title: "Pool in use", description: err.Error()}
	case errors.Is(err, placement.ErrClusterMode):
		return &apiError{status: http.StatusConflict, title: "Not available in cluster mode", description: err.Error()}
	case errors.Is(err, placement.ErrPoolUnreachable), errors.Is(err, placement.ErrInvalid):
		return badRequest("Unable to create pool", err.Error())
	}
	return err
}

func (s *Server) listPools(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	link, marker, limit, err := pageStart(rq.q, s.lim.DefaultQueuesPerPage)
	if err != nil {
		return reply{}, err
	}
	detailed, err := boolParam(rq.q, &link, "detailed")
	if err != nil {
		return reply{}, err
	}
	if limit < 1 || limit > s.lim.MaxQueuesPerPage {
		return reply{}, badAPI(fmt.Sprintf("Limit must be at least 1 and no greater than %d.", s.lim.MaxQueuesPerPage))
	}
	pools := r.ListPools(marker, limit)
	out := struct {
		Pools []poolJSON  `json:"pools"`
		Links []wire.Link `json:"links"`
	}{Pools: []poolJSON{}, Links: []wire.Link{}}
	for _, p := range pools {
		out.Pools = append(out.Pools, showPool(p, detailed))
	}
	if len(pools) > 0 {
		link.set("marker", pools[len(pools)-1].Name)
		out.Links = []wire.Link{{Rel: "next", Href: "/v2/pools" + link.String()}}
	}
	return reply{body: out, header: map[string]string{"Content-Location": rq.r.URL.RequestURI()}}, nil
}

func (s *Server) getPool(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	detailed, err := boolParam(rq.q, &linkQuery{}, "detailed")
	if err != nil {
		return reply{}, err
	}
	p, err := r.GetPool(rq.vars["pool"])
	if err != nil {
		return reply{}, s.adminError(err)
	}
	return reply{body: showPool(p, detailed)}, nil
}

// poolBody is the body of PUT and PATCH on a pool.
type poolBody struct {
	Weight  *int64          `json:"weight"`
	URI     *string         `json:"uri"`
	Flavor  *string         `json:"flavor"`
	Options json.RawMessage `json:"options"`
}

func (s *Server) readPoolBody(rq *request) (poolBody, error) {
	var b poolBody
	if err := s.decodeStrict(rq, &b); err != nil {
		return b, err
	}
	if b.Weight != nil && (*b.Weight < 0 || *b.Weight > 1<<32-1) {
		return b, badBody("weight must be an integer from 0 to 4294967295.")
	}
	if b.URI != nil && (*b.URI == "" || len(*b.URI) > 255) {
		return b, badBody("uri must be a string of 1 to 255 characters.")
	}
	if len(b.Options) > 0 && b.Options[0] != '{' {
		return b, badBody("options must be an object.")
	}
	return b, nil
}

func (s *Server) putPool(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	b, err := s.readPoolBody(rq)
	if err != nil {
		return reply{}, err
	}
	if b.Weight == nil || b.URI == nil {
		return reply{}, badBody("Both weight and uri are required.")
	}
	spec := placement.PoolSpec{Name: rq.vars["pool"], URI: *b.URI, Weight: *b.Weight, Options: b.Options}
	if b.Flavor != nil {
		spec.Flavor = *b.Flavor
	}
	created, err := r.PutPool(rq.ctx(), spec)
	if err != nil {
		return reply{}, s.adminError(err)
	}
	msg := "pool replaced"
	if created {
		msg = "pool created"
	}
	s.logPool(rq, msg, spec)
	return reply{status: http.StatusCreated, location: "/v2/pools/" + spec.Name}, nil
}

func (s *Server) patchPool(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	b, err := s.readPoolBody(rq)
	if err != nil {
		return reply{}, err
	}
	if b.Weight == nil && b.URI == nil && b.Flavor == nil && b.Options == nil {
		return reply{}, badBody("One of `uri`, `weight`, `flavor`, or `options` needs to be specified")
	}
	p, err := r.PatchPool(rq.ctx(), rq.vars["pool"], placement.PoolPatch{URI: b.URI, Weight: b.Weight, Flavor: b.Flavor, Options: b.Options})
	if err != nil {
		return reply{}, s.adminError(err)
	}
	changed := []string{}
	for _, f := range []struct {
		name string
		set  bool
	}{{"uri", b.URI != nil}, {"weight", b.Weight != nil}, {"flavor", b.Flavor != nil}, {"options", b.Options != nil}} {
		if f.set {
			changed = append(changed, f.name)
		}
	}
	s.logPool(rq, "pool updated", p, changed...)
	return reply{body: showPool(p, true)}, nil
}

func (s *Server) deletePool(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	if err := r.DeletePool(rq.ctx(), rq.vars["pool"]); err != nil {
		return reply{}, s.adminError(err)
	}
	s.log.Info().Str("pool", rq.vars["pool"]).Str("request_id", rq.id).Msg("pool deleted")
	return reply{status: http.StatusNoContent}, nil
}

type flavorJSON struct {
	Name         string          `json:"name"`
	Href         string          `json:"href"`
	Pools        []string        `json:"pool_list"`
	Capabilities json.RawMessage `json:"capabilities,omitempty"`
}

func showFlavor(f placement.FlavorSpec) flavorJSON {
	caps := f.Capabilities
	if caps == nil {
		caps = json.RawMessage(`{}`)
	}
	return flavorJSON{Name: f.Name, Href: "/v2/flavors/" + f.Name, Pools: f.Pools, Capabilities: caps}
}

func (s *Server) listFlavors(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	link, marker, limit, err := pageStart(rq.q, s.lim.DefaultQueuesPerPage)
	if err != nil {
		return reply{}, err
	}
	if _, err := boolParam(rq.q, &link, "detailed"); err != nil {
		return reply{}, err
	}
	if limit < 1 || limit > s.lim.MaxQueuesPerPage {
		return reply{}, badAPI(fmt.Sprintf("Limit must be at least 1 and no greater than %d.", s.lim.MaxQueuesPerPage))
	}
	flavors := r.ListFlavors(marker, limit)
	out := struct {
		Flavors []flavorJSON `json:"flavors"`
		Links   []wire.Link  `json:"links"`
	}{Flavors: []flavorJSON{}, Links: []wire.Link{}}
	for _, f := range flavors {
		out.Flavors = append(out.Flavors, showFlavor(f))
	}
	if len(flavors) > 0 {
		link.set("marker", flavors[len(flavors)-1].Name)
		out.Links = []wire.Link{{Rel: "next", Href: "/v2/flavors" + link.String()}}
	}
	return reply{body: out}, nil
}

func (s *Server) getFlavor(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	f, err := r.GetFlavor(rq.vars["flavor"])
	if err != nil {
		return reply{}, s.adminError(err)
	}
	return reply{body: showFlavor(f)}, nil
}

type flavorBody struct {
	Pools        []string        `json:"pool_list"`
	Capabilities json.RawMessage `json:"capabilities"`
}

func (s *Server) readFlavorBody(rq *request) (flavorBody, error) {
	var b flavorBody
	if err := s.decodeStrict(rq, &b); err != nil {
		return b, err
	}
	if len(b.Pools) == 0 {
		return b, badBody("pool_list must be a non-empty list of pool names.")
	}
	return b, nil
}

func (s *Server) putFlavor(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	b, err := s.readFlavorBody(rq)
	if err != nil {
		return reply{}, err
	}
	f := placement.FlavorSpec{Name: rq.vars["flavor"], Pools: b.Pools, Capabilities: b.Capabilities}
	created, err := r.PutFlavor(rq.ctx(), f)
	if err != nil {
		if errors.Is(err, placement.ErrPoolNotFound) {
			return reply{}, badBody(err.Error())
		}
		return reply{}, s.adminError(err)
	}
	msg := "flavor replaced"
	if created {
		msg = "flavor created"
	}
	s.logFlavor(rq, msg, f)
	return reply{status: http.StatusCreated, location: "/v2/flavors/" + f.Name}, nil
}

func (s *Server) patchFlavor(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	old, err := r.GetFlavor(rq.vars["flavor"])
	if err != nil {
		return reply{}, s.adminError(err)
	}
	b, err := s.readFlavorBody(rq)
	if err != nil {
		return reply{}, err
	}
	old.Pools = b.Pools
	if b.Capabilities != nil {
		old.Capabilities = b.Capabilities
	}
	if _, err := r.PutFlavor(rq.ctx(), old); err != nil {
		if errors.Is(err, placement.ErrPoolNotFound) {
			return reply{}, badBody(err.Error())
		}
		return reply{}, s.adminError(err)
	}
	s.logFlavor(rq, "flavor updated", old)
	return reply{body: showFlavor(old)}, nil
}

func (s *Server) deleteFlavor(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	if err := r.DeleteFlavor(rq.ctx(), rq.vars["flavor"]); err != nil {
		return reply{}, s.adminError(err)
	}
	s.log.Info().Str("flavor", rq.vars["flavor"]).Str("request_id", rq.id).Msg("flavor deleted")
	return reply{status: http.StatusNoContent}, nil
}

// startMigration starts moving one queue ({"project","queue","pool"?}) or,
// with an empty body, every queue the ring now places elsewhere.
func (s *Server) startMigration(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	var b struct {
		Project string `json:"project"`
		Queue   string `json:"queue"`
		Pool    string `json:"pool"`
	}
	if err := s.decodeStrict(rq, &b); err != nil {
		return reply{}, err
	}
	var ref *index.QueueRef
	if b.Queue != "" && b.Project == "" {
		// No queue lives outside a project: the run could only fail.
		return reply{}, badBody("queue needs project: the project the queue belongs to (the X-Project-ID its clients send).")
	}
	if b.Queue != "" {
		ref = &index.QueueRef{Project: b.Project, Name: b.Queue}
	} else if b.Pool != "" || b.Project != "" {
		return reply{}, badBody("project and pool go with queue; send {} to migrate every misplaced queue.")
	}
	st, err := r.Migrate(ref, b.Pool)
	if errors.Is(err, placement.ErrClusterMode) {
		return reply{}, s.adminError(err)
	}
	if err != nil {
		return reply{}, &apiError{status: http.StatusConflict, title: "Migration running", description: err.Error()}
	}
	ev := s.log.Info().Str("request_id", rq.id)
	if ref != nil {
		ev = ev.Str("project", ref.Project).Str("queue", ref.Name).Str("to_pool", b.Pool)
	} else {
		ev = ev.Bool("all_misplaced", true)
	}
	ev.Msg("migration started")
	return reply{status: http.StatusAccepted, body: st, location: "/v2/migrations"}, nil
}

func (s *Server) getMigration(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	return reply{body: r.MigrationStatus()}, nil
}

// maxPlanMoves bounds the moves a plan lists; "total" still counts all.
const maxPlanMoves = 10_000

// planMigration lists what POST /v2/migrations {} would move now, changing
// nothing (`cistern migrate -dry-run`).
func (s *Server) planMigration(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	moves, err := r.Plan(rq.ctx())
	if err != nil {
		return reply{}, err
	}
	out := struct {
		Total     int              `json:"total"`
		Truncated bool             `json:"truncated,omitempty"`
		Moves     []placement.Move `json:"moves"`
	}{Total: len(moves), Moves: moves}
	if len(moves) > maxPlanMoves {
		out.Moves, out.Truncated = moves[:maxPlanMoves], true
	}
	if out.Moves == nil {
		out.Moves = []placement.Move{}
	}
	return reply{body: out}, nil
}

// logPool records an admin change to a pool with what it now is (the URI's
// password and the options' credentials redacted); changed names the
// fields a PATCH set.
func (s *Server) logPool(rq *request, msg string, p placement.PoolSpec, changed ...string) {
	ev := s.log.Info().Str("pool", p.Name).Str("uri", redactURI(p.URI)).Int64("weight", p.Weight).
		Str("flavor", p.Flavor).Str("request_id", rq.id)
	if len(p.Options) > 0 {
		ev = ev.RawJSON("options", redactOptions(p.Options))
	}
	if changed != nil {
		ev = ev.Strs("changed", changed)
	}
	ev.Msg(msg)
}

// logFlavor records an admin change to a flavor with its pools.
func (s *Server) logFlavor(rq *request, msg string, f placement.FlavorSpec) {
	s.log.Info().Str("flavor", f.Name).Strs("pool_list", f.Pools).Str("request_id", rq.id).Msg(msg)
}

// isAdminPath reports whether a route template is one of the admin API's.
func isAdminPath(path string) bool {
	for _, rt := range adminRoutes {
		if rt.path == path {
			return true
		}
	}
	return false
}

// queuePool says which pool a queue (of the X-Project-ID project) is on and
// where the ring would put it now.
func (s *Server) queuePool(rq *request) (reply, error) {
	r, err := s.admin()
	if err != nil {
		return reply{}, err
	}
	if s.cluster != nil {
		// Only the owner can read the queue; another node says who
		// that is (its advertise URL), for the operator to ask.
		if self, owner := s.cluster.Owner(rq.project, rq.queue()); !self {
			if owner == "" {
				return reply{}, ErrNoOwner
			}
			return reply{body: clusterLocation{Project: rq.project, Queue: rq.queue(), Owner: owner}}, nil
		}
	}
	loc, exists, err := r.Locate(rq.ctx(), rq.ref())
	if err != nil {
		return reply{}, err
	}
	if !exists {
		return reply{}, notFound("Queue " + rq.queue() + " does not exist.")
	}
	if s.cluster != nil {
		return reply{body: clusterLocation{Location: &loc, Project: loc.Project, Queue: loc.Queue, Node: s.nodeID}}, nil
	}
	return reply{body: loc}, nil
}

// clusterLocation is queuePool's answer in cluster mode: where the queue
// lives and which node serves it (node, on the owner), or only the owner's
// URL (owner, on any other node).
type clusterLocation struct {
	*placement.Location
	Project string `json:"project"`
	Queue   string `json:"queue"`
	Node    string `json:"node,omitempty"`
	Owner   string `json:"owner,omitempty"`
}
