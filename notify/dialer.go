package notify

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrRefusedAddress: a webhook target resolved to an address the operator
// did not open (loopback, private, link-local and the like).
var ErrRefusedAddress = errors.New("webhook target address refused")

// ParseAllow reads a comma-separated list of CIDRs (or single addresses),
// the -subscriber-allow setting.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("subscriber allow list: %q: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("subscriber allow list: %q: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// sharedAddressSpace is RFC 6598's carrier-grade NAT range, internal too.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// internal reports whether a is an address a webhook must not reach
// unless opened: what a request from inside the service could use to
// reach the store, etcd or other internal services (SSRF).
func internal(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || sharedAddressSpace.Contains(a)
}

// checkAddr refuses an internal address that no allowed prefix holds.
func checkAddr(a netip.Addr, allow []netip.Prefix) error {
	a = a.Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return nil
		}
	}
	if internal(a) {
		return fmt.Errorf("%w: %s is internal (open it with -subscriber-allow)", ErrRefusedAddress, a)
	}
	return nil
}

// newDialer checks the address each connection is about to use, after
// name resolution: a URL's host name cannot smuggle an internal address
// past a check made on the URL alone.
func newDialer(allow []netip.Prefix, timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout: timeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %q: %v", ErrRefusedAddress, address, err)
			}
			return checkAddr(ap.Addr(), allow)
		},
	}
}
