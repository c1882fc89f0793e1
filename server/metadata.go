package server

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/cistern-mq/cistern/index"
	"github.com/cistern-mq/cistern/server/wire"
)

// reservedKeys are the reserved metadata keys GET fills in, in Zaqar's
// order. A PATCH may replace or remove them even when they are unset.
var reservedKeys = []string{
	wire.MetaMaxMessagesPostSize,
	wire.MetaDefaultMessageTTL,
	wire.MetaDefaultMessageDelay,
	wire.MetaDeadLetterQueue,
	wire.MetaDeadLetterQueueTTL,
	wire.MetaMaxClaimCount,
	wire.MetaEnableEncryptMessages,
}

func isReserved(k string) bool {
	for _, r := range reservedKeys {
		if r == k {
			return true
		}
	}
	return false
}

// reservedDefault is what GET shows for a reserved key that is unset or
// falsy.
func (s *Server) reservedDefault(k string) json.RawMessage {
	switch k {
	case wire.MetaMaxMessagesPostSize:
		return json.RawMessage(strconv.FormatInt(s.lim.MaxMessagesPostSize, 10))
	case wire.MetaDefaultMessageTTL:
		return json.RawMessage(strconv.FormatInt(s.lim.DefaultMessageTTL, 10))
	case wire.MetaDefaultMessageDelay:
		return json.RawMessage("0")
	case wire.MetaEnableEncryptMessages:
		return json.RawMessage("false")
	default:
		return json.RawMessage("null")
	}
}

// withReservedDefaults returns a copy of meta with every reserved key that
// is missing or falsy set to its default, as Zaqar's GET does: stored keys
// keep their places, missing ones follow in reservedKeys order.
func (s *Server) withReservedDefaults(meta wire.Object) wire.Object {
	out := meta.Clone()
	for _, k := range reservedKeys {
		if v, ok := out.Get(k); !ok || !wire.Truthy(v) {
			out.Set(k, s.reservedDefault(k))
		}
	}
	return out
}

// decodeStored parses metadata as the engine keeps it (always an object).
func decodeStored(raw json.RawMessage) wire.Object {
	var obj wire.Object
	if len(raw) == 0 || json.Unmarshal(raw, &obj) != nil {
		return wire.Object{}
	}
	return obj
}

// checkReserved is Zaqar's queue_metadata_putting: the reserved keys'
// types and ranges. It returns the description of the first violation, or
// "". A null value means unset and passes.
func (s *Server) checkReserved(meta wire.Object) string {
	l := s.lim
	// The integer keys, in Zaqar's order of checking; a zero range means
	// only the type is checked.
	for _, r := range []struct {
		key    string
		lo, hi int64
		desc   string
	}{
		{wire.MetaDefaultMessageTTL, l.MinMessageTTL, l.MaxMessageTTL,
			fmt.Sprintf("_default_message_ttl can not exceed %d seconds, and must be at least %d seconds long.", l.MaxMessageTTL, l.MinMessageTTL)},
		{wire.MetaMaxMessagesPostSize, 1, l.MaxMessagesPostSize,
			fmt.Sprintf("_max_messages_post_size can not exceed %d,  and must be at least greater than 0.", l.MaxMessagesPostSize)},
		{wire.MetaMaxClaimCount, 0, 0, ""},
		{wire.MetaDeadLetterQueueTTL, l.MinMessageTTL, l.MaxMessageTTL,
			fmt.Sprintf("The TTL for a message may not exceed %d seconds, and must be at least %d seconds long.", l.MaxMessageTTL, l.MinMessageTTL)},
		{wire.MetaDefaultMessageDelay, 0, l.MaxMessageDelay,
			fmt.Sprintf("The TTL can not exceed %d seconds, and must be at least 0 seconds long.", l.MaxMessageDelay)},
	} {
		raw, ok := meta.Get(r.key)
		if !ok || wire.Kind(raw) == 'n' {
			continue
		}
		v, isInt := wire.Int(raw)
		switch {
		case !isInt:
			return r.key + " must be integer."
		case r.desc != "" && (v < r.lo || v > r.hi):
			return r.desc
		}
	}
	if raw, ok := meta.Get(wire.MetaEnableEncryptMessages); ok && wire.Truthy(raw) {
		if wire.Kind(raw) != 't' {
			return "_enable_encrypt_messages must be boolean."
		}
		// Zaqar "encrypts" with a key every installation shares by default;
		// Cistern does not pretend to.
		return "_enable_encrypt_messages is not supported by this server."
	}
	// The dead-letter queue must be one the API can address: a queue
	// name by the same rule as in a path, or "" (unset, as null). Zaqar
	// checks nothing here.
	if raw, ok := meta.Get(wire.MetaDeadLetterQueue); ok && wire.Kind(raw) != 'n' {
		name, isStr := wire.String(raw)
		if !isStr || name != "" && !validQueueName(name, s.lim.MaxQueueNameLength) {
			return "_dead_letter_queue must be a queue name."
		}
	}
	return checkRetryPolicy(meta)
}

// checkRetryPolicy is Zaqar's _validate_retry_policy.
func checkRetryPolicy(meta wire.Object) string {
	raw, ok := meta.Get(wire.MetaRetryPolicy)
	if !ok || !wire.Truthy(raw) {
		return ""
	}
	var rp wire.Object
	if wire.Kind(raw) != '{' || json.Unmarshal(raw, &rp) != nil {
		return "retry_policy must be a dict."
	}
	for _, k := range []string{"retries_with_no_delay", "minimum_delay_retries", "minimum_delay",
		"maximum_delay", "maximum_delay_retries", "retry_backoff_function", "ignore_subscription_override"} {
		v, ok := rp.Get(k)
		if !ok || !wire.Truthy(v) {
			continue
		}
		switch k {
		case "retry_backoff_function":
			s, isStr := wire.String(v)
			if !isStr {
				return "retry_backoff_function must be a string."
			}
			if s != "linear" && s != "arithmetic" && s != "exponential" && s != "geometric" {
				return "invalid retry_backoff_function."
			}
		case "ignore_subscription_override":
			if wire.Kind(v) != 't' {
				return "ignore_subscription_override must be a boolean."
			}
		default:
			if _, isInt := wire.Int(v); !isInt {
				return "Retry policy: " + k + " must be a integer."
			}
		}
	}
	minDelay, maxDelay := int64(5), int64(30) // zaqar.common.consts
	if v, ok := rp.Get("minimum_delay"); ok {
		minDelay, _ = wire.Int(v)
	}
	if v, ok := rp.Get("maximum_delay"); ok {
		maxDelay, _ = wire.Int(v)
	}
	if maxDelay < minDelay {
		return "minimum_delay must less than maximum_delay."
	}
	if maxDelay-minDelay < 2*5 {
		return "invalid minimum_delay and maximum_delay."
	}
	return ""
}

// settings reads the reserved keys the server acts on from stored metadata.
func settings(raw json.RawMessage) index.Settings { return index.ParseSettings(raw) }
