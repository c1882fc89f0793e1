package wire

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Titles of Zaqar's 400 answers.
const (
	TitleInvalidBody  = "Invalid request body"
	TitleInvalidAPI   = "Invalid API request"
	TitleInvalidParam = "Invalid parameter"
)

// Descriptions shared by several decoders.
const (
	DescEmptyBody      = "Request body can not be empty"
	DescMalformed      = "Request body could not be parsed."
	DescDocType        = "Document type not supported."
	DescNoMessages     = "No messages were found in the request body."
	DescNoMessagesSent = "No messages to enqueu." // sic, as Zaqar says it
)

// ValidationError is a 400 with Zaqar's title and description.
type ValidationError struct {
	Title       string
	Description string
}

func (e *ValidationError) Error() string { return e.Title + ": " + e.Description }

func badBody(desc string) error { return &ValidationError{TitleInvalidBody, desc} }
func badAPI(desc string) error  { return &ValidationError{TitleInvalidAPI, desc} }

// document checks that data is a JSON document: empty → "can not be empty",
// malformed → "could not be parsed".
func document(data []byte) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return badBody(DescEmptyBody)
	}
	if !validJSON(data) {
		return badBody(DescMalformed)
	}
	return nil
}

func typeError(name, vtype string) error {
	return badBody(fmt.Sprintf("The value of the %q field must be a %s.", name, vtype))
}

// optInt reads an optional integer field of a decoded object.
func optInt(m map[string]json.RawMessage, name string) (*int64, error) {
	raw, ok := m[name]
	if !ok {
		return nil, nil
	}
	v, ok := Int(raw)
	if !ok {
		return nil, typeError(name, "int")
	}
	return &v, nil
}

// PostMessage is one message of a POST. TTL and Delay are nil when absent.
type PostMessage struct {
	Body  json.RawMessage
	TTL   *int64
	Delay *int64
}

// DecodePostMessages decodes {"messages": [{"body": ..., "ttl": n?,
// "delay": n?}, ...]}, checking each message's fields in Zaqar's order (ttl
// type, body presence, delay type). Unknown fields are dropped. An empty list
// is an error, as in Zaqar.
func DecodePostMessages(data []byte) ([]PostMessage, error) {
	if err := document(data); err != nil {
		return nil, err
	}
	// Plain maps suffice here (key order does not matter) and decode in
	// one pass per level.
	if Kind(data) != '{' {
		// A bare array (v1 style) or a scalar has no "messages" key.
		return nil, badAPI(DescNoMessages)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, badBody(DescMalformed)
	}
	raw, ok := doc["messages"]
	if !ok {
		return nil, badAPI(DescNoMessages)
	}
	var items []map[string]json.RawMessage
	if Kind(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, badBody(DescDocType)
	}
	out := make([]PostMessage, 0, len(items))
	for _, m := range items {
		if m == nil {
			return nil, badBody(DescDocType)
		}
		var pm PostMessage
		var err error
		if pm.TTL, err = optInt(m, "ttl"); err != nil {
			return nil, err
		}
		body, ok := m["body"]
		if !ok {
			return nil, badBody(`Missing "body" field.`)
		}
		pm.Body = body
		if pm.Delay, err = optInt(m, "delay"); err != nil {
			return nil, err
		}
		out = append(out, pm)
	}
	if len(out) == 0 {
		return nil, badAPI(DescNoMessagesSent)
	}
	return out, nil
}

// ClaimRequest is the body of a claim POST or PATCH; nil fields take the
// defaults.
type ClaimRequest struct {
	TTL   *int64
	Grace *int64
}

// DecodeClaim decodes {"ttl": n?, "grace": n?}. With allowEmpty (claim
// creation) an empty body means the defaults; a PATCH needs a body.
func DecodeClaim(data []byte, allowEmpty bool) (ClaimRequest, error) {
	var c ClaimRequest
	if allowEmpty && len(strings.TrimSpace(string(data))) == 0 {
		return c, nil
	}
	if err := document(data); err != nil {
		return c, err
	}
	var obj map[string]json.RawMessage
	if Kind(data) != '{' || json.Unmarshal(data, &obj) != nil {
		return c, badBody(DescDocType)
	}
	var err error
	if c.TTL, err = optInt(obj, "ttl"); err != nil {
		return c, err
	}
	if c.Grace, err = optInt(obj, "grace"); err != nil {
		return c, err
	}
	return c, nil
}

