package main

import (
	"net/netip"

	"code.dny.dev/ssrf"
)

// addressPolicy decides which addresses a webhook may reach (unless -dev or
// -allow-private-webhooks). It is code.dny.dev/ssrf's Guardian with its
// port and network checks off: we judge the address only.
//
// Why a library and not our own list of ranges: the policy must cover the
// whole IANA special-purpose registries for IPv4 and IPv6, and that is a
// list that changes (3fff::/20 and 5f00::/16 were added in 2024). The hand-written list it replaces had a gap: ::127.0.0.1
// (IPv4-compatible, in the reserved ::/8) was dialled, because it named a
// few ranges on top of netip's predicates instead of allowing only what is
// routable. The library is generated from the registries themselves, small
// (one file we have read, MIT, no dependencies), and allows an IPv6 address
// only inside global unicast 2000::/3, minus the registry's entries there,
// so every IPv6 range reserved now or later outside 2000::/3 (::/8, NAT64,
// ULA, link-local, site-local, multicast, SRv6 SIDs) is refused without
// being listed. addrpolicy_test.go checks it against the registries'
// entries, so a library update that loosens it fails the tests.
var addressPolicy = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAnyNetwork())

// addressAllowed reports whether a webhook may be sent to ip. An
// IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
func addressAllowed(ip netip.Addr) bool {
	return addressPolicy.SafeAddr(ip.Unmap()) == nil
}

// addressNotAllowedError is returned by the dialer for a destination the
// address policy refuses.
type addressNotAllowedError struct{ ip netip.Addr }

// Error implements error.
func (e *addressNotAllowedError) Error() string {
	return "Webhook address not allowed: " + e.ip.String()
}
