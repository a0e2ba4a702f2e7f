package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// registryEntry is one entry of an IANA special-purpose address registry
// (or, marked as policy, a range this service refuses besides them).
type registryEntry struct {
	prefix string
	name   string
}

// ianaIPv4Special is the IANA IPv4 Special-Purpose Address Registry, every
// entry, plus multicast, which is in the multicast registry.
var ianaIPv4Special = []registryEntry{
	{"0.0.0.0/8", "this network"},
	{"0.0.0.0/32", "this host on this network"},
	{"10.0.0.0/8", "private use"},
	{"100.64.0.0/10", "shared address space (CGNAT)"},
	{"127.0.0.0/8", "loopback"},
	{"169.254.0.0/16", "link local"},
	{"172.16.0.0/12", "private use"},
	{"192.0.0.0/24", "IETF protocol assignments"},
	{"192.0.0.0/29", "IPv4 service continuity prefix"},
	{"192.0.0.8/32", "IPv4 dummy address"},
	{"192.0.0.9/32", "port control protocol anycast"},
	{"192.0.0.10/32", "TURN anycast"},
	{"192.0.0.170/32", "NAT64/DNS64 discovery"},
	{"192.0.0.171/32", "NAT64/DNS64 discovery"},
	{"192.0.2.0/24", "documentation (TEST-NET-1)"},
	{"192.31.196.0/24", "AS112-v4"},
	{"192.52.193.0/24", "AMT"},
	{"192.88.99.0/24", "deprecated 6to4 relay anycast"},
	{"192.168.0.0/16", "private use"},
	{"192.175.48.0/24", "direct delegation AS112 service"},
	{"198.18.0.0/15", "benchmarking"},
	{"198.51.100.0/24", "documentation (TEST-NET-2)"},
	{"203.0.113.0/24", "documentation (TEST-NET-3)"},
	{"240.0.0.0/4", "reserved"},
	{"255.255.255.255/32", "limited broadcast"},
	{"224.0.0.0/4", "multicast (policy)"},
}

// ianaIPv6Special is the IANA IPv6 Special-Purpose Address Registry, every
// entry but ::ffff:0:0/96 (IPv4-mapped addresses are judged by the IPv4
// address they carry, below), plus the ranges outside global unicast that
// this service refuses as policy.
var ianaIPv6Special = []registryEntry{
	{"::1/128", "loopback"},
	{"::/128", "unspecified"},
	{"64:ff9b::/96", "IPv4-IPv6 translation (NAT64)"},
	{"64:ff9b:1::/48", "local-use IPv4-IPv6 translation"},
	{"100::/64", "discard-only"},
	{"2001::/23", "IETF protocol assignments"},
	{"2001::/32", "TEREDO"},
	{"2001:1::1/128", "port control protocol anycast"},
	{"2001:1::2/128", "TURN anycast"},
	{"2001:1::3/128", "DNS-SD service registration protocol anycast"},
	{"2001:2::/48", "benchmarking"},
	{"2001:3::/32", "AMT"},
	{"2001:4:112::/48", "AS112-v6"},
	{"2001:10::/28", "deprecated ORCHID"},
	{"2001:20::/28", "ORCHIDv2"},
	{"2001:30::/28", "drone remote ID entity tags"},
	{"2001:db8::/32", "documentation"},
	{"2002::/16", "6to4"},
	{"2620:4f:8000::/48", "direct delegation AS112 service"},
	{"3fff::/20", "documentation"},
	{"5f00::/16", "segment routing (SRv6) SIDs"},
	{"fc00::/7", "unique local"},
	{"fe80::/10", "link-local unicast"},
	{"::/8", "reserved by IETF, with IPv4-compatible ::/96 (policy)"},
	{"fec0::/10", "deprecated site-local (policy)"},
	{"ff00::/8", "multicast (policy)"},
	{"4000::/2", "unassigned, outside global unicast (policy)"},
}

