package server

import (
	"errors"
	"fmt"
)

// Limits are the API limits of Zaqar's [transport] group and the hard-coded
// minimums of its validator. A zero field takes Zaqar's default. The yaml
// names are Zaqar's option names, for cmd/'s config file.
type Limits struct {
	MaxMessagesPostSize int64 `yaml:"max_messages_post_size"` // bytes of one POST /messages body (262144)
	MaxMessageTTL       int64 `yaml:"max_message_ttl"`        // seconds (1209600)
	MinMessageTTL       int64 `yaml:"min_message_ttl"`        // seconds (60)
	MaxMessageDelay     int64 `yaml:"max_message_delay"`      // seconds (900)
	MaxClaimTTL         int64 `yaml:"max_claim_ttl"`          // seconds (43200)
	MaxClaimGrace       int64 `yaml:"max_claim_grace"`        // seconds (43200)
	MinClaimTTL         int64 `yaml:"min_claim_ttl"`          // seconds (60)
	MinClaimGrace       int64 `yaml:"min_claim_grace"`        // seconds (60)
	MaxQueueMetadata    int64 `yaml:"max_queue_metadata"`     // bytes of a queue PUT/PATCH body (65536)

	MaxMessagesPerPage       int `yaml:"max_messages_per_page"`         // message listing limit and ids per request (20)
	MaxQueuesPerPage         int `yaml:"max_queues_per_page"`           // queue listing limit (20)
	MaxMessagesPerClaimOrPop int `yaml:"max_messages_per_claim_or_pop"` // claim limit and pop (20)
	MaxSubscriptionsPerPage  int `yaml:"max_subscriptions_per_page"`    // subscription listing limit (20)

	DefaultMessageTTL       int64 `yaml:"default_message_ttl"`        // seconds (3600)
	DefaultClaimTTL         int64 `yaml:"default_claim_ttl"`          // seconds (300)
	DefaultClaimGrace       int64 `yaml:"default_claim_grace"`        // seconds (60)
	DefaultMessagesPerPage  int   `yaml:"default_messages_per_page"`  // (10)
	DefaultQueuesPerPage    int   `yaml:"default_queues_per_page"`    // (10)
	DefaultMessagesPerClaim int   `yaml:"default_messages_per_claim"` // (10)
	DefaultSubscriptionTTL  int64 `yaml:"default_subscription_ttl"`   // seconds (3600)

	MaxQueueNameLength int `yaml:"max_queue_name_length"` // (64)
	MaxProjectIDLength int `yaml:"max_project_id_length"` // (256)

	// MaxSmallBody bounds the bodies Zaqar puts no limit on (claims,
	// purge, share, subscriptions): 64 KiB. Cistern never reads an
	// unbounded body.
	MaxSmallBody int64 `yaml:"max_small_body"`
	// MaxMessagesPerPost bounds the messages of one POST /messages: 100.
	// Zaqar bounds a post only by its bytes, and 256 KiB of tiny messages
	// made a Location header of 596 KB that clients and proxies refuse
	// after the messages were committed.
	MaxMessagesPerPost int `yaml:"max_messages_per_post"`
	// MaxSignedURLTTL bounds how far ahead a signed URL may expire, in
	// seconds: 31536000 (365 days). Zaqar has no bound.
	MaxSignedURLTTL int64 `yaml:"max_signed_url_ttl"`
}

// DefaultLimits returns Zaqar 15's defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxMessagesPostSize:      262144,
		MaxMessageTTL:            1209600,
		MinMessageTTL:            60,
		MaxMessageDelay:          900,
		MaxClaimTTL:              43200,
		MaxClaimGrace:            43200,
		MinClaimTTL:              60,
		MinClaimGrace:            60,
		MaxQueueMetadata:         65536,
		MaxMessagesPerPage:       20,
		MaxQueuesPerPage:         20,
		MaxMessagesPerClaimOrPop: 20,
		MaxSubscriptionsPerPage:  20,
		DefaultMessageTTL:        3600,
		DefaultClaimTTL:          300,
		DefaultClaimGrace:        60,
		DefaultMessagesPerPage:   10,
		DefaultQueuesPerPage:     10,
		DefaultMessagesPerClaim:  10,
		DefaultSubscriptionTTL:   3600,
		MaxQueueNameLength:       64,
		MaxProjectIDLength:       256,
		MaxSmallBody:             64 << 10,
		MaxMessagesPerPost:       100,
		MaxSignedURLTTL:          365 * 24 * 3600,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set64 := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set64(&l.MaxMessagesPostSize, d.MaxMessagesPostSize)
	set64(&l.MaxMessageTTL, d.MaxMessageTTL)
	set64(&l.MinMessageTTL, d.MinMessageTTL)
	set64(&l.MaxMessageDelay, d.MaxMessageDelay)
	set64(&l.MaxClaimTTL, d.MaxClaimTTL)
	set64(&l.MaxClaimGrace, d.MaxClaimGrace)
	set64(&l.MinClaimTTL, d.MinClaimTTL)
	set64(&l.MinClaimGrace, d.MinClaimGrace)
	set64(&l.MaxQueueMetadata, d.MaxQueueMetadata)
	set(&l.MaxMessagesPerPage, d.MaxMessagesPerPage)
	set(&l.MaxQueuesPerPage, d.MaxQueuesPerPage)
	set(&l.MaxMessagesPerClaimOrPop, d.MaxMessagesPerClaimOrPop)
	set(&l.MaxSubscriptionsPerPage, d.MaxSubscriptionsPerPage)
	set64(&l.DefaultMessageTTL, d.DefaultMessageTTL)
	set64(&l.DefaultClaimTTL, d.DefaultClaimTTL)
	set64(&l.DefaultClaimGrace, d.DefaultClaimGrace)
	set(&l.DefaultMessagesPerPage, d.DefaultMessagesPerPage)
	set(&l.DefaultQueuesPerPage, d.DefaultQueuesPerPage)
	set(&l.DefaultMessagesPerClaim, d.DefaultMessagesPerClaim)
	set64(&l.DefaultSubscriptionTTL, d.DefaultSubscriptionTTL)
	set(&l.MaxQueueNameLength, d.MaxQueueNameLength)
	set(&l.MaxProjectIDLength, d.MaxProjectIDLength)
	set64(&l.MaxSmallBody, d.MaxSmallBody)
	set(&l.MaxMessagesPerPost, d.MaxMessagesPerPost)
	set64(&l.MaxSignedURLTTL, d.MaxSignedURLTTL)
	return l
}

