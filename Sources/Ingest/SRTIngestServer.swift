import CSRT
import Dispatch
import Foundation
import Logging
import MediaCodecs
import Synchronization

/// The SRT listener encoders publish to (`srt://HOST:PORT?streamid=#!::r=live/KEY,m=publish`).
/// The stream ID is checked in libsrt's listen callback, before the connection is accepted,
/// so a wrong key never gets a byte of media in. Each accepted encoder gets a thread that
/// demuxes its MPEG-TS with libavformat.
public final class SRTIngestServer: Sendable {
    public struct Limits: Sendable {
        public var connectionsPerAddress = 8
        /// No data for this long and the connection is closed.
        public var idleTimeout: Duration = .seconds(30)
        /// How long the listen callback waits for a key check before refusing.
        /// How long the listen callback waits for the stream key's check.
        public var keyCheckTimeout: Duration = .milliseconds(500)

        public init() {}
    }

    private let hub: IngestHub
    private let host: String
    private let port: Int
    private let limits: Limits
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var listener: SRTSOCKET?
        var stopping = false
        /// Granted in the listen callback, picked up when `srt_accept` returns the socket.
        var granted: [SRTSOCKET: Grant] = [:]
        /// Accepted connections per address. A grant whose handshake then fails (a wrong
        /// passphrase) is never accepted, so it never counts and is pruned once stale.
        var perAddress: [String: Int] = [:]
        var connections: Set<SRTSOCKET> = []
    }

    public init(hub: IngestHub, host: String, port: Int, limits: Limits = Limits(), logger: Logger) {
        self.hub = hub
        self.host = host
        self.port = port
        self.limits = limits
        self.logger = logger
    }

    /// Listens; returns the bound port (useful when `port` is 0).
    public func start() throws(IngestRefusal) -> Int {
        srt_startup()
        tally_srt_quiet()
        let listener = srt_create_socket()
        guard listener != SRT_INVALID_SOCK else { throw IngestRefusal(reason: "SRT: \(Self.lastError())") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            srt_close(listener)
            throw IngestRefusal(reason: "SRT listens on IPv4 addresses; \(host) is not one")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { srt_bind(listener, $0, Int32(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound != SRT_ERROR, srt_listen(listener, 16) != SRT_ERROR else {
            let why = Self.lastError()
            srt_close(listener)
            throw IngestRefusal(reason: "SRT cannot listen on \(host):\(port): \(why)")
        }
        var local = sockaddr_in()
        var length = Int32(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { srt_getsockname(listener, $0, &length) }
        }
        srt_listen_callback(listener, { opaque, socket, version, peer, streamID in
            guard let opaque else { return -1 }
            let server = Unmanaged<SRTIngestServer>.fromOpaque(opaque).takeUnretainedValue()
            return server.admit(socket, version: version, peer: peer, streamID: streamID.map { String(cString: $0) })
        }, Unmanaged.passUnretained(self).toOpaque())
        state.withLock { $0.listener = listener }
        let thread = Thread { [self] in acceptLoop(listener) }
        thread.name = "tally.srt.accept"
        thread.start()
        return Int(UInt16(bigEndian: local.sin_port))
    }

    public func stop() {
        let (listener, connections) = state.withLock { state in
            state.stopping = true
            defer { state.listener = nil }
            return (state.listener, state.connections)
        }
        guard let listener else { return }
        srt_close(listener)
        for connection in connections { srt_close(connection) }
        // Balances start's srt_startup: the last one out stops libsrt's threads, which must
        // not outlive the process's own teardown.
        srt_cleanup()
    }

    static func lastError() -> String {
        String(cString: srt_getlasterror_str())
    }

    /// The listen callback: 0 lets the caller in, -1 refuses it with the reason code set.
    private func admit(_ socket: SRTSOCKET, version: Int32, peer: UnsafePointer<sockaddr>?, streamID: String?) -> Int32 {
        let address = peer.map(Self.describe) ?? "unknown"
        func refuse(_ code: Int32, _ why: String) -> Int32 {
            logger.notice("srt: refused", metadata: ["from": "\(address)", "reason": "\(why)"])
            srt_setrejectreason(socket, code)
            return -1
        }
        guard version >= 5, let streamID, !streamID.isEmpty else {
            return refuse(SRT_REJX_BAD_REQUEST, "no stream ID: publish with streamid=#!::r=live/KEY,m=publish")
        }
        guard let target = SRTStreamID(streamID) else { return refuse(SRT_REJX_BAD_REQUEST, "unreadable stream ID") }
        guard target.mode == "publish" else { return refuse(SRT_REJX_BAD_MODE, "mode \(target.mode): this server takes streams (m=publish)") }
        let admitted = state.withLock { state -> Bool in
            state.granted = state.granted.filter { ContinuousClock.now - $0.value.at < Self.grantLifetime }
            return !state.stopping && state.perAddress[address, default: 0] < limits.connectionsPerAddress
        }
        guard admitted else { return refuse(SRT_REJX_OVERLOAD, "too many connections from \(address)") }
        let request = IngestRequest(transport: .srt, app: target.app, streamKey: target.key, remoteAddress: address)
        let decision = Mutex<IngestDecision?>(nil)
        let done = DispatchSemaphore(value: 0)
        // libsrt calls this on its receive thread, which every SRT connection shares: only the
        // key (a store lookup) is checked here, for at most a moment; the webhook, which may
        // take seconds, is asked on the connection's own thread once it is accepted.
        Task { [hub] in
            let answer = await hub.checkKey(request)
            decision.withLock { $0 = answer }
            done.signal()
        }
        let answered = done.wait(timeout: .now() + .milliseconds(Int(limits.keyCheckTimeout / .milliseconds(1)))) == .success
        switch answered ? decision.withLock({ $0 }) : nil {
        case .allow(let id, let settings)?:
            if let passphrase = settings.passphrase {
                let status = passphrase.withCString { srt_setsockflag(socket, SRTO_PASSPHRASE, $0, Int32(strlen($0))) }
                guard status != SRT_ERROR else { return refuse(SRT_REJX_ISE, "cannot set the stream's passphrase: \(Self.lastError())") }
            }
            state.withLock { $0.granted[socket] = Grant(streamID: id, settings: settings, request: request, at: .now) }
            return 0
        case .deny(let why)?:
            return refuse(why.contains("unknown") ? SRT_REJX_NOTFOUND : SRT_REJX_FORBIDDEN, why)
        case nil:
            return refuse(SRT_REJX_ISE, "the key check did not answer in time")
        }
    }

    /// Runs `work` to its end from a plain thread (a connection's own), blocking only that thread.
    private static func waiting<T: Sendable>(for work: @escaping @Sendable () async -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let value = await work()
            result.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }

    private func release(_ address: String) {
        state.withLock { state in
            state.perAddress[address, default: 1] -= 1
            if state.perAddress[address] == 0 { state.perAddress[address] = nil }
        }
    }

    private func acceptLoop(_ listener: SRTSOCKET) {
        while true {
            let socket = srt_accept(listener, nil, nil)
            guard socket != SRT_INVALID_SOCK else {
                if state.withLock({ $0.stopping || $0.listener != listener }) { return }
                logger.warning("srt: accept failed: \(Self.lastError())")
                continue
            }
            guard let grant = state.withLock({ $0.granted.removeValue(forKey: socket) }) else {
                srt_close(socket)
                continue
            }
            state.withLock { $0.perAddress[grant.request.remoteAddress, default: 0] += 1 }
            var timeout = Int32(limits.idleTimeout.components.seconds * 1000)
            srt_setsockflag(socket, SRTO_RCVTIMEO, &timeout, Int32(MemoryLayout<Int32>.size))
            state.withLock { _ = $0.connections.insert(socket) }
            let thread = Thread { [self] in serve(socket, grant: grant) }
            thread.name = "tally.srt.\(grant.streamID)"
            thread.start()
        }
    }

    private struct Grant: Sendable {
        var streamID: String
        var settings: IngestSettings
        var request: IngestRequest
        var at: ContinuousClock.Instant
    }

    /// Longer than any SRT handshake takes between the listen callback and accept.
    static let grantLifetime = Duration.seconds(30)

    /// One encoder, from its first byte to its last.

    private func serve(_ socket: SRTSOCKET, grant: Grant) {
        defer {
            srt_close(socket)
            state.withLock { _ = $0.connections.remove(socket) }
            release(grant.request.remoteAddress)
        }
        if let refusal = Self.waiting(for: { await self.hub.askWebhook(grant.request, streamID: grant.streamID) }) {
            logger.notice("srt: \(refusal)")
            return
        }
        let attached = hub.attach(streamID: grant.streamID, settings: grant.settings, request: grant.request) { _ in srt_close(socket) }
        guard case .success(let publisher) = attached else {
            if case .failure(let refusal) = attached { logger.notice("srt: \(refusal.reason)") }
            return
        }
        var reason = "the encoder disconnected"
        do {
            let reader = try ContainerReader(format: "mpegts") { buffer in
                guard let base = buffer.baseAddress else { return 0 }
                return Int(srt_recvmsg(socket, base.assumingMemoryBound(to: CChar.self), Int32(min(buffer.count, Int(Int32.max)))))
            }
            var streams = TSElementaryStreams()
            while let packet = try reader.next() {
                for output in streams.take(packet) {
                    switch output {
                    case .tracks: publisher.setTracks(video: streams.video, audio: streams.audio)
                    case .packet(let packet): publisher.send(packet)
                    }
                }
                if let unsupported = streams.unsupportedVideo {
                    publisher.fail(unsupported)
                    return
                }
            }
        } catch {
            reason = "\(error)"
        }
        publisher.detach(reason: reason)
    }

    static func describe(_ address: UnsafePointer<sockaddr>) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                var raw = inet.pointee.sin_addr
                _ = inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
            }
        case AF_INET6:
            address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet in
                var raw = inet.pointee.sin6_addr
                _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
            }
        default:
            return "unknown"
        }
        return String(cString: text)
    }
}

/// An SRT stream ID: the access-control form `#!::r=live/KEY,m=publish` (keys in any order),
/// or plainly `live/KEY` or `KEY`, which mean publishing.
public struct SRTStreamID: Equatable, Sendable {
    public var app: String
    public var key: String
    public var mode: String

    public init?(_ text: String) {
        var resource = text
        var mode = "publish"
        if text.hasPrefix("#!::") {
            var fields: [String: String] = [:]
            for pair in text.dropFirst(4).split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { return nil }
                fields[String(parts[0])] = String(parts[1])
            }
            guard let named = fields["r"] else { return nil }
            resource = named
            // The access-control convention: no `m` means the caller wants to play.
            mode = fields["m"] ?? "request"
        }
        let parts = resource.split(separator: "/", omittingEmptySubsequences: true)
        switch parts.count {
        case 1:
            app = "live"
            key = String(parts[0])
        case 2:
            app = String(parts[0])
            key = String(parts[1])
        default:
            return nil
        }
        self.mode = mode
    }
}
