import NetworkPolicy
import Testing

@Suite struct OutboundPolicyTests {
    private func bytes(_ text: String) -> [UInt8] { IPAddress.bytes(of: text)! }

    @Test func networksParseAndContainTheirAddresses() throws {
        let network = try #require(IPNetwork("172.16.0.0/12"))
        #expect(network.contains(bytes("172.31.255.255")))
        #expect(!network.contains(bytes("172.32.0.1")))
        #expect(!network.contains(bytes("::1")))
        #expect(IPNetwork("10.1.2.3")?.prefixLength == 32)
        #expect(IPNetwork("fd00::/8")?.contains(bytes("fd12::1")) == true)
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("example.com/8") == nil)
        #expect(IPNetwork("10.0.0.0/x") == nil)
    }

    /// The addresses a hostile review aimed destinations at: every one is refused by default.
    @Test(arguments: ["169.254.169.254", "10.0.0.1", "::1", "127.0.0.1", "0.0.0.0", "100.64.0.1", "192.168.1.1", "172.20.0.1",
                      "fd00:ec2::254", "fe80::1", "224.0.0.1", "255.255.255.255", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1", "::"])
    func privateLoopbackAndMetadataAddressesAreRefused(address: String) {
        #expect(OutboundPolicy().refusal(for: bytes(address)) != nil)
    }

    @Test func publicAddressesPass() {
        for address in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            #expect(OutboundPolicy().refusal(for: bytes(address)) == nil, "\(address)")
        }
    }

    @Test func theAllowListAdmitsOnlyWhatItNames() throws {
        let policy = try OutboundPolicy(allowList: "127.0.0.0/8, ::1")
        #expect(policy.refusal(for: bytes("127.0.0.5")) == nil)
        #expect(policy.refusal(for: bytes("::1")) == nil)
        #expect(policy.refusal(for: bytes("10.0.0.1")) != nil)
        #expect(policy.refusal(for: bytes("169.254.169.254")) != nil)
        #expect(try OutboundPolicy(allowList: "").allowed.isEmpty)
        #expect(throws: OutboundRefusal.self) { try OutboundPolicy(allowList: "127.0.0.0/8,localhost") }
    }

    @Test func nodesReachEachOtherOnPrivateNetworksButNeverMetadata() {
        let nodes = OutboundPolicy().betweenNodes
        for address in ["10.77.0.2", "172.20.0.1", "192.168.1.9", "127.0.0.1", "100.64.3.3", "fd00::5", "::1", "203.0.114.1"] {
            #expect(nodes.refusal(for: bytes(address)) == nil, "\(address)")
        }
        for address in ["169.254.169.254", "fe80::1", "224.0.0.1", "0.0.0.0"] {
            #expect(nodes.refusal(for: bytes(address)) != nil, "\(address)")
        }
        // Users' destinations stay under the plain policy.
        #expect(OutboundPolicy().refusal(for: bytes("10.77.0.2")) != nil)
    }

    /// Names and numeric spellings resolve before the check, so none of them slips past it.
    @Test(arguments: ["localhost", "2130706433", "0x7f000001", "127.1", "[::1]", "metadata.google.internal", "printer.local"])
    func hostsThatResolveInsideAreRefusedAtConnectTime(host: String) async {
        await #expect(throws: OutboundRefusal.self) { try await OutboundPolicy().resolve(host: host, port: 1935) }
    }

    @Test func anAdmittedHostResolvesToTheAddressToConnectTo() async throws {
        let addresses = try await OutboundPolicy(allowList: "127.0.0.0/8").resolve(host: "127.0.0.1", port: 1935)
        #expect(addresses.map(\.ipAddress) == ["127.0.0.1"])
        #expect(addresses.first?.port == 1935)
    }

    @Test func savingAURLRefusesWhatIsForbiddenButNotWhatDoesNotResolveYet() async {
        #expect(await OutboundPolicy().screen(host: "10.0.0.1") != nil)
        #expect(await OutboundPolicy().screen(host: "localhost") != nil)
        #expect(await OutboundPolicy().screen(host: "no-such-host.invalid") == nil)
        #expect(await OutboundPolicy().screen(host: "8.8.8.8") == nil)
    }
}
