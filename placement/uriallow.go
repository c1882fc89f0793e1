package placement

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// The admin API has no authentication yet, and a pool's URI makes the
// server create folders (file://) or open connections (swift+http://,
// s3+http://) wherever it names. Options.URIAllow bounds that: a pool added
// or changed through the admin API must have a URI under one of its
// prefixes.

// AllowAnyURI in Options.URIAllow lets the admin API name any store.
const AllowAnyURI = "*"

// uriAllowed reports whether uri is under one of the prefixes. Schemes
// and hosts must be equal (hosts case-insensitively); paths are compared
// cleaned and by whole segments, so that "file:///srv/a" covers
// "file:///srv/a/b" but not "file:///srv/ab" nor "file:///srv/a/../etc".
func uriAllowed(uri string, prefixes []string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	for _, p := range prefixes {
		if p == AllowAnyURI {
			return true
		}
		pu, err := url.Parse(p)
		if err != nil {
			continue
		}
		if !strings.EqualFold(u.Scheme, pu.Scheme) || !strings.EqualFold(u.Host, pu.Host) || u.User.String() != pu.User.String() {
			continue
		}
		if (u.Opaque == "") != (pu.Opaque == "") {
			continue
		}
		if underPath(u.Path+u.Opaque, pu.Path+pu.Opaque) {
			return true
		}
	}
	return false
}

// underPath reports whether p is dir or under it, both cleaned.
func underPath(p, dir string) bool {
	if dir == "" || dir == "/" {
		return true
	}
	p, dir = path.Clean("/"+p), path.Clean("/"+dir)
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// checkURI refuses a URI outside the allow-list, saying how to allow it.
func (r *Router) checkURI(uri string) error {
	if uriAllowed(uri, r.opts.URIAllow) {
		return nil
	}
	return fmt.Errorf("%w: uri %q is not under any prefix of pool_uri_allow in the server's configuration (%s)",
		ErrInvalid, uri, strings.Join(r.opts.URIAllow, ", "))
}

// URIAllow returns the allow-list of pool URI prefixes in force.
func (r *Router) URIAllow() []string { return r.opts.URIAllow }
