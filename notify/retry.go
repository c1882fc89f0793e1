package notify

import (
	"encoding/json"
	"math"
	"time"
)

// Zaqar's defaults of a retry policy (zaqar.common.consts).
const (
	defaultRetriesNoDelay      = 3
	defaultMinimumDelayRetries = 3
	defaultMinimumDelay        = 5  // seconds
	defaultMaximumDelay        = 30 // seconds
	defaultMaximumDelayRetries = 3
	linearInterval             = 5 // seconds
)

// RetryPolicy is Zaqar's _retry_policy, from a subscription's options or
// its queue's metadata.
type RetryPolicy struct {
	RetriesWithNoDelay         *int64 `json:"retries_with_no_delay"`
	MinimumDelayRetries        *int64 `json:"minimum_delay_retries"`
	MinimumDelay               *int64 `json:"minimum_delay"`
	MaximumDelay               *int64 `json:"maximum_delay"`
	MaximumDelayRetries        *int64 `json:"maximum_delay_retries"`
	RetryBackoffFunction       string `json:"retry_backoff_function"`
	IgnoreSubscriptionOverride bool   `json:"ignore_subscription_override"`
	set                        bool
}

// retryPolicyOf reads "_retry_policy" of a JSON object (options or queue
// metadata); a missing or unreadable one is unset. The server validated
// it when it was stored.
func retryPolicyOf(doc json.RawMessage) RetryPolicy {
	var holder struct {
		P json.RawMessage `json:"_retry_policy"`
	}
	var p RetryPolicy
	if json.Unmarshal(doc, &holder) != nil || len(holder.P) == 0 || json.Unmarshal(holder.P, &p) != nil {
		return RetryPolicy{}
	}
	p.set = true
	return p
}

// choosePolicy is Zaqar's choice between the subscription's policy and
// its queue's: the queue's when either says ignore_subscription_override,
// else the subscription's if it has one.
func choosePolicy(sub, queue RetryPolicy) RetryPolicy {
	if sub.IgnoreSubscriptionOverride || queue.IgnoreSubscriptionOverride || !sub.set {
		return queue
	}
	return sub
}

func or(v *int64, def int64) int64 {
	if v == nil || *v < 0 {
		return def
	}
	return *v
}

// Schedule returns the waits before each retry of a failed delivery, as
// Zaqar's webhook task spaces them: retries with no delay, retries at the
// minimum delay, the backoff function from minimum to maximum delay, and
// retries at the maximum delay. Where Zaqar then drops the notification,
// Cistern keeps retrying at the maximum delay (After) until the message
// expires: delivery is at least once.
func (p RetryPolicy) Schedule() (waits []time.Duration, after time.Duration) {
	minD, maxD := or(p.MinimumDelay, defaultMinimumDelay), or(p.MaximumDelay, defaultMaximumDelay)
	sec := func(s int64) time.Duration { return time.Duration(s) * time.Second }
	for range or(p.RetriesWithNoDelay, defaultRetriesNoDelay) {
		waits = append(waits, 0)
	}
	for range or(p.MinimumDelayRetries, defaultMinimumDelayRetries) {
		waits = append(waits, sec(minD))
	}
	for _, d := range backoff(p.RetryBackoffFunction, minD, maxD) {
		waits = append(waits, sec(d))
	}
	for range or(p.MaximumDelayRetries, defaultMaximumDelayRetries) {
		waits = append(waits, sec(maxD))
	}
	return waits, sec(max(maxD, 1))
}

// backoff is Zaqar's RETRY_BACKOFF_FUNCTION_MAP, guarded where Python
// would divide by zero (then it is the minimum delay once).
func backoff(fn string, minD, maxD int64) []int64 {
	var out []int64
	xMax := (maxD - minD) / linearInterval
	if fn == "" || fn == "linear" || xMax < 2 || minD <= 0 {
		for d := minD; d < maxD; d += linearInterval {
			out = append(out, d)
		}
		return out
	}
	k := math.Pow(10, math.Log10(float64(maxD)/float64(minD))/float64(xMax-1))
	for a := int64(1); a <= xMax; a++ {
		switch fn {
		case "geometric":
			out = append(out, int64(float64(minD)*math.Pow(k, float64(a-1))))
		case "exponential":
			out = append(out, int64(float64(minD)/k*math.Pow(k, float64(a))))
		default: // arithmetic
			d := 2.0 * float64(maxD-minD) / float64(xMax*(xMax-1))
			out = append(out, int64(float64(minD)+float64((a-1)*a)*d/2))
		}
	}
	return out
}
