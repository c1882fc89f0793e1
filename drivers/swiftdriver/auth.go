package swiftdriver

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ncw/swift/v2"
)

// fixedStorageURL keeps Config.StorageURL as the storage URL across
// re-authentications, whatever the service catalog says.
type fixedStorageURL struct {
	swift.Authenticator
	url string
}

func (a *fixedStorageURL) StorageUrl(bool) string { return a.url }

// Expires forwards the token expiry, so ncw/swift renews a Keystone token
// before it runs out.
func (a *fixedStorageURL) Expires() time.Time {
	if e, ok := a.Authenticator.(swift.Expireser); ok {
		return e.Expires()
	}
	return time.Time{}
}

// tokenOnly is the authenticator of a Config with an AuthToken and no
// AuthURL: once Swift refuses the token there is nothing to renew it with.
type tokenOnly struct{}

func (tokenOnly) Request(context.Context, *swift.Connection) (*http.Request, error) {
	return nil, fmt.Errorf("%w: Swift refused the configured AuthToken and no AuthURL is set to get a new one", errAuth)
}
func (tokenOnly) Response(context.Context, *http.Response) error { return nil }
func (tokenOnly) StorageUrl(bool) string                         { return "" }
func (tokenOnly) Token() string                                  { return "" }
func (tokenOnly) CdnUrl() string                                 { return "" }
