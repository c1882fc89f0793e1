package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"
)

// Keystone token validation, as keystonemiddleware's auth_token does it for
// Zaqar: the service user's own token asks Keystone v3
// (GET /v3/auth/tokens with X-Subject-Token) about each client token, and
// the answer is cached. A cached answer is trusted until the token expires
// or CacheTTL has passed since Keystone gave it, whichever comes first, so
// a token revoked in Keystone is refused at most CacheTTL later. Tokens
// Keystone does not know are remembered for NegativeTTL. When Keystone
// cannot be asked, tokens not in the cache are refused as unavailable,
// never let through.

// Sentinel errors of Keystone.Validate.
var (
	// ErrTokenInvalid: Keystone does not know the token, or it has
	// expired or been revoked.
	ErrTokenInvalid = errors.New("keystone: token invalid, expired or revoked")
	// ErrTokenUnscoped: the token is valid but not scoped to a project.
	ErrTokenUnscoped = errors.New("keystone: token not scoped to a project")
	// ErrKeystoneUnavailable: Keystone could not be asked (down, slow,
	// answering 5xx, or refusing the service credentials).
	ErrKeystoneUnavailable = errors.New("keystone: unavailable")
)

// Defaults of KeystoneOptions.
const (
	DefaultKeystoneCacheSize   = 10000
	DefaultKeystoneCacheTTL    = 5 * time.Minute // keystonemiddleware's token_cache_time
	DefaultKeystoneNegativeTTL = 10 * time.Second
	DefaultKeystoneTimeout     = 5 * time.Second
	DefaultKeystoneAdminRole   = "admin"
	// maxTokenLength bounds what is sent to Keystone: fernet tokens are
	// about 200 bytes, and no Keystone token format comes near 8 KiB.
	maxTokenLength = 8192
	// serviceTokenMargin renews the service user's token this long before
	// it expires, so a validation never races its expiry.
	serviceTokenMargin = time.Minute
)

// KeystoneOptions configure token validation against Keystone v3.
type KeystoneOptions struct {
	// URL is the identity v3 endpoint, e.g. "http://keystone:5000/v3".
	URL string
	// The service user tokens are validated as; it needs Keystone's
	// `service` (or `admin`) role. Either Username and Password, or an
	// application credential.
	Username      string
	Password      string
	UserDomain    string // default "Default"
	Project       string
	ProjectDomain string // default "Default"
	// AppCredentialID and AppCredentialSecret authenticate the service
	// user with an application credential instead of a password.
	AppCredentialID     string
	AppCredentialSecret string
	// AdminRole is the role that may use the admin API on the public
	// listener (default "admin").
	AdminRole string
	// WWWAuthenticateURI goes into WWW-Authenticate: Keystone uri="..."
	// of a 401 (default URL).
	WWWAuthenticateURI string
	// CacheSize bounds the validated tokens kept (default 10000); the
	// negative cache holds a tenth of it.
	CacheSize int
	// CacheTTL bounds how long a validated token is trusted without asking
	// Keystone again (default 5 min): a revoked token is refused at most
	// this long after its revocation.
	CacheTTL time.Duration
	// NegativeTTL is how long a token Keystone refused is refused without
	// asking again (default 10 s).
	NegativeTTL time.Duration
	// Timeout bounds each request to Keystone (default 5 s).
	Timeout time.Duration
	// HTTPClient talks to Keystone; nil is a client with Timeout.
	HTTPClient *http.Client
	// Clock tells the time for expiries; nil is time.Now.
	Clock  func() time.Time
	Logger zerolog.Logger
}

