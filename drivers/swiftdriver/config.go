package swiftdriver

import (
	"net/url"
	"strings"
	"time"

	"github.com/cistern-mq/cistern/drivers"
)

// DefaultTimeout bounds one driver call when Config.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// MaxPrefixLen keeps ContainerPrefix + the longest Cistern container name
// within Swift's default container name limit (256 bytes).
const MaxPrefixLen = 256 - drivers.MaxContainerLen

// Config says how to reach one Swift account. Either AuthURL with User and
// Key (tempauth v1 or Keystone v2/v3), or StorageURL with a pre-issued
// AuthToken.
type Config struct {
	// AuthURL is the identity endpoint: tempauth ".../auth/v1.0" or
	// Keystone ".../v2.0" or ".../v3".
	AuthURL string
	// User and Key are the credentials: "account:user" and its key for
	// tempauth, the user name and password for Keystone.
	User string
	Key  string

	// Keystone only.
	UserDomain    string // v3: the user's domain name
	Project       string // the v2 tenant or v3 project name
	ProjectDomain string // v3: the project's domain when it differs from UserDomain
	Region        string // the region whose endpoint to use; "" takes the first
	EndpointType  string // "public" (default), "internal" or "admin"
	// AuthVersion is 1, 2 or 3; 0 guesses it from AuthURL ("v1", "v2", "v3").
	AuthVersion int

	// StorageURL, with AuthURL, replaces the storage URL that
	// authentication returns (after every re-authentication too). Without
	// AuthURL it is the account URL used with AuthToken.
	StorageURL string
	// AuthToken is a pre-issued token, used only without AuthURL. When it
	// expires every call fails with ErrUnavailable: there is nothing to
	// re-authenticate with.
	AuthToken string

	// ContainerPrefix is prepended to each Cistern container name to form
	// the Swift container name, so that several deployments (or tests) can
	// share one account. At most MaxPrefixLen bytes of [A-Za-z0-9._-].
	ContainerPrefix string

	// Timeout bounds one driver call, body included (a Get of a large
	// object, a bulk delete). 0 means DefaultTimeout.
	Timeout time.Duration
}

// Validate checks c and fills in defaults.
func (c *Config) Validate() error {
	if c.Timeout < 0 {
		return drivers.Errorf(drivers.ErrInvalid, "swift config: negative Timeout %v", c.Timeout)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.AuthVersion < 0 || c.AuthVersion > 3 {
		return drivers.Errorf(drivers.ErrInvalid, "swift config: AuthVersion %d: want 0 (auto), 1, 2 or 3", c.AuthVersion)
	}
	switch c.EndpointType {
	case "", "public", "internal", "admin":
	default:
		return drivers.Errorf(drivers.ErrInvalid, "swift config: EndpointType %q: want public, internal or admin", c.EndpointType)
	}
	switch {
	case c.AuthURL != "":
		if err := checkURL("AuthURL", c.AuthURL); err != nil {
			return err
		}
		if c.User == "" || c.Key == "" {
			return drivers.Errorf(drivers.ErrInvalid, "swift config: AuthURL needs User and Key")
		}
		if c.AuthToken != "" {
			return drivers.Errorf(drivers.ErrInvalid, "swift config: AuthToken is used only without AuthURL")
		}
		if c.AuthVersion == 0 && !strings.Contains(c.AuthURL, "v1") && !strings.Contains(c.AuthURL, "v2") && !strings.Contains(c.AuthURL, "v3") {
			return drivers.Errorf(drivers.ErrInvalid, "swift config: cannot tell the auth version from AuthURL %q; set AuthVersion", c.AuthURL)
		}
	case c.StorageURL != "" && c.AuthToken != "":
	default:
		return drivers.Errorf(drivers.ErrInvalid, "swift config: want AuthURL, User and Key, or StorageURL and AuthToken")
	}
	if c.StorageURL != "" {
		if err := checkURL("StorageURL", c.StorageURL); err != nil {
			return err
		}
	}
	if len(c.ContainerPrefix) > MaxPrefixLen {
		return drivers.Errorf(drivers.ErrInvalid, "swift config: ContainerPrefix of %d bytes: at most %d", len(c.ContainerPrefix), MaxPrefixLen)
	}
	for i := 0; i < len(c.ContainerPrefix); i++ {
		b := c.ContainerPrefix[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return drivers.Errorf(drivers.ErrInvalid, "swift config: ContainerPrefix %q: byte %q is not one of [A-Za-z0-9._-]", c.ContainerPrefix, b)
		}
	}
	return nil
}

func checkURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return drivers.Errorf(drivers.ErrInvalid, "swift config: %s %q: want an http or https URL", field, s)
	}
	return nil
}