// publicSamples are addresses a webhook may reach: ordinary public ones and
// the first addresses either side of the special ranges.
var publicSamples = []string{
	"1.1.1.1", "8.8.8.8", "1.0.0.0", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
	"126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
	"191.255.255.255", "192.0.1.0", "192.0.3.0", "192.31.195.255", "192.31.197.0", "192.52.192.255",
	"192.52.194.0", "192.88.98.255", "192.88.100.0", "192.167.255.255", "192.169.0.0", "192.175.47.255",
	"192.175.49.0", "198.17.255.255", "198.20.0.0", "198.51.99.255", "198.51.101.0", "203.0.112.255",
	"203.0.114.0", "223.255.255.255",
	"::ffff:8.8.8.8", "::ffff:1.1.1.1",
	"2606:4700:4700::1111", "2001:4860:4860::8888", "2000::1", "2001:200::", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
	"2001:db9::", "2001:ffff::1", "2003::1", "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::",
	"3ffe::1", "3fff:1000::", "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestAddressPolicyRefusesEveryRegistryEntryAndAllowsPublicAddresses(t *testing.T) {
	type sample struct {
		name    string
		ip      netip.Addr
		allowed bool
	}
	var samples []sample
	for _, list := range [][]registryEntry{ianaIPv4Special, ianaIPv6Special} {
		for _, e := range list {
			p := netip.MustParsePrefix(e.prefix)
			first, last := p.Masked().Addr(), lastAddr(p)
			samples = append(samples,
				sample{fmt.Sprintf("the first address of %s (%s) is refused", e.prefix, e.name), first, false},
				sample{fmt.Sprintf("the last address of %s (%s) is refused", e.prefix, e.name), last, false})
			if first.Is4() {
				mapped := netip.AddrFrom16(first.As16())
				samples = append(samples, sample{
					fmt.Sprintf("IPv4-mapped %s (%s) is refused", mapped, e.name), mapped, false})
			}
		}
	}
	for _, s := range publicSamples {
		samples = append(samples, sample{"public " + s + " is allowed", netip.MustParseAddr(s), true})
	}
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			if got := addressAllowed(s.ip); got != s.allowed {
				t.Fatalf("addressAllowed(%s) = %v, want %v", s.ip, got, s.allowed)
			}
		})
	}
}

func TestWebhookToIPv4CompatibleLoopbackIsNeverDialled(t *testing.T) {
	// A listener on 127.0.0.1: had the dialer reached ::127.0.0.1 through it
	// (or anything else), the error would not be the policy's.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name, url, want string
	}{
		{"IPv4-compatible loopback ::127.0.0.1 is refused before dialling",
			fmt.Sprintf("http://[::127.0.0.1]:%d/hook", port), "Webhook address not allowed: ::7f00:1"},
		{"NAT64 of loopback 64:ff9b::127.0.0.1 is refused before dialling",
			fmt.Sprintf("http://[64:ff9b::127.0.0.1]:%d/hook", port), "Webhook address not allowed: 64:ff9b::7f00:1"},
		{"documentation 3fff::1 is refused before dialling",
			fmt.Sprintf("http://[3fff::1]:%d/hook", port), "Webhook address not allowed: 3fff::1"},
	}
	d := newDeliverer(2e9, false, "test")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := d.deliver(context.Background(), c.url, "msg_1", nil, []byte(`{}`))
			if res.Err != c.want || !res.Final {
				t.Fatalf("deliver = %+v, want the final error %q", res, c.want)
			}
		})
	}
}

func TestSubmittedWebhookURLWithASpecialLiteralIsRefused(t *testing.T) {
	cases := []struct{ name, url string }{
		{"IPv4-compatible loopback", "http://[::127.0.0.1]/hook"},
		{"IPv4-compatible private address", "http://[::10.0.0.1]/hook"},
		{"NAT64 of a private address", "http://[64:ff9b::10.0.0.1]/hook"},
		{"documentation 198.51.100.7", "http://198.51.100.7/hook"},
		{"benchmarking 2001:2::1", "http://[2001:2::1]/hook"},
		{"SRv6 SID 5f00::1", "http://[5f00::1]/hook"},
	}
	for _, c := range cases {
		t.Run("a webhook_url on "+c.name+" is refused at submit", func(t *testing.T) {
			err := checkWebhookURL(c.url, false)
			if err == nil || !strings.HasPrefix(err.Error(), "webhook_url address not allowed: ") {
				t.Fatalf("checkWebhookURL(%q) = %v, want webhook_url address not allowed", c.url, err)
			}
			if err := checkWebhookURL(c.url, true); err != nil {
				t.Fatalf("with private webhooks allowed, checkWebhookURL(%q) = %v, want accepted", c.url, err)
			}
		})
	}
}