// Validate checks the options.
func (o KeystoneOptions) Validate() error {
	switch {
	case o.URL == "":
		return errors.New("keystone: URL is required")
	case !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://"):
		return fmt.Errorf("keystone: URL %q is not http(s)", o.URL)
	case o.AppCredentialID != "" && o.AppCredentialSecret == "":
		return errors.New("keystone: an application credential needs its secret")
	case o.AppCredentialID == "" && (o.Username == "" || o.Password == "" || o.Project == ""):
		return errors.New("keystone: the service user needs a username, password and project (or an application credential)")
	case o.CacheSize < 0, o.CacheTTL < 0, o.NegativeTTL < 0, o.Timeout < 0:
		return errors.New("keystone: cache sizes, TTLs and timeouts must not be negative")
	}
	return nil
}

func (o KeystoneOptions) withDefaults() KeystoneOptions {
	o.URL = strings.TrimRight(o.URL, "/")
	if o.UserDomain == "" {
		o.UserDomain = "Default"
	}
	if o.ProjectDomain == "" {
		o.ProjectDomain = "Default"
	}
	if o.AdminRole == "" {
		o.AdminRole = DefaultKeystoneAdminRole
	}
	if o.WWWAuthenticateURI == "" {
		o.WWWAuthenticateURI = o.URL
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultKeystoneCacheSize
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultKeystoneCacheTTL
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = DefaultKeystoneNegativeTTL
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultKeystoneTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// Identity is what a validated token says about its holder.
type Identity struct {
	UserID      string
	UserName    string
	ProjectID   string
	ProjectName string
	Roles       []string
	Expires     time.Time
}

// HasRole reports whether the token carries role (case-insensitively, as
// oslo.policy compares role names).
func (id Identity) HasRole(role string) bool {
	for _, r := range id.Roles {
		if strings.EqualFold(r, role) {
			return true
		}
	}
	return false
}

// tokenKey is a token's cache key: its SHA-256, so the cache holds no
// usable tokens.
type tokenKey [sha256.Size]byte

type cachedIdentity struct {
	id    Identity
	until time.Time // min(token expiry, validation time + CacheTTL)
}

// flight is one validation in progress; concurrent requests with the same
// token wait for it instead of asking Keystone again.
type flight struct {
	done chan struct{}
	id   Identity
	err  error
}

// Keystone validates tokens against Keystone v3. It is safe for concurrent
// use and starts no goroutines.
type Keystone struct {
	o   KeystoneOptions
	pos *lru.Cache[tokenKey, cachedIdentity]
	neg *lru.Cache[tokenKey, time.Time] // refused until

	mu       sync.Mutex
	inflight map[tokenKey]*flight

	svcMu      sync.Mutex // held while the service token is fetched
	svcToken   string
	svcExpires time.Time

	// calls counts requests sent to Keystone (validations and service
	// authentications), for metrics and tests.
	calls atomic.Int64
}

// NewKeystone checks o and builds a Keystone validator. It does not contact
// Keystone: the service token is fetched on first use.
func NewKeystone(o KeystoneOptions) (*Keystone, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	pos, err := lru.New[tokenKey, cachedIdentity](o.CacheSize)
	if err != nil {
		return nil, err
	}
	neg, err := lru.New[tokenKey, time.Time](max(o.CacheSize/10, 1))
	if err != nil {
		return nil, err
	}
	return &Keystone{o: o, pos: pos, neg: neg, inflight: map[tokenKey]*flight{}}, nil
}

// Requests returns how many requests were sent to Keystone so far.
func (k *Keystone) Requests() int64 { return k.calls.Load() }

// AdminRole is the role that may use the admin API.
func (k *Keystone) AdminRole() string { return k.o.AdminRole }

// Validate returns the identity of token, from the cache or from Keystone.
// Errors: ErrTokenInvalid, ErrTokenUnscoped, ErrKeystoneUnavailable, or the
// context's error.
func (k *Keystone) Validate(ctx context.Context, token string) (Identity, error) {
	if token == "" || len(token) > maxTokenLength || !printable(token) {
		return Identity{}, ErrTokenInvalid
	}
	key := tokenKey(sha256.Sum256([]byte(token)))
	now := k.o.Clock()
	if c, ok := k.pos.Get(key); ok {
		if now.Before(c.until) {
			return c.id, nil
		}
		k.pos.Remove(key)
	}
	if until, ok := k.neg.Get(key); ok {
		if now.Before(until) {
			return Identity{}, ErrTokenInvalid
		}
		k.neg.Remove(key)
	}

	k.mu.Lock()
	f, ok := k.inflight[key]
	if !ok {
		f = &flight{done: make(chan struct{})}
		k.inflight[key] = f
	}
	k.mu.Unlock()
	if ok {
		select {
		case <-f.done:
			return f.id, f.err
		case <-ctx.Done():
			return Identity{}, ctx.Err()
		}
	}
	// The flight's outcome is shared with waiters whose contexts may
	// outlive ours: ask Keystone under Timeout, not under the caller's
	// context alone.
	f.id, f.err = k.fetch(context.WithoutCancel(ctx), token)
	k.remember(key, f.id, f.err)
	k.mu.Lock()
	delete(k.inflight, key)
	k.mu.Unlock()
	close(f.done)
	return f.id, f.err
}

// remember caches the outcome of a validation.
func (k *Keystone) remember(key tokenKey, id Identity, err error) {
	now := k.o.Clock()
	switch {
	case err == nil:
		until := now.Add(k.o.CacheTTL)
		if id.Expires.Before(until) {
			until = id.Expires
		}
		k.pos.Add(key, cachedIdentity{id: id, until: until})
	case errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrTokenUnscoped):
		k.neg.Add(key, now.Add(k.o.NegativeTTL))
	}
}

// fetch asks Keystone about token, renewing the service token once if
// Keystone refuses it.
func (k *Keystone) fetch(ctx context.Context, token string) (Identity, error) {
	for attempt := 0; ; attempt++ {
		svc, err := k.serviceToken(ctx, attempt > 0)
		if err != nil {
			return Identity{}, err
		}
		status, body, err := k.call(ctx, http.MethodGet, "/auth/tokens?nocatalog", nil,
			map[string]string{"X-Auth-Token": svc, "X-Subject-Token": token})
		if err != nil {
			return Identity{}, err
		}
		switch {
		case status == http.StatusOK:
			return k.identity(body)
		case status == http.StatusNotFound:
			return Identity{}, ErrTokenInvalid
		case status == http.StatusUnauthorized && attempt == 0:
			continue // our own token expired or was revoked: get a new one
		case status == http.StatusUnauthorized, status == http.StatusForbidden:
			k.o.Logger.Error().Int("status", status).Str("user", k.o.Username).
				Msg("keystone refuses the service user's token validation: check its credentials and its `service` role")
			return Identity{}, fmt.Errorf("%w: token validation answered %d", ErrKeystoneUnavailable, status)
		default:
			return Identity{}, fmt.Errorf("%w: token validation answered %d", ErrKeystoneUnavailable, status)
		}
	}
}

// tokenBody is the part of Keystone's token document Cistern reads.
type tokenBody struct {
	Token struct {
		ExpiresAt string `json:"expires_at"`
		User      struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		Project *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"project"`
		Roles []struct {
			Name string `json:"name"`
		} `json:"roles"`
	} `json:"token"`
}

// identity reads a token document, refusing one already expired by our
// clock (Keystone's and ours may differ).
func (k *Keystone) identity(body []byte) (Identity, error) {
	var tb tokenBody
	if err := json.Unmarshal(body, &tb); err != nil {
		return Identity{}, fmt.Errorf("%w: token document: %v", ErrKeystoneUnavailable, err)
	}
	exp, err := time.Parse(time.RFC3339Nano, tb.Token.ExpiresAt)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: token expires_at %q: %v", ErrKeystoneUnavailable, tb.Token.ExpiresAt, err)
	}
	if !k.o.Clock().Before(exp) {
		return Identity{}, ErrTokenInvalid
	}
	if tb.Token.Project == nil || tb.Token.Project.ID == "" {
		return Identity{}, ErrTokenUnscoped
	}
	id := Identity{UserID: tb.Token.User.ID, UserName: tb.Token.User.Name,
		ProjectID: tb.Token.Project.ID, ProjectName: tb.Token.Project.Name, Expires: exp}
	for _, r := range tb.Token.Roles {
		id.Roles = append(id.Roles, r.Name)
	}
	return id, nil
}

// serviceToken returns the service user's token, authenticating when there
// is none, it is about to expire, or renew is set.
func (k *Keystone) serviceToken(ctx context.Context, renew bool) (string, error) {
	k.svcMu.Lock()
	defer k.svcMu.Unlock()
	if !renew && k.svcToken != "" && k.o.Clock().Add(serviceTokenMargin).Before(k.svcExpires) {
		return k.svcToken, nil
	}
	k.svcToken = ""
	status, body, hdr, err := k.callHeader(ctx, http.MethodPost, "/auth/tokens?nocatalog", k.authRequest(), nil)
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		k.o.Logger.Error().Int("status", status).Str("user", k.o.Username).Msg("keystone refuses the service user's credentials")
		return "", fmt.Errorf("%w: service user authentication answered %d", ErrKeystoneUnavailable, status)
	}
	var tb tokenBody
	if err := json.Unmarshal(body, &tb); err != nil {
		return "", fmt.Errorf("%w: service token document: %v", ErrKeystoneUnavailable, err)
	}
	exp, err := time.Parse(time.RFC3339Nano, tb.Token.ExpiresAt)
	tok := hdr.Get("X-Subject-Token")
	if err != nil || tok == "" {
		return "", fmt.Errorf("%w: service token without X-Subject-Token or expires_at", ErrKeystoneUnavailable)
	}
	k.svcToken, k.svcExpires = tok, exp
	return tok, nil
}

// authRequest is the POST /v3/auth/tokens body of the service user.
func (k *Keystone) authRequest() []byte {
	type named struct {
		Name   string `json:"name"`
		Domain any    `json:"domain"`
	}
	var auth map[string]any
	if k.o.AppCredentialID != "" {
		auth = map[string]any{"identity": map[string]any{
			"methods":                []string{"application_credential"},
			"application_credential": map[string]string{"id": k.o.AppCredentialID, "secret": k.o.AppCredentialSecret},
		}}
	} else {
		auth = map[string]any{
			"identity": map[string]any{
				"methods": []string{"password"},
				"password": map[string]any{"user": map[string]any{
					"name": k.o.Username, "password": k.o.Password,
					"domain": map[string]string{"name": k.o.UserDomain}}},
			},
			"scope": map[string]any{"project": named{Name: k.o.Project, Domain: map[string]string{"name": k.o.ProjectDomain}}},
		}
	}
	b, _ := json.Marshal(map[string]any{"auth": auth})
	return b
}

func (k *Keystone) call(ctx context.Context, method, path string, body []byte, h map[string]string) (int, []byte, error) {
	status, data, _, err := k.callHeader(ctx, method, path, body, h)
	return status, data, err
}

// callHeader sends one request to Keystone under Timeout; a transport
// failure is ErrKeystoneUnavailable.
func (k *Keystone) callHeader(ctx context.Context, method, path string, body []byte, h map[string]string) (int, []byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.o.URL+path, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: %v", ErrKeystoneUnavailable, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for name, v := range h {
		req.Header.Set(name, v)
	}
	k.calls.Add(1)
	resp, err := k.o.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: %v", ErrKeystoneUnavailable, err)
	}
	defer resp.Body.Close()
	// A token document with a catalog is tens of KiB; 1 MiB bounds it.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: reading the answer: %v", ErrKeystoneUnavailable, err)
	}
	return resp.StatusCode, data, resp.Header, nil
}
