package server

import (
	"fmt"
	"net/http"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server/wire"
)

// claimTimes resolves a claim body against the defaults and checks the
// ranges in Zaqar's order (ttl, then limit, then grace). PATCH checks grace
// too: the engine would otherwise take any value.
func (s *Server) claimTimes(c wire.ClaimRequest, limit *int) (ttl, grace int64, err error) {
	ttl, grace = s.lim.DefaultClaimTTL, s.lim.DefaultClaimGrace
	if c.TTL != nil {
		ttl = *c.TTL
	}
	if c.Grace != nil {
		grace = *c.Grace
	}
	if ttl < s.lim.MinClaimTTL || ttl > s.lim.MaxClaimTTL {
		return 0, 0, badAPI(fmt.Sprintf("The TTL for a claim may not exceed %d seconds, and must be at least %d seconds long.",
			s.lim.MaxClaimTTL, s.lim.MinClaimTTL))
	}
	if limit != nil && (*limit < 1 || *limit > s.lim.MaxMessagesPerClaimOrPop) {
		return 0, 0, badAPI(limitText(s.lim.MaxMessagesPerClaimOrPop))
	}
	if grace < s.lim.MinClaimGrace || grace > s.lim.MaxClaimGrace {
		return 0, 0, badAPI(fmt.Sprintf("The grace for a claim may not exceed %d seconds, and must be at least %d seconds long.",
			s.lim.MaxClaimGrace, s.lim.MinClaimGrace))
	}
	return ttl, grace, nil
}

// createClaim answers POST /v2/queues/{q}/claims[?limit=]: 201 with the
// claimed messages, or 204 when there is nothing to claim (also for a queue
// that does not exist).
func (s *Server) createClaim(rq *request) (reply, error) {
	limit, hasLimit, err := rq.q.Int("limit")
	if err != nil {
		return reply{}, err
	}
	data, err := s.readSmallBody(rq)
	if err != nil {
		return reply{}, err
	}
	body, err := wire.DecodeClaim(data, true)
	if err != nil {
		return reply{}, err
	}
	var lp *int
	if hasLimit {
		lp = &limit
	} else {
		limit = s.lim.DefaultMessagesPerClaim
	}
	ttl, grace, err := s.claimTimes(body, lp)
	if err != nil {
		return reply{}, err
	}
	c, err := s.eng.Claim(rq.ctx(), rq.ref(), index.ClaimOptions{TTL: ttl, Grace: grace, Limit: limit})
	if err != nil {
		return reply{}, err
	}
	if c == nil || len(c.Messages) == 0 {
		return reply{status: http.StatusNoContent}, nil
	}
	for i := range c.Messages {
		c.Messages[i].ClaimID = c.ID
	}
	return reply{
		status:   http.StatusCreated,
		body:     wire.Messages{Messages: s.formatMessages(rq.queuePath(), c.Messages)},
		location: rq.queuePath() + "/claims/" + c.ID,
	}, nil
}

// getClaim answers GET /v2/queues/{q}/claims/{cid}: its age, its TTL and
// its messages.
func (s *Server) getClaim(rq *request) (reply, error) {
	c, err := s.eng.GetClaim(rq.ctx(), rq.ref(), rq.vars["claim_id"])
	if err != nil {
		return reply{}, err
	}
	for i := range c.Messages {
		c.Messages[i].ClaimID = c.ID
	}
	return reply{body: wire.Claim{
		Age:      ageSeconds(s.now(), c.Created),
		TTL:      c.TTL,
		Messages: s.formatMessages(rq.queuePath(), c.Messages),
		Href:     rq.queuePath() + "/claims/" + c.ID,
	}}, nil
}

// updateClaim answers PATCH /v2/queues/{q}/claims/{cid}: a new TTL and
// grace from now.
func (s *Server) updateClaim(rq *request) (reply, error) {
	data, err := s.readSmallBody(rq)
	if err != nil {
		return reply{}, err
	}
	body, err := wire.DecodeClaim(data, false)
	if err != nil {
		return reply{}, err
	}
	ttl, grace, err := s.claimTimes(body, nil)
	if err != nil {
		return reply{}, err
	}
	if err := s.eng.RenewClaim(rq.ctx(), rq.ref(), rq.vars["claim_id"], ttl, grace); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}

// releaseClaim answers DELETE /v2/queues/{q}/claims/{cid}: 204 always.
func (s *Server) releaseClaim(rq *request) (reply, error) {
	if err := s.eng.ReleaseClaim(rq.ctx(), rq.ref(), rq.vars["claim_id"]); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}
