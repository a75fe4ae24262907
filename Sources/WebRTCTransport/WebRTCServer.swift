import CDatagram
import DTLS
import Glibc
import ICE
import Logging
import MediaPlane
import Metrics
import NIOCore
import NIOPosix
import RTCP
import RTP
import SDP
import STUN

public struct WebRTCTransportConfiguration: Sendable {
    public var host = "0.0.0.0"
    public var udpPort = 7882
    public var tcpPort = 7881
    /// Addresses put in candidates; empty: every IPv4 address of this machine's interfaces.
    public var announcedAddresses: [String] = []
    public var mtu = 1200
    /// Sessions beyond this are refused, so a flood of offers cannot exhaust memory.
    public var maxSessions = 2000
    /// Open sessions one identity (an account, an invite, a stream key) may hold: a studio
    /// needs a handful (publish, screen, one player per other person, the echo test).
    public var maxSessionsPerIdentity = 24
    /// Open sessions one client address may hold, whoever it signs in as.
    public var maxSessionsPerAddress = 64
    /// Media sections an offer may carry: a studio sends two or three, a player up to a
    /// few per person; each costs state and answer bytes.
    public var maxMediaSections = 16
    /// Kernel buffer asked for on the UDP socket, each way: one port carries every peer, and a
    /// fan-out of hundreds of packets must not overflow it while the loop is busy. The kernel
    /// caps it at net.core.rmem_max / wmem_max.
    public var socketBufferBytes = 4 << 20
    /// Lets tests drop a share of one session's outgoing RTP (`setEgressLoss`); off in service.
    public var allowsLossInjection = false
    /// Helper threads that share large fan-outs with the event loop (see `fanOut`); nil: one
    /// fewer than the CPUs the process may run on, at most 15; 0: the loop sends every copy.
    public var fanOutThreads: Int?

    /// The helper threads `fanOutThreads` comes to on this machine.
    public var resolvedFanOutThreads: Int {
        fanOutThreads.map { max(0, $0) } ?? min(15, Int(tally_available_cpus()) - 1)
    }

    public init() {}
}

/// One UDP port and one ICE-TCP port for every peer (RFC 8445 §2.5 lite, RFC 6544 passive).
///
/// `@unchecked Sendable`: every mutable field is touched only on `loop`; public methods hop
/// there first.
public final class WebRTCServer: MediaTransport, @unchecked Sendable {
    public let loop: any EventLoop
    public let configuration: WebRTCTransportConfiguration
    public let certificate: DTLSCertificate
    let logger: Logger
    private let serverContext: DTLSContext
    private let clientContext: DTLSContext

    private final class Session {
        let peer: PeerConnection
        let sink: any MediaSink
        /// What opened the session (echo, a broadcast's WHEP…): only the same may close it.
        let tag: String
        let owner: SessionOwner
        var paths: Set<ICEPath> = []
        init(peer: PeerConnection, sink: any MediaSink, tag: String, owner: SessionOwner) {
            self.peer = peer
            self.sink = sink
            self.tag = tag
            self.owner = owner
        }
    }

    enum Route {
        /// A UDP peer, and the server's address its datagrams arrived at (nil: not reported).
        case udp(SocketAddress, local: SocketAddress?)
        case tcp(any Channel)
    }

    private var sessions: [SessionID: Session] = [:]
    private var demux = SessionDemux()
    private var routes: [ICEPath: Route] = [:]
    private var udpChannel: (any Channel)?
    /// The UDP channel's socket, for batched media sends; the channel owns it.
    private var udpDescriptor: CInt?
    private let batch = DatagramBatch()
    private var fanOutWorkers: FanOutWorkers?
    /// Sends through the server: the lane of a fan-out done on the loop alone.
    private lazy var serialLane = FanOutLane(server: self, batched: false)
    /// Datagrams handed to the channel because the socket's buffer was full and not yet
    /// written: until they are, media goes the same way so that it stays in order.
    private var overflowing = 0
    private var tcpServer: (any Channel)?
    private var timer: RepeatedTask?
    private let startedAt = NIODeadline.now()
    public private(set) var boundUDPPort: Int?
    public private(set) var boundTCPPort: Int?
    public private(set) var candidates: [String] = []

