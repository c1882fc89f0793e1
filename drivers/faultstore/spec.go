package faultstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// ParseSpec reads faults written as text, for a process a test starts (the
// crash test passes them to the server in CISTERN_FAULTS). The spec is
// space-separated words:
//
//	seed=N                          the seed (default 1)
//	VERB[@PREFIX]=EFFECT:PROB[:LATENCY]   one rule
//
// VERB is a Verb ("put", "get", "list", ...) or "*" for all; @PREFIX
// restricts the rule to containers whose names start with PREFIX (the
// engine's queues are "q-..."). EFFECT is one
// of unavailable, invalid, precondition, notfound, notsupported (Fail with
// that kind), lost (LostAnswer, unavailable), delay, timeout, torn, flip.
// PROB is in (0, 1]; LATENCY a time.Duration for delay and timeout.
// Example: "seed=7 put@q-=unavailable:0.05 put=lost:0.02 *=delay:0.1:2ms".
func ParseSpec(spec string) (Options, []Rule, error) {
	o := Options{Seed: 1}
	var rules []Rule
	for _, w := range strings.Fields(spec) {
		name, val, ok := strings.Cut(w, "=")
		if !ok {
			return o, nil, fmt.Errorf("faultstore: %q: want seed=N or VERB=EFFECT:PROB[:LATENCY]", w)
		}
		if name == "seed" {
			s, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return o, nil, fmt.Errorf("faultstore: %q: %v", w, err)
			}
			o.Seed = s
			continue
		}
		r, err := parseRule(name, val)
		if err != nil {
			return o, nil, fmt.Errorf("faultstore: %q: %v", w, err)
		}
		rules = append(rules, r)
	}
	return o, rules, nil
}

var effects = map[string]Rule{
	"unavailable":  {Effect: Fail, Err: drivers.ErrUnavailable},
	"invalid":      {Effect: Fail, Err: drivers.ErrInvalid},
	"precondition": {Effect: Fail, Err: drivers.ErrPreconditionFailed},
	"notfound":     {Effect: Fail, Err: drivers.ErrNotFound},
	"notsupported": {Effect: Fail, Err: drivers.ErrNotSupported},
	"lost":         {Effect: LostAnswer},
	"delay":        {Effect: Delay},
	"timeout":      {Effect: Timeout},
	"torn":         {Effect: Torn},
	"flip":         {Effect: Flip},
}

var verbs = []Verb{Put, Get, Head, Delete, DeleteKeys, List, CreateContainer, DeleteContainer, ListContainers}

func parseRule(verb, val string) (Rule, error) {
	parts := strings.Split(val, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Rule{}, fmt.Errorf("want EFFECT:PROB[:LATENCY]")
	}
	r, ok := effects[parts[0]]
	if !ok {
		return Rule{}, fmt.Errorf("unknown effect %q", parts[0])
	}
	r.Name = verb + "=" + val
	verb, r.ContainerPrefix, _ = strings.Cut(verb, "@")
	if verb != "*" {
		known := false
		for _, v := range verbs {
			known = known || string(v) == verb
		}
		if !known {
			return Rule{}, fmt.Errorf("unknown verb %q", verb)
		}
		r.Verbs = []Verb{Verb(verb)}
	}
	p, err := strconv.ParseFloat(parts[1], 64)
	if err != nil || !(p > 0 && p <= 1) {
		return Rule{}, fmt.Errorf("probability %q: want a number in (0, 1]", parts[1])
	}
	r.Prob = p
	if len(parts) == 3 {
		d, err := time.ParseDuration(parts[2])
		if err != nil || d < 0 {
			return Rule{}, fmt.Errorf("latency %q: want a duration", parts[2])
		}
		r.Latency = d
	}
	return r, nil
}

// FromSpec wraps s with the faults of spec (see ParseSpec).
func FromSpec(s drivers.Store, spec string) (*Store, error) {
	o, rules, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	f := New(s, o)
	for _, r := range rules {
		f.Add(r)
	}
	return f, nil
}
