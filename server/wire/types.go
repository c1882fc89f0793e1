// Package wire holds the Zaqar v2 wire types: the JSON documents the HTTP API
// reads and writes, the {"title","description"} error body, and decoders for
// request bodies and query strings that reproduce Zaqar 15's validation and
// error texts. Message bodies stay json.RawMessage end to end.
//
// The package does syntax and type checks only; range checks that depend on
// configured limits live in the server.
package wire

import "encoding/json"

// Error is the body of every error response, as Falcon writes it.
type Error struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

// Link is a paging link.
type Link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// Message is a message as listings, gets and claims return it.
type Message struct {
	ID       string          `json:"id"`
	Href     string          `json:"href"`
	TTL      int64           `json:"ttl"`
	Age      int64           `json:"age"`
	Body     json.RawMessage `json:"body"`
	Checksum string          `json:"checksum,omitempty"`
}

// PopMessage is one item of a pop. Zaqar returns raw storage records there;
// Cistern returns the formatted message plus the two raw fields clients read
// (python-zaqarclient's Message takes exactly these keywords).
type PopMessage struct {
	ID         string          `json:"id"`
	Href       string          `json:"href"`
	TTL        int64           `json:"ttl"`
	Age        int64           `json:"age"`
	Body       json.RawMessage `json:"body"`
	ClaimID    *string         `json:"claim_id"`
	ClaimCount int             `json:"claim_count"`
}

// MessageList answers GET /v2/queues/{q}/messages.
type MessageList struct {
	Messages []Message `json:"messages"`
	Links    []Link    `json:"links"`
}

// Messages answers GET ?ids= and claim creation.
type Messages struct {
	Messages []Message `json:"messages"`
}

// PopResult answers DELETE ?pop=.
type PopResult struct {
	Messages []PopMessage `json:"messages"`
}

// PostResult answers POST /v2/queues/{q}/messages.
type PostResult struct {
	Resources []string `json:"resources"`
}

// Claim answers GET /v2/queues/{q}/claims/{cid}.
type Claim struct {
	Age      int64     `json:"age"`
	TTL      int64     `json:"ttl"`
	Messages []Message `json:"messages"`
	Href     string    `json:"href"`
}

// QueueItem is one queue of a listing; Metadata only when detailed.
type QueueItem struct {
	Name     string `json:"name"`
	Metadata Object `json:"metadata,omitempty"`
	Href     string `json:"href"`
}

// QueueList answers GET /v2/queues.
type QueueList struct {
	Queues []QueueItem `json:"queues"`
	Links  []Link      `json:"links"`
	Count  int         `json:"count,omitempty"`
}

// TopicList answers GET /v2/topics: topics list as queues do, under
// "topics".
type TopicList struct {
	Topics []QueueItem `json:"topics"`
	Links  []Link      `json:"links"`
}

// Stats answers GET /v2/queues/{q}/stats.
type Stats struct {
	Messages MessageStats `json:"messages"`
}

// MessageStats are a queue's message counts.
type MessageStats struct {
	Claimed int          `json:"claimed"`
	Free    int          `json:"free"`
	Total   int          `json:"total"`
	Oldest  *StatMessage `json:"oldest,omitempty"`
	Newest  *StatMessage `json:"newest,omitempty"`
}

// StatMessage names the oldest or newest message in Stats.
type StatMessage struct {
	Age     int64  `json:"age"`
	Created string `json:"created"` // "2006-01-02T15:04:05Z"
	Href    string `json:"href"`
}

// ShareResult answers POST /v2/queues/{q}/share.
type ShareResult struct {
	Paths     []string `json:"paths"`
	Methods   []string `json:"methods"`
	Project   string   `json:"project"`
	Expires   string   `json:"expires"`
	Signature string   `json:"signature"`
}

// SubscriptionList answers GET /v2/queues/{q}/subscriptions.
type SubscriptionList struct {
	Subscriptions []json.RawMessage `json:"subscriptions"`
	Links         []Link            `json:"links"`
}

// Health answers GET /v2/health.
type Health struct {
	StorageReachable bool `json:"storage_reachable"`
	QueuesLoaded     int  `json:"queues_loaded"`
	// Pools is shown on the admin side only: the errors name internal
	// URLs.
	Pools []PoolHealth `json:"pools,omitempty"`
	// Node and Cluster are shown on the admin side in cluster mode: this
	// node's id and the members as the cluster reports them.
	Node    string `json:"node,omitempty"`
	Cluster any    `json:"cluster,omitempty"`
	// OperationStatus is Zaqar's admin health check, on the admin side
	// only: each operation of a short run on a scratch queue.
	OperationStatus map[string]OperationStatus `json:"operation_status,omitempty"`
}

// OperationStatus is one operation of the admin health check, as Zaqar
// reports it: whether it succeeded, how long it took, and when it failed a
// reference that the server's log names with the error.
type OperationStatus struct {
	Succeeded bool    `json:"succeeded"`
	Seconds   float64 `json:"seconds"`
	Ref       *string `json:"ref"`
}

// PoolHealth is one pool in the admin side's GET /v2/health.
type PoolHealth struct {
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// DamagedQueues names ("project/queue") the queues found with their
	// objects missing from the store: restore them, or delete the queues.
	DamagedQueues []string `json:"damaged_queues,omitempty"`
}

// Reserved metadata keys.
const (
	MetaMaxMessagesPostSize   = "_max_messages_post_size"
	MetaDefaultMessageTTL     = "_default_message_ttl"
	MetaDefaultMessageDelay   = "_default_message_delay"
	MetaDeadLetterQueue       = "_dead_letter_queue"
	MetaDeadLetterQueueTTL    = "_dead_letter_queue_messages_ttl"
	MetaMaxClaimCount         = "_max_claim_count"
	MetaEnableEncryptMessages = "_enable_encrypt_messages"
	MetaRetryPolicy           = "_retry_policy"
	MetaFlavor                = "_flavor"
)

// PatchContentType is the only media type queue PATCH accepts.
const PatchContentType = "application/openstack-messaging-v2.0-json-patch"
