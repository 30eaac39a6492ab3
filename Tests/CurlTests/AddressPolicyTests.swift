import Curl
import Testing

/// The CIDR matcher behind `push.ip_range_blacklist` / `push.ip_range_whitelist`.
@Suite struct AddressPolicyTests {
    private func ip(_ text: String) -> IPAddress { IPAddress(literal: text)! }
    private func range(_ text: String) -> IPRange { IPRange(text)! }

    @Test("IPv4 ranges include their first and last address and nothing either side")
    func ipv4Edges() {
        let r = range("172.16.0.0/12")
        #expect(r.contains(ip("172.16.0.0")))
        #expect(r.contains(ip("172.31.255.255")))
        #expect(!r.contains(ip("172.15.255.255")))
        #expect(!r.contains(ip("172.32.0.0")))
        #expect(range("0.0.0.0/0").contains(ip("255.255.255.255")))
        #expect(range("10.1.2.3/32").contains(ip("10.1.2.3")))
        #expect(!range("10.1.2.3/32").contains(ip("10.1.2.4")))
        #expect(range("10.1.2.3") == range("10.1.2.3/32"), "a bare address is a /32")
        #expect(range("10.9.9.9/8") == range("10.0.0.0/8"), "host bits are ignored, as netaddr does")
    }

    @Test("IPv6 ranges, across the 64-bit halves")
    func ipv6() {
        #expect(range("::1/128").contains(ip("::1")))
        #expect(!range("::1/128").contains(ip("::2")))
        #expect(range("fe80::/10").contains(ip("febf:ffff::1")))
        #expect(!range("fe80::/10").contains(ip("fec0::1")))
        #expect(range("2001:db8::/32").contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")))
        #expect(!range("2001:db8::/32").contains(ip("2001:db9::")))
        #expect(range("2001:db8:0:0:8000::/65").contains(ip("2001:db8::ffff:0:0:1")))
        #expect(!range("2001:db8:0:0:8000::/65").contains(ip("2001:db8::7fff:0:0:1")))
        #expect(range("::/0").contains(ip("ffff::1")))
        #expect(!range("fc00::/7").contains(ip("10.0.0.1")), "an IPv4 address is not in an IPv6 range unless mapped")
    }

    @Test("an IPv4-mapped IPv6 address is judged as its IPv4 address")
    func mapped() {
        #expect(ip("::ffff:127.0.0.1") == ip("127.0.0.1"))
        #expect(ip("[::ffff:7f00:1]") == .v4(0x7F00_0001))
        #expect(range("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")))
        #expect(range("::ffff:0:0/96").contains(ip("8.8.8.8")), "the mapped IPv6 range covers every IPv4 address")
        #expect(range("::ffff:10.0.0.0/104") == range("10.0.0.0/8"))
        #expect(!range("::1/128").contains(ip("::ffff:0.0.0.1")))
        #expect(AddressPolicy.default.permits(ip("::ffff:8.8.8.8")))
        #expect(!AddressPolicy.default.permits(ip("::ffff:169.254.169.254")))
    }

    @Test("the odd IPv4 spellings that libcurl and inet_aton accept are read as addresses")
    func oddIPv4Literals() {
        #expect(ip("2130706433") == ip("127.0.0.1"))
        #expect(ip("0x7f.1") == ip("127.0.0.1"))
        #expect(ip("127.1") == ip("127.0.0.1"))
        #expect(ip("0177.0.0.1") == ip("127.0.0.1"))
        #expect(ip("0x7F000001") == ip("127.0.0.1"))
        #expect(ip("[fe80::1%25eth0]") == ip("fe80::1"), "the zone is not part of the address")
        for name in ["localhost", "push.example.org", "deadbeef", "1.2.3.4.example.org", "127.0.0.1 x", "", "[]", "[::1"] {
            #expect(IPAddress(literal: name) == nil, "\(name) is a host name, not an address")
        }
        #expect(ip("203.0.113.7").description == "203.0.113.7")
        #expect(ip("2001:DB8::1").description == "2001:db8::1")
    }

    @Test("malformed ranges are refused")
    func malformed() {
        for text in ["", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.256/8", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0.0/-1",
                     "127.1/8", "0x7f.0.0.1", "localhost", "[::1]/128", "fe80::%eth0/10", "::ffff:0:0/95", "10.0.0.0/ 8",
                     "1.2.3.4.5", "gggg::/16"] {
            #expect(IPRange(text) == nil, "\(text)")
        }
        #expect(throws: AddressPolicy.MalformedRange.self) { try AddressPolicy.ranges("10.0.0.0/8, nonsense") }
        #expect(throws: AddressPolicy.MalformedRange.self) { try AddressPolicy.ranges("10.0.0.0/8,,::1") }
    }

    @Test("range lists: commas, spaces, YAML flow brackets and quotes; empty is none")
    func lists() throws {
        #expect(try AddressPolicy.ranges("") == [])
        #expect(try AddressPolicy.ranges("[]") == [])
        #expect(try AddressPolicy.ranges("127.0.0.0/8") == [range("127.0.0.0/8")])
        #expect(try AddressPolicy.ranges(" 10.0.0.0/8 , ::1 ") == [range("10.0.0.0/8"), range("::1/128")])
        #expect(try AddressPolicy.ranges(#"["127.0.0.0/8", '::1']"#) == [range("127.0.0.0/8"), range("::1")])
    }

    @Test("the default policy blocks Synapse's list and 0.0.0.0 / ::; the allowed ranges make exceptions")
    func defaults() {
        let policy = AddressPolicy.default
        for blocked in ["127.0.0.1", "10.1.2.3", "172.16.5.4", "192.168.1.1", "100.64.0.1", "192.0.0.8", "169.254.169.254",
                        "192.88.99.1", "198.18.0.1", "192.0.2.1", "198.51.100.1", "203.0.113.1", "224.0.0.1", "239.255.255.255",
                        "::1", "fe80::1", "fd00::1", "2001:db8::1", "ff02::1", "fec0::1", "0.0.0.0", "::"] {
            #expect(!policy.permits(ip(blocked)), "\(blocked)")
        }
        for open in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "240.0.0.1"] {
            #expect(policy.permits(ip(open)), "\(open)")
        }
        var allowing = policy
        allowing.allowed = [range("127.0.0.0/8")]
        #expect(allowing.permits(ip("127.0.0.1")))
        #expect(allowing.permits(ip("::ffff:127.0.0.1")))
        #expect(!allowing.permits(ip("::1")))
        #expect(!allowing.permits(ip("10.0.0.1")))
        #expect(AddressPolicy(blocked: []).permits(ip("10.0.0.1")))
        #expect(!AddressPolicy(blocked: []).permits(ip("0.0.0.0")), "0.0.0.0 reaches this host: always blocked")
    }
}