// DecodeMetadata decodes a queue PUT body: a JSON object, in order.
func DecodeMetadata(data []byte) (Object, error) {
	if err := document(data); err != nil {
		return nil, err
	}
	obj, err := parseObject(data)
	if err != nil {
		return nil, badBody(DescDocType)
	}
	return obj, nil
}

// PatchOp is one json-patch operation on queue metadata.
type PatchOp struct {
	Op    string // add, replace or remove
	Path  []string
	Key   string          // Path[1]: the metadata key
	Value json.RawMessage // nil for remove
}

var patchOps = []string{"add", "remove", "replace"}

// DecodePatch decodes a queue PATCH body (json-patch draft 10 restricted to
// /metadata/<key>) with Zaqar's checks and texts, all 400 "Invalid request
// body".
func DecodePatch(data []byte) ([]PatchOp, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, badBody("PATCH body could not be empty for update.")
	}
	if !validJSON(data) {
		return nil, badBody(DescMalformed)
	}
	items, ok := parseArray(data)
	if !ok {
		return nil, badBody(DescDocType)
	}
	out := make([]PatchOp, 0, len(items))
	for _, it := range items {
		obj, err := parseObject(it)
		if err != nil {
			return nil, badBody("Operations must be JSON objects.")
		}
		rawOp, ok := obj.Get("op")
		if !ok || Kind(rawOp) == 'n' {
			return nil, badBody("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
		}
		op, _ := String(rawOp)
		if !slices.Contains(patchOps, op) || Kind(rawOp) != '"' {
			return nil, badBody(fmt.Sprintf("Invalid operation: `%s`. It must be one of the following: add, remove, replace.", pyStr(rawOp)))
		}
		rawPath, ok := obj.Get("path")
		if !ok {
			return nil, badBody("Unable to find 'path' in JSON Schema change")
		}
		pointer, ok := String(rawPath)
		if !ok {
			return nil, badBody(fmt.Sprintf("Pointer `%s` does not start with \"/\".", pyStr(rawPath)))
		}
		path, err := decodePointer(pointer)
		if err != nil {
			return nil, err
		}
		if len(path) != 2 {
			return nil, badBody(fmt.Sprintf("Invalid JSON pointer for this resource: '/%s, e.g /metadata/key'", strings.Join(path, "/")))
		}
		p := PatchOp{Op: op, Path: path, Key: path[1]}
		if op != "remove" {
			v, ok := obj.Get("value")
			if !ok {
				return nil, badBody(fmt.Sprintf("Operation \"%s\" requires a member named \"value\".", op))
			}
			p.Value = v
			if strings.ToLower(path[0]) != "metadata" {
				return nil, badBody("The root of path must be metadata, e.g /metadata/key.")
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// pyStr renders a JSON scalar roughly as Python's str() would, for error
// texts.
func pyStr(raw json.RawMessage) string {
	if s, ok := String(raw); ok {
		return s
	}
	switch Kind(raw) {
	case 't':
		return "True"
	case 'f':
		return "False"
	case 'n':
		return "None"
	}
	return strings.TrimSpace(string(raw))
}

// decodePointer checks and splits a JSON pointer as Zaqar's validator does
// (only a limited form of pointers is accepted).
func decodePointer(p string) ([]string, error) {
	switch {
	case !strings.HasPrefix(p, "/"):
		return nil, badBody(fmt.Sprintf("Pointer `%s` does not start with \"/\".", p))
	case adjacentSlash(p[1:]):
		return nil, badBody(fmt.Sprintf("Pointer `%s` contains adjacent \"/\".", p))
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return nil, badBody(fmt.Sprintf("Pointer `%s` end with \"/\".", p))
	case strings.TrimSpace(p[1:]) == "/":
		return nil, badBody(fmt.Sprintf("Pointer `%s` does not contains valid token.", p))
	case badTilde(p):
		return nil, badBody(fmt.Sprintf("Pointer `%s` contains \"~\" not part of a recognized escape sequence.", p))
	}
	parts := strings.Split(strings.TrimLeft(p, "/"), "/")
	for i, s := range parts {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		parts[i] = strings.TrimSpace(s)
	}
	return parts, nil
}

// adjacentSlash is Python's re.search(r'/\s*?/', s).
func adjacentSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '/' {
			continue
		}
		j := i + 1
		for j < len(s) && strings.ContainsRune(" \t\n\r\f\v", rune(s[j])) {
			j++
		}
		if j < len(s) && s[j] == '/' {
			return true
		}
	}
	return false
}

// badTilde is re.search(r'~[^01]', p) or p ending in "~".
func badTilde(p string) bool {
	if strings.HasSuffix(p, "~") {
		return true
	}
	for i := 0; i+1 < len(p); i++ {
		if p[i] == '~' && p[i+1] != '0' && p[i+1] != '1' {
			return true
		}
	}
	return false
}

// PurgeRequest says what a purge removes.
type PurgeRequest struct {
	ResourceTypes []string
}

// PurgeTypes are the resource types a purge accepts.
var PurgeTypes = []string{"messages", "subscriptions"}

// DecodePurge decodes {"resource_types": [...]}; an empty body purges both.
func DecodePurge(data []byte) (PurgeRequest, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return PurgeRequest{ResourceTypes: append([]string(nil), PurgeTypes...)}, nil
	}
	if !validJSON(data) {
		return PurgeRequest{}, badBody(DescMalformed)
	}
	obj, err := parseObject(data)
	if err != nil {
		return PurgeRequest{}, badBody(DescDocType)
	}
	raw, ok := obj.Get("resource_types")
	if !ok {
		return PurgeRequest{}, badAPI(`Post body must contain key "resource_types".`)
	}
	invalid := badAPI("Resource types must be a sub set of {'messages', 'subscriptions'}.")
	items, ok := parseArray(raw)
	if !ok {
		return PurgeRequest{}, invalid
	}
	var p PurgeRequest
	for _, it := range items {
		s, ok := String(it)
		if !ok || (s != "messages" && s != "subscriptions") {
			return PurgeRequest{}, invalid
		}
		p.ResourceTypes = append(p.ResourceTypes, s)
	}
	return p, nil
}

// ShareRequest is the body of POST /v2/queues/{q}/share.
type ShareRequest struct {
	Paths   []string // relative: messages, subscriptions, claims
	Methods []string
	// Expires is the raw JSON value, nil when absent; the server parses it
	// (its checks need the clock).
	Expires json.RawMessage
}

// SharePaths are the resources a signed URL may grant.
var SharePaths = []string{"claims", "messages", "subscriptions"}

// DecodeShare decodes a share body; unknown keys and paths are errors, as
// in Zaqar. An empty body is taken as {}.
func DecodeShare(data []byte) (ShareRequest, error) {
	var s ShareRequest
	if len(strings.TrimSpace(string(data))) == 0 {
		return s, nil
	}
	if !validJSON(data) {
		return s, badBody(DescMalformed)
	}
	obj, err := parseObject(data)
	if err != nil {
		return s, badBody(DescDocType)
	}
	var unknown []string
	for _, m := range obj {
		switch m.Key {
		case "paths", "methods", "expires":
		default:
			unknown = append(unknown, m.Key)
		}
	}
	if len(unknown) > 0 {
		return s, badAPI("Unknown keys: " + pySet(unknown))
	}
	if raw, ok := obj.Get("paths"); ok && Truthy(raw) {
		items, ok := parseArray(raw)
		if !ok {
			return s, badAPI("`paths` must be a non-empty list")
		}
		var bad []string
		for _, it := range items {
			p, ok := String(it)
			if !ok || !slices.Contains(SharePaths, p) {
				bad = append(bad, pyStr(it))
				continue
			}
			s.Paths = append(s.Paths, p)
		}
		if len(bad) > 0 {
			return s, badAPI("Invalid paths: " + pySet(bad))
		}
	}
	if raw, ok := obj.Get("methods"); ok && Kind(raw) != 'n' {
		items, ok := parseArray(raw)
		if !ok {
			return s, badAPI("`methods` should be a list")
		}
		for _, it := range items {
			m, ok := String(it)
			if !ok {
				return s, badAPI("`methods` should be a list of strings")
			}
			s.Methods = append(s.Methods, m)
		}
	}
	if raw, ok := obj.Get("expires"); ok && Kind(raw) != 'n' {
		s.Expires = raw
	}
	return s, nil
}

// pySet renders strings as a Python set literal, sorted so the text is
// stable (Python's own order is not).
func pySet(items []string) string {
	items = append([]string(nil), items...)
	sort.Strings(items)
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = PyRepr(s)
	}
	return "{" + strings.Join(q, ", ") + "}"
}

// PyRepr renders s as Python's repr() of a str does, near enough for error
// texts.
func PyRepr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(quote):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x` + strconv.FormatInt(int64(r)|0x100, 16)[1:])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// PyList renders strings as a Python list literal.
func PyList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = PyRepr(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
