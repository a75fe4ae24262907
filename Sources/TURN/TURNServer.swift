import Foundation
import Logging
import Metrics
import NetworkPolicy
import NIOCore
import NIOPosix
import NIOSSL
import STUN

/// The TURN server's sockets around `TURNServerCore`: UDP and TCP on the TURN port, TLS on the
/// TURNS port, TURN streams handed over from another listener (the HTTPS port, for clients
/// that may only reach that), and one UDP relay socket per allocation. Everything runs on
/// one event loop of its own; relays carry media only to Tally's own media port.
public final class TURNServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var host = "0.0.0.0"
        public var port = 3478
        /// nil: no TURNS listener of its own.
        public var tlsPort: Int?
        /// The address put in XOR-RELAYED-ADDRESS: the public one clients know the server by.
        public var announcedIPv4: [UInt8]?
        public var settings = TURNServerCore.Settings()
        public init() {}
    }

    public let configuration: Configuration
    let loop: any EventLoop
    private let core: TURNServerCore
    private let logger: Logger
    private let tlsContext: @Sendable () -> NIOSSLContext?
    // The fields below are touched on `loop` only.
    private var udpChannel: (any Channel)?
    private var listeners: [any Channel] = []
    private var relays: [Int: any Channel] = [:]
    private var streams: [Int: any Channel] = [:]
    private var nextStream = 1
    private var timer: RepeatedTask?
    private let allocationsGauge = Gauge(label: "tally_turn_allocations")
    private let relayedToPeers = Counter(label: "tally_turn_relayed_packets_total", dimensions: [("direction", "to_media")])
    private let relayedToClients = Counter(label: "tally_turn_relayed_packets_total", dimensions: [("direction", "from_media")])
    public private(set) var boundPort = 0
    public private(set) var boundTLSPort: Int?

    /// `tlsContext`: the certificate for TURNS, taken at each connection.
    public init(configuration: Configuration, credentials: TURNCredentials, policy: TURNRelayPolicy, loop: any EventLoop,
                tlsContext: @escaping @Sendable () -> NIOSSLContext? = { nil }, logger: Logger) {
        self.configuration = configuration
        self.loop = loop
        core = TURNServerCore(settings: configuration.settings, credentials: credentials, policy: policy)
        self.tlsContext = tlsContext
        self.logger = logger
    }

    public func start() async throws {
        // TCP on the same port number as UDP, as clients expect of turn:host:port?transport=tcp.
        // With port 0 the number UDP got may be taken for TCP: then another is tried.
        var attempt = 0
        var bound: (udp: any Channel, tcp: any Channel)?
        while bound == nil {
            attempt += 1
            let udp = try await bindUDP(port: configuration.port)
            do {
                bound = (udp, try await listen(port: udp.localAddress?.port ?? configuration.port, tls: false))
            } catch where configuration.port == 0 && attempt < 10 {
                try? await udp.close()
            } catch {
                try? await udp.close()
                throw error
            }
        }
        guard let bound else { throw ChannelError.inappropriateOperationForState }
        let (udp, tcp) = bound
        let port = udp.localAddress?.port ?? configuration.port
        var tls: (any Channel)?
        if let tlsPort = configuration.tlsPort { tls = try await listen(port: tlsPort, tls: true) }
        try await loop.submit {
            self.udpChannel = udp
            self.listeners = [tcp] + (tls.map { [$0] } ?? [])
            self.boundPort = port
            self.boundTLSPort = tls?.localAddress?.port
            self.timer = self.loop.scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { _ in
                self.perform(self.core.expire(now: Date()))
            }
        }.get()
        logger.info("turn: listening", metadata: ["udp+tcp": "\(configuration.host):\(port)", "tls": "\(tls?.localAddress?.port.map(String.init) ?? "off")"])
    }

    private func bindUDP(port: Int) async throws -> any Channel {
        try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            // Which of the server's addresses each client reached, for the relayed address.
            .channelOption(.receivePacketInfo, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UDPHandler(server: self)) }
            }
            .bind(host: configuration.host, port: port).get()
    }

    public func stop() async {
        let channels = (try? await loop.submit { () -> [any Channel] in
            self.timer?.cancel()
            defer { self.relays = [:]; self.streams = [:] }
            return [self.udpChannel].compactMap { $0 } + self.listeners + Array(self.relays.values) + Array(self.streams.values)
        }.get()) ?? []
        for channel in channels { try? await channel.close() }
    }

    private func listen(port: Int, tls: Bool) async throws -> any Channel {
        try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { channel in
                guard !tls || self.tlsContext() != nil else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    if tls, let context = self.tlsContext() { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context)) }
                    try self.attachStream(channel)
                }
            }
            .bind(host: configuration.host, port: port).get()
    }

    /// Serves TURN on a connection another listener accepted (after its TLS, if any); the
    /// channel's pipeline must hand this handler the decrypted bytes. Call on the channel's loop.
    public func attachStream(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(StreamHandler(server: self))
    }

    // MARK: Driving the core (on `loop`)

    fileprivate func receive(_ bytes: [UInt8], from client: TURNClientID, mapped: TransportAddress?, reached: [UInt8]?) {
        loop.preconditionInEventLoop()
        // A relay announces the server address its client reached when the sockets listen
        // on every address and no public address is configured.
        perform(core.receive(bytes, from: client, mapped: mapped, now: Date()), reached: reached == [0, 0, 0, 0] ? nil : reached)
    }

    fileprivate func registerStream(_ channel: any Channel) -> Int {
        loop.preconditionInEventLoop()
        let id = nextStream
        nextStream += 1
        streams[id] = channel
        return id
    }

    fileprivate func streamClosed(_ id: Int) {
        loop.preconditionInEventLoop()
        streams[id] = nil
        perform(core.clientGone(.stream(id)))
    }

    private func perform(_ outputs: [TURNServerCore.Output], reached: [UInt8]? = nil) {
        for output in outputs {
            switch output {
            case .reply(.udp(let address), let bytes):
                guard let channel = udpChannel, let remote = address.socketAddress else { continue }
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: channel.allocator.buffer(bytes: bytes)), promise: nil)
            case .reply(.stream(let id), let bytes):
                guard let channel = streams[id] else { continue }
                // A client that reads too slowly loses media rather than growing our buffers.
                guard channel.isWritable else { continue }
                channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil)
            case .relay(let allocation, let target, let bytes):
                guard let channel = relays[allocation], let remote = target.socketAddress else { continue }
                relayedToPeers.increment()
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: channel.allocator.buffer(bytes: bytes)), promise: nil)
            case .openRelay(let allocation):
                openRelay(allocation, announcing: configuration.announcedIPv4 ?? reached)
            case .closeRelay(let allocation, let client):
                relays.removeValue(forKey: allocation)?.close(promise: nil)
                if case .stream(let id)? = client { streams.removeValue(forKey: id)?.close(promise: nil) }
            }
        }
        allocationsGauge.record(core.allocationCount)
    }

    private func openRelay(_ allocation: Int, announcing announced: [UInt8]?) {
        let bound = DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RelayHandler(server: self, allocation: allocation)) }
            }
            .bind(host: configuration.host, port: 0)
        bound.whenComplete { result in
            switch result {
            case .success(let channel):
                guard let port = channel.localAddress?.port else {
                    channel.close(promise: nil)
                    self.perform(self.core.allocationFailed(allocation))
                    return
                }
                self.relays[allocation] = channel
                let ip = announced ?? channel.localAddress.flatMap(TransportAddress.init)?.ip ?? [127, 0, 0, 1]
                self.logger.debug("turn: relay open", metadata: ["allocation": "\(allocation)", "port": "\(port)"])
                self.perform(self.core.allocated(allocation, relayed: TransportAddress(ip: ip, port: UInt16(port)), now: Date()))
            case .failure(let error):
                self.logger.warning("turn: cannot bind a relay socket", metadata: ["error": "\(error)"])
                self.perform(self.core.allocationFailed(allocation))
            }
        }
    }

    fileprivate func fromPeer(_ bytes: [UInt8], allocation: Int, source: TransportAddress) {
        relayedToClients.increment()
        perform(core.receiveFromPeer(bytes, allocation: allocation, source: source, now: Date()))
    }

    // MARK: Handlers

    private final class UDPHandler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let server: TURNServer
        init(server: TURNServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard let address = TransportAddress(envelope.remoteAddress) else { return }
            server.receive(Array(envelope.data.readableBytesView), from: .udp(address), mapped: address,
                           reached: envelope.metadata?.packetInfo.flatMap { TransportAddress($0.destinationAddress)?.ip })
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            server.logger.debug("turn: UDP error", metadata: ["error": "\(error)"])
        }
    }

    private final class RelayHandler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let server: TURNServer
        let allocation: Int
        init(server: TURNServer, allocation: Int) {
            self.server = server
            self.allocation = allocation
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard let source = TransportAddress(envelope.remoteAddress) else { return }
            server.fromPeer(Array(envelope.data.readableBytesView), allocation: allocation, source: source)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {}
    }

    /// TURN over a byte stream (see `TURNStreamFramer`). Its loop may be another listener's:
    /// the core is driven on the TURN loop.
    private final class StreamHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let server: TURNServer
        private var framer = TURNStreamFramer()
        private var id: Int?

        init(server: TURNServer) { self.server = server }

        func handlerAdded(context: ChannelHandlerContext) {
            let channel = context.channel
            let mapped = context.remoteAddress.flatMap(TransportAddress.init)
            let reached = context.localAddress.flatMap(TransportAddress.init)?.ip
            server.loop.execute {
                self.id = self.server.registerStream(channel)
                self.mapped = mapped
                self.reached = reached
            }
            if channel.isActive { context.read() }
        }

        private var mapped: TransportAddress?
        private var reached: [UInt8]?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frames: [[UInt8]]
            do {
                frames = try framer.feed(unwrapInboundIn(data).readableBytesView)
            } catch {
                context.close(promise: nil)
                return
            }
            guard !frames.isEmpty else { return }
            server.loop.execute {
                guard let id = self.id else { return }
                for frame in frames { self.server.receive(frame, from: .stream(id), mapped: self.mapped, reached: self.reached) }
            }
        }

        /// Asks for the next bytes itself: a listener that reads only on demand (the async
        /// HTTP server the HTTPS port's streams come from) would otherwise never read again.
        func channelReadComplete(context: ChannelHandlerContext) {
            context.fireChannelReadComplete()
            context.read()
        }

        func channelInactive(context: ChannelHandlerContext) {
            server.loop.execute {
                if let id = self.id { self.server.streamClosed(id) }
            }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

extension TransportAddress {
    init?(_ address: SocketAddress) {
        guard let ip = address.ipBytes else { return nil }
        self.init(ip: ip, port: UInt16(address.port ?? 0))
    }

    var socketAddress: SocketAddress? {
        let text: String
        if isIPv4 {
            text = ip.map(String.init).joined(separator: ".")
        } else {
            text = stride(from: 0, to: 16, by: 2).map { String(UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]), radix: 16) }.joined(separator: ":")
        }
        return try? SocketAddress(ipAddress: text, port: Int(port))
    }
}