// Validate reports limits that contradict each other or are negative.
// Zero fields are fine: they take the defaults.
func (l Limits) Validate() error {
	l = l.withDefaults()
	var errs []error
	pos := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative (%d)", name, v))
		}
	}
	for name, v := range map[string]int64{
		"MaxMessagesPostSize": l.MaxMessagesPostSize, "MaxMessageTTL": l.MaxMessageTTL,
		"MinMessageTTL": l.MinMessageTTL, "MaxMessageDelay": l.MaxMessageDelay,
		"MaxClaimTTL": l.MaxClaimTTL, "MaxClaimGrace": l.MaxClaimGrace,
		"MinClaimTTL": l.MinClaimTTL, "MinClaimGrace": l.MinClaimGrace,
		"MaxQueueMetadata": l.MaxQueueMetadata, "MaxMessagesPerPage": int64(l.MaxMessagesPerPage),
		"MaxQueuesPerPage": int64(l.MaxQueuesPerPage), "MaxMessagesPerClaimOrPop": int64(l.MaxMessagesPerClaimOrPop),
		"MaxSubscriptionsPerPage": int64(l.MaxSubscriptionsPerPage), "DefaultMessageTTL": l.DefaultMessageTTL,
		"DefaultClaimTTL": l.DefaultClaimTTL, "DefaultSubscriptionTTL": l.DefaultSubscriptionTTL, "DefaultClaimGrace": l.DefaultClaimGrace,
		"DefaultMessagesPerPage": int64(l.DefaultMessagesPerPage), "DefaultQueuesPerPage": int64(l.DefaultQueuesPerPage),
		"DefaultMessagesPerClaim": int64(l.DefaultMessagesPerClaim), "MaxQueueNameLength": int64(l.MaxQueueNameLength),
		"MaxProjectIDLength": int64(l.MaxProjectIDLength), "MaxSmallBody": l.MaxSmallBody,
		"MaxMessagesPerPost": int64(l.MaxMessagesPerPost), "MaxSignedURLTTL": l.MaxSignedURLTTL,
	} {
		pos(name, v)
	}
	within := func(name string, v, lo, hi int64) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("%s (%d) must be within %d..%d", name, v, lo, hi))
		}
	}
	within("MinMessageTTL", l.MinMessageTTL, 1, l.MaxMessageTTL)
	within("DefaultMessageTTL", l.DefaultMessageTTL, l.MinMessageTTL, l.MaxMessageTTL)
	within("MinClaimTTL", l.MinClaimTTL, 1, l.MaxClaimTTL)
	within("DefaultClaimTTL", l.DefaultClaimTTL, l.MinClaimTTL, l.MaxClaimTTL)
	within("MinClaimGrace", l.MinClaimGrace, 0, l.MaxClaimGrace)
	within("DefaultClaimGrace", l.DefaultClaimGrace, l.MinClaimGrace, l.MaxClaimGrace)
	within("DefaultMessagesPerPage", int64(l.DefaultMessagesPerPage), 1, int64(l.MaxMessagesPerPage))
	within("DefaultQueuesPerPage", int64(l.DefaultQueuesPerPage), 1, int64(l.MaxQueuesPerPage))
	within("DefaultMessagesPerClaim", int64(l.DefaultMessagesPerClaim), 1, int64(l.MaxMessagesPerClaimOrPop))
	within("DefaultSubscriptionTTL", l.DefaultSubscriptionTTL, minSubscriptionTTL, 100*365*24*3600)
	// Beyond a century the seconds would overflow a time.Duration.
	within("MaxSignedURLTTL", l.MaxSignedURLTTL, 1, 100*365*24*3600)
	return errors.Join(errs...)
}