    public init(configuration: WebRTCTransportConfiguration, certificate: DTLSCertificate, loop: any EventLoop, logger: Logger) throws {
        self.configuration = configuration
        self.certificate = certificate
        self.loop = loop
        self.logger = logger
        serverContext = try DTLSContext(role: .server, certificate: certificate)
        clientContext = try DTLSContext(role: .client, certificate: certificate)
    }

    /// Time since the transport started: the clock every state machine under it is fed.
    public var now: Duration {
        .nanoseconds((NIODeadline.now() - startedAt).nanoseconds)
    }

    // MARK: Lifecycle

    public func start() async throws {
        // The socket is made here rather than by the bootstrap so that media can be sent on it
        // in sendmmsg batches; the channel owns it (and closes it) and does everything else.
        let address = try SocketAddress.makeAddressResolvingHost(configuration.host, port: configuration.udpPort)
        let descriptor = address.withSockAddr { pointer, length in
            tally_datagram_bind(pointer, socklen_t(length), CInt(configuration.socketBufferBytes))
        }
        guard descriptor >= 0 else {
            throw IOError(errnoCode: -descriptor, reason: "binding UDP \(configuration.host):\(configuration.udpPort)")
        }
        let udp = try await DatagramBootstrap(group: loop)
            // Each datagram's destination address: answers leave from it (see DatagramDestination).
            .channelOption(.receivePacketInfo, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UDPHandler(server: self)) }
            }
            .withBoundSocket(descriptor).get()
        // Linux reports twice what it grants; less than asked means the sysctl caps it.
        let granted = (try? await udp.getOption(.socketOption(.so_rcvbuf))).map { Int($0) / 2 } ?? 0
        if granted < configuration.socketBufferBytes {
            logger.warning("UDP receive buffer smaller than asked: bursts may drop packets",
                           metadata: ["asked": "\(configuration.socketBufferBytes)", "granted": "\(granted)",
                                      "fix": "sysctl -w net.core.rmem_max=\(configuration.socketBufferBytes) net.core.wmem_max=\(configuration.socketBufferBytes)"])
        }
        let tcp = try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Past the high mark the channel reports itself unwritable and media to it is
            // dropped, so a peer that reads slowly cannot make the server buffer without end.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: Self.tcpWriteBufferLow, high: Self.tcpWriteBufferHigh))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TCPHandler(server: self)) }
            }
            .bind(host: configuration.host, port: configuration.tcpPort).get()
        let udpPort = udp.localAddress?.port ?? configuration.udpPort
        let tcpPort = tcp.localAddress?.port ?? configuration.tcpPort
        let addresses = configuration.announcedAddresses.isEmpty ? Self.interfaceAddresses() : configuration.announcedAddresses
        let candidates = addresses.enumerated().flatMap { index, ip in
            [ICECandidate.hostUDP(ip: ip, port: udpPort, foundation: "\(2 * index + 1)"),
             ICECandidate.hostTCPPassive(ip: ip, port: tcpPort, foundation: "\(2 * index + 2)")]
        }
        try await loop.submit {
            self.udpChannel = udp
            self.udpDescriptor = descriptor
            self.tcpServer = tcp
            self.boundUDPPort = udpPort
            self.boundTCPPort = tcpPort
            self.candidates = candidates
            let helpers = self.configuration.resolvedFanOutThreads
            if helpers > 0 { self.fanOutWorkers = FanOutWorkers(server: self, helpers: helpers) }
            self.timer = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in self.tick() }
        }.get()
        logger.info("WebRTC transport listening", metadata: ["udp": "\(udpPort)", "tcp": "\(tcpPort)", "addresses": "\(addresses.joined(separator: ","))",
                                                            "fan-out helper threads": "\(configuration.resolvedFanOutThreads)"])
    }

    public func stop() async {
        let channels: [any Channel] = (try? await loop.submit { () -> [any Channel] in
            self.timer?.cancel()
            for id in Array(self.sessions.keys) { self.closeSession(id, reason: "server shutting down") }
            self.flushUDP()
            self.udpDescriptor = nil
            self.fanOutWorkers?.stop()
            self.fanOutWorkers = nil
            return [self.udpChannel, self.tcpServer].compactMap { $0 }
        }.get()) ?? []
        for channel in channels { try? await channel.close() }
    }

    /// Every IPv4 address of this machine, non-loopback first.
    static func interfaceAddresses() -> [String] {
        let devices = (try? System.enumerateDevices()) ?? []
        let addresses = devices.compactMap { device -> String? in
            guard case .v4 = device.address, let ip = device.address?.ipAddress else { return nil }
            return ip
        }
        let unique = Array(Set(addresses))
        return unique.filter { !$0.hasPrefix("127.") }.sorted() + unique.filter { $0.hasPrefix("127.") }.sorted()
    }

    // MARK: Sessions

    public var protectionOverhead: Int { PeerConnection.protectionOverhead }
    public var maxMediaSections: Int { configuration.maxMediaSections }

    public func open(tag: String, owner: SessionOwner, negotiate: @escaping @Sendable (LocalTransportParameters) throws -> SDPAnswer,
                     makeSink: @escaping @Sendable (SDPAnswer) -> any MediaSink) async throws -> (id: SessionID, answer: SDPAnswer) {
        let limits = configuration
        return try await loop.submit { () throws -> (SessionID, SDPAnswer) in
            guard self.udpChannel != nil else { throw MediaTransportError.notRunning }
            guard self.sessions.count < limits.maxSessions else { throw MediaTransportError.tooManySessions }
            var byIdentity = 0, byAddress = 0
            for session in self.sessions.values {
                if session.owner.identity == owner.identity { byIdentity += 1 }
                if session.owner.address == owner.address { byAddress += 1 }
            }
            guard byIdentity < limits.maxSessionsPerIdentity else { throw MediaTransportError.tooManySessionsForOwner(limit: limits.maxSessionsPerIdentity) }
            guard byAddress < limits.maxSessionsPerAddress else { throw MediaTransportError.tooManySessionsForAddress(limit: limits.maxSessionsPerAddress) }
            let id = SessionID(Self.randomToken(22))
            var fragment = Self.randomToken(8)
            while self.demux.isTaken(fragment: fragment) { fragment = Self.randomToken(8) }
            let password = Self.randomToken(24)
            let transport = LocalTransportParameters(iceUsernameFragment: fragment, icePassword: password,
                                                     fingerprintSHA256: self.certificate.fingerprintSHA256, candidates: self.candidates)
            let answer = try negotiate(transport)
            let context = answer.dtlsClient ? self.clientContext : self.serverContext
            let peer = try PeerConnection(id: id, answer: answer, localUsernameFragment: fragment, localPassword: password,
                                          dtlsContext: context, mtu: self.configuration.mtu, now: self.now)
            self.sessions[id] = Session(peer: peer, sink: makeSink(answer), tag: tag, owner: owner)
            self.demux.register(fragment: fragment, for: id)
            self.logger.info("WebRTC session opened", metadata: ["session": "\(id)", "media": "\(answer.media.map { "\($0.kind):\($0.codec.name):\($0.direction)" })"])
            return (id, answer)
        }.get()
    }

    /// Closes a session, if `tag` (when given) is the one it was opened with and `identity`
    /// (when given) the one that holds it.
    @discardableResult
    public func close(sessionID: SessionID, tag: String? = nil, identity: String? = nil, reason: String) async -> Bool {
        (try? await loop.submit { () -> Bool in
            guard let session = self.sessions[sessionID], tag == nil || session.tag == tag,
                  identity == nil || session.owner.identity == identity else { return false }
            self.closeSession(sessionID, reason: reason)
            return true
        }.get()) ?? false
    }

    /// Closes every session `identity` holds; how many there were.
    @discardableResult
    public func close(identity: String, reason: String) async -> Int {
        (try? await loop.submit { () -> Int in
            let ids = self.sessions.filter { $0.value.owner.identity == identity }.map(\.key)
            for id in ids { self.closeSession(id, reason: reason) }
            return ids.count
        }.get()) ?? 0
    }

    /// Closes every session opened with `tag`; how many there were.
    @discardableResult
    public func close(tag: String, reason: String) async -> Int {
        (try? await loop.submit { () -> Int in
            let ids = self.sessions.filter { $0.value.tag == tag }.map(\.key)
            for id in ids { self.closeSession(id, reason: reason) }
            return ids.count
        }.get()) ?? 0
    }

    public var allowsLossInjection: Bool { configuration.allowsLossInjection }

    /// Drops `probability` of the RTP sent on a session, as a lossy path would; for tests of
    /// loss recovery, and refused unless the configuration allows it.
    public func setEgressLoss(sessionID: SessionID, probability: Double) async -> Bool {
        guard configuration.allowsLossInjection, (0...1).contains(probability) else { return false }
        return (try? await loop.submit { () -> Bool in
            guard let session = self.sessions[sessionID] else { return false }
            session.peer.egressLoss = probability
            self.logger.warning("injecting egress loss", metadata: ["session": "\(sessionID)", "probability": "\(probability)"])
            return true
        }.get()) ?? false
    }

    public var sessionCount: Int {
        get async { (try? await loop.submit { self.sessions.count }.get()) ?? 0 }
    }

    /// Open sessions opened with `tag` (a broadcast's players, say).
    public func sessionCount(tag: String) async -> Int {
        (try? await loop.submit { self.sessions.values.filter { $0.tag == tag }.count }.get()) ?? 0
    }

    // MARK: Sending (on the loop)

    /// Allocates the buffers packets are built in for `sendRTP`.
    public let allocator = ByteBufferAllocator()
    /// Writes queued on the channel since the last flush; a long fan-out is flushed in
    /// batches so the first receivers do not wait for the last packet to be built.
    private var unflushedWrites = 0
    private static let writesPerFlush = 64

    /// Protects `packet` and sends it on the peer's selected path. Over UDP it joins the
    /// current `sendmmsg` batch, which goes out when full and at the end of each read burst.
    public func sendRTP(_ packet: ByteBuffer, on session: any MediaSession) {
        guard let peer = session as? PeerConnection else { return }
        sendRTP(packet, on: peer)
    }

    func sendRTP(_ packet: ByteBuffer, on peer: PeerConnection) {
        loop.preconditionInEventLoop()
        if peer.egressLoss > 0, Double.random(in: 0..<1) < peer.egressLoss { return }
        if let destination = batchDestination(for: peer, length: packet.readableBytes) {
            if batch.append(packet, for: peer, to: destination), batch.isFull { sendBatch() }
            return
        }
        transmit(packet, on: peer)
    }

    /// Builds one RTP packet with `build` and sends it as `sendRTP` does. `build` gets at
    /// least `capacity` bytes and returns the packet's length, or nil to send nothing. Over
    /// UDP the packet is built in the send batch itself, so a forwarded copy is written,
    /// encrypted and sent from one place. `build` runs exactly once whether or not the
    /// packet can leave, so whatever it numbers stays in step.
    func sendRTP(on peer: PeerConnection, capacity: Int, _ build: (UnsafeMutableRawBufferPointer) -> Int?) {
        loop.preconditionInEventLoop()
        let lost = peer.egressLoss > 0 && Double.random(in: 0..<1) < peer.egressLoss
        if !lost, let destination = batchDestination(for: peer, length: capacity) {
            if batch.append(for: peer, to: destination, build), batch.isFull { sendBatch() }
            return
        }
        var packet = allocator.buffer(capacity: capacity + PeerConnection.protectionOverhead)
        var built = false
        packet.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { room in
            guard let length = build(room) else { return 0 }
            built = true
            return length
        }
        if built && !lost { transmit(packet, on: peer) }
    }

    /// Where a packet of `length` bytes for `peer` can join the `sendmmsg` batch; nil when
    /// it must go through the channel (TCP, a full socket buffer draining, or too large).
    private func batchDestination(for peer: PeerConnection, length: Int) -> DatagramDestination? {
        guard overflowing == 0, udpDescriptor != nil else { return nil }
        return Self.batchDestination(for: peer, length: length)
    }

    /// The peer's part of `batchDestination(for:length:)`.
    static func batchDestination(for peer: PeerConnection, length: Int) -> DatagramDestination? {
        guard case .udp? = peer.selectedRoute, length + PeerConnection.protectionOverhead <= DatagramBatch.slotSize else { return nil }
        return peer.udpDestination
    }

    /// Hands `count` items of one fan-out (a packet's copies, one per subscriber) to `body` in
    /// ranges, each with the lane to send its copies through. Large fan-outs are shared with
    /// the helper threads, several ranges at once; `body` must then touch nothing that two
    /// items share, nor anything that only the loop may touch, such as a logger's or a
    /// router's state. Returns how many copies the helpers built.
    @discardableResult
    public func fanOut(count: Int, _ body: (any MediaLane, Range<Int>) -> Void) -> Int {
        loop.preconditionInEventLoop()
        guard let workers = fanOutWorkers, count >= FanOutWorkers.minimumParallelCount, overflowing == 0, let descriptor = udpDescriptor else {
            body(serialLane, 0..<count)
            return 0
        }
        // What is queued for these peers must leave before the copies overtake it.
        flushUDP()
        for lane in workers.lanes { lane.descriptor = descriptor }
        workers.run(count: count, body)
        var helperCopies = 0
        for (index, lane) in workers.lanes.enumerated() {
            let copies = lane.handOver(to: self)
            if index > 0 { helperCopies += copies }
        }
        flushUDP()
        return helperCopies
    }

    /// A datagram the kernel refused outright: counted against its peer.
    func sendRefused(for peer: PeerConnection, error: CInt) {
        peer.noteSendFailure()
        logger.debug("UDP send refused", metadata: ["session": "\(peer.id)", "error": "\(String(cString: strerror(error)))"])
    }

    /// A protected datagram the socket had no room for, queued on the channel, which waits
    /// for room; media follows it there until it is written, so that it stays in order.
    func queueOverflow(_ bytes: ByteBuffer, for peer: PeerConnection) {
        guard case .udp(let address, _)? = peer.selectedRoute, let channel = udpChannel else { return }
        overflowing += 1
        let written = loop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in self.overflowing -= 1 }
        channel.write(AddressedEnvelope(remoteAddress: address, data: bytes), promise: written)
    }

    /// Protects `packet` and sends it through the channel of the peer's selected path.
    func transmit(_ packet: ByteBuffer, on peer: PeerConnection) {
        guard let route = peer.selectedRoute else { return }
        var packet = packet
        guard peer.protectRTP(&packet) else { return }
        switch route {
        // Only while the socket's buffer drains (or for a datagram too large for a batch): the
        // channel keeps order with what waits there, and sends from the kernel's choice of address.
        case .udp(let address, _):
            guard let channel = udpChannel else { return }
            channel.write(AddressedEnvelope(remoteAddress: address, data: packet), promise: nil)
            unflushedWrites += 1
            if unflushedWrites >= Self.writesPerFlush { flushUDP() }
        case .tcp(let channel):
            guard channel.isWritable else {
                peer.noteSendFailure()
                return
            }
            channel.writeAndFlush(channel.allocator.buffer(bytes: ICETCPFramer.frame(Array(packet.readableBytesView))), promise: nil)
        }
    }

    /// Bytes an ICE-TCP connection may have waiting to be sent before its media is dropped:
    /// about a second of a 1080p stream.
    static let tcpWriteBufferHigh = 1 << 20
    static let tcpWriteBufferLow = 256 << 10

    /// Sends what is queued now. Reading from the socket does this at the end of each burst;
    /// work that runs outside a read (the program's own media, a tap's keyframe request) calls it.
    public func flushOutgoing() {
        loop.preconditionInEventLoop()
        flushUDP()
    }

    public func sendRTCP(_ packets: [RTCPPacket], on session: any MediaSession) {
        guard let peer = session as? PeerConnection else { return }
        sendRTCP(packets, on: peer)
    }

    func sendRTCP(_ packets: [RTCPPacket], on peer: PeerConnection) {
        loop.preconditionInEventLoop()
        if let event = peer.sendRTCP(packets) { handle([event], session: peer.id, source: nil) }
    }

    // MARK: Receiving (on the loop)

    fileprivate func receive(_ bytes: [UInt8], path: ICEPath, route: Route) {
        let id: SessionID
        let pathIsKnown: Bool
        switch demux.match(bytes, from: path) {
        case .known(let known):
            id = known
            pathIsKnown = true
        case .check(let named):
            id = named
            pathIsKnown = false
        case nil:
            logger.trace("packet for no session", metadata: ["path": "\(path)", "bytes": "\(bytes.count)", "first": "\(bytes.first ?? 0)"])
            return
        }
        guard let session = sessions[id] else { return }
        let events = session.peer.receive(bytes, from: path, now: now)
        if !pathIsKnown, session.peer.ice.isValidated(path) {
            demux.learn(path, for: id)
            routes[path] = route
            session.paths.insert(path)
        }
        handle(events, session: id, source: (path, route))
    }

    fileprivate func tcpClosed(_ path: ICEPath) {
        routes[path] = nil
        if let id = demux.forget(path), let session = sessions[id] {
            session.paths.remove(path)
            if session.peer.selectedPath == path { session.peer.selectedRoute = nil }
        }
    }

    fileprivate func isValidated(_ path: ICEPath) -> Bool {
        demux.session(on: path) != nil
    }

    private func tick() {
        let time = now
        for (id, session) in sessions {
            handle(session.peer.tick(now: time), session: id, source: nil)
            if session.peer.isConnected { session.sink.tick(session.peer, transport: self) }
        }
        flushUDP()
    }

    fileprivate func flushUDP() {
        sendBatch()
        unflushedWrites = 0
        udpChannel?.flush()
    }

    private func sendBatch() {
        guard batch.count > 0, let descriptor = udpDescriptor, let channel = udpChannel else { return }
        var overflowed = false
        batch.send(on: descriptor, overflow: { bytes, peer in
            overflowed = true
            queueOverflow(channel.allocator.buffer(bytes: bytes), for: peer)
        }, refused: { peer, errorCode in
            sendRefused(for: peer, error: errorCode)
        })
        if overflowed { channel.flush() }
    }

    private func handle(_ events: [PeerEvent], session id: SessionID, source: (path: ICEPath, route: Route)?) {
        guard let session = sessions[id] else { return }
        for event in events {
            switch event {
            case .send(let bytes, let path):
                let route = source.flatMap { $0.path == path ? $0.route : nil } ?? routes[path]
                if let route { write(bytes, to: path, via: route) }
            case .selected(let path):
                session.peer.selectedRoute = source.flatMap { $0.path == path ? $0.route : nil } ?? routes[path]
                logger.info("ICE selected path", metadata: ["session": "\(id)", "path": "\(path)"])
            case .connected:
                logger.info("WebRTC session connected", metadata: ["session": "\(id)"])
                session.sink.sessionDidConnect(session.peer, transport: self)
            case .rtp(let packet):
                session.sink.session(session.peer, didReceive: packet, transport: self)
            case .rtcp(let packets):
                session.sink.session(session.peer, didReceive: packets, transport: self)
            case .closed(let reason):
                closeSession(id, reason: reason)
            }
        }
    }

    private func write(_ bytes: [UInt8], to path: ICEPath, via route: Route) {
        switch route {
        case .udp(let address, let local):
            // From the address the peer reached; a datagram the kernel has no room for now is
            // lost as on the wire, and ICE or DTLS sends it again.
            guard let descriptor = udpDescriptor, let destination = DatagramDestination(address, local: local) else { return }
            if !destination.send(bytes, on: descriptor) { logger.trace("UDP control datagram not sent", metadata: ["path": "\(path)"]) }
        case .tcp(let channel):
            // A peer that does not read gets nothing more past the high-water mark; its
            // session counts what it missed.
            guard channel.isWritable else {
                if let id = demux.session(on: path) { sessions[id]?.peer.noteSendFailure() }
                return
            }
            channel.writeAndFlush(channel.allocator.buffer(bytes: ICETCPFramer.frame(bytes)), promise: nil)
        }
    }

    /// Sessions that closed before ICE and DTLS connected: clients that could not reach the
    /// media ports, or gave up (an alert's signal).
    private static let failedSessions = Counter(label: "tally_webrtc_failed_sessions_total")

    private func closeSession(_ id: SessionID, reason: String) {
        guard let session = sessions.removeValue(forKey: id) else { return }
        if !session.peer.isConnected, reason != "server shutting down" { Self.failedSessions.increment() }
        let events = session.peer.close(reason)
        for case .send(let bytes, let path) in events {
            if let route = routes[path] { write(bytes, to: path, via: route) }
        }
        demux.remove(fragment: session.peer.ice.localUsernameFragment, paths: session.paths)
        for path in session.paths {
            if case .tcp(let channel)? = routes.removeValue(forKey: path) { channel.close(promise: nil) }
        }
        flushUDP()
        session.sink.sessionDidClose(session.peer, reason: reason)
        logger.info("WebRTC session closed", metadata: ["session": "\(id)", "reason": "\(reason)",
                                                        "packets_in": "\(session.peer.stats.packetsIn)", "packets_out": "\(session.peer.stats.packetsOut)",
                                                        "decrypt_failures": "\(session.peer.stats.decryptFailures)",
                                                        "dropped_unvalidated": "\(session.peer.stats.droppedUnvalidated)",
                                                        "send_failures": "\(session.peer.stats.sendFailures)"])
    }

    static func randomToken(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
    }

    // MARK: Channel handlers

    private final class UDPHandler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let server: WebRTCServer

        init(server: WebRTCServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard let address = TransportAddress(envelope.remoteAddress) else { return }
            server.receive(Array(envelope.data.readableBytesView), path: ICEPath(.udp, address),
                           route: .udp(envelope.remoteAddress, local: envelope.metadata?.packetInfo?.destinationAddress))
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            server.flushUDP()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // ICMP unreachable and the like surface here; one peer's trouble must not stop the port.
            server.logger.debug("UDP error", metadata: ["error": "\(error)"])
        }
    }

    /// One ICE-TCP connection: RFC 4571 frames in and out. A connection that has not passed
    /// an ICE check within 10 s is closed, so idle sockets cannot pile up.
    private final class TCPHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let server: WebRTCServer
        var framer = ICETCPFramer()
        var path: ICEPath?

        init(server: WebRTCServer) { self.server = server }

        func channelActive(context: ChannelHandlerContext) {
            guard let remote = context.remoteAddress, let address = TransportAddress(remote) else {
                context.close(promise: nil)
                return
            }
            let path = ICEPath(.tcp, address)
            self.path = path
            let channel = context.channel
            let server = self.server
            context.eventLoop.scheduleTask(in: .seconds(10)) {
                if !server.isValidated(path) { channel.close(promise: nil) }
            }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let path else { return }
            let buffer = unwrapInboundIn(data)
            for frame in framer.feed(buffer.readableBytesView) {
                server.receive(frame, path: path, route: .tcp(context.channel))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if let path { server.tcpClosed(path) }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

extension TransportAddress {
    init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4):
            let raw = v4.address.sin_addr.s_addr
            self.init(ip: withUnsafeBytes(of: raw) { Array($0) }, port: UInt16(address.port ?? 0))
        case .v6(let v6):
            self.init(ip: withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }, port: UInt16(address.port ?? 0))
        default:
            return nil
        }
    }
}
