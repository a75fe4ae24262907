import FLV
import Foundation
import MediaCodecs
import NIOCore
import RTMP
import Synchronization

/// Where one destination stands, as the studio shows it.
public enum DestinationState: Sendable, Equatable {
    /// Not started yet.
    case idle
    case connecting
    case live
    /// Waiting `retryIn` seconds before attempt number `attempt`, after `reason`.
    case reconnecting(attempt: Int, retryIn: Double, reason: String)
    /// The server refused us and retrying did not help.
    case failed(reason: String)
    case stopped

    public var name: String {
        switch self {
        case .idle: "idle"
        case .connecting: "connecting"
        case .live: "live"
        case .reconnecting: "reconnecting"
        case .failed: "failed"
        case .stopped: "stopped"
        }
    }

    public var reason: String? {
        switch self {
        case .reconnecting(_, _, let reason), .failed(let reason): reason
        default: nil
        }
    }
}

/// How long to wait before reconnect attempt `attempt` (1-based): 1 s growing by half each
/// time to 30 s, each ±10 % so many pushes do not return in lockstep. Growing by half rather
/// than doubling keeps a receiver that was gone for ten seconds waiting under five once back.
public func reconnectDelay(attempt: Int, jitter: Double = Double.random(in: -0.1...0.1)) -> Double {
    let base = min(30, pow(1.5, Double(max(0, attempt - 1))))
    return max(0.5, base * (1 + jitter))
}

/// One RTMP(S) destination of a live program: connecting → live → reconnecting (on network
/// errors, for ever, with backoff) or failed (the server rejected the key or app, after at
/// most `maxRejections` tries). Packets from the bus go straight to the connection's loop;
/// when the connection cannot take more, the push drops to the next keyframe.
public final class DestinationPush: ProgramOutput {
    public let id: String
    public let endpoint: RTMPEndpoint
    public static let maxRejections = 3
    private let format: ProgramFormat
    private let group: any EventLoopGroup
    private let onState: @Sendable (DestinationState) -> Void
    private let shared = Mutex(Shared())
    private let task = Mutex<Task<Void, Never>?>(nil)

    private struct Shared: @unchecked Sendable {
        var connection: RTMPPushConnection?
        var gate = KeyframeGate(counter: OutputMetrics.droppedRTMP)
        var state = DestinationState.idle
        var stopping = false
        var packetsSent = 0
    }

    public init(id: String, endpoint: RTMPEndpoint, format: ProgramFormat, group: any EventLoopGroup,
                onState: @escaping @Sendable (DestinationState) -> Void) {
        self.id = id
        self.endpoint = endpoint
        self.format = format
        self.group = group
        self.onState = onState
    }

    public var state: DestinationState { shared.withLock { $0.state } }
    public var droppedPackets: Int { shared.withLock { $0.gate.dropped } }

    public func start() {
        task.withLock { $0 = Task { await self.run() } }
    }

    /// A server's words with the stream key taken out: some echo the stream name in errors,
    /// and reasons reach logs and the studio.
    public static func redacting(_ key: String, in text: String) -> String {
        key.isEmpty ? text : text.replacingOccurrences(of: key, with: "••••")
    }

    private func set(_ state: DestinationState) {
        let state: DestinationState = switch state {
        case .reconnecting(let attempt, let wait, let reason): .reconnecting(attempt: attempt, retryIn: wait, reason: Self.redacting(endpoint.streamKey, in: reason))
        case .failed(let reason): .failed(reason: Self.redacting(endpoint.streamKey, in: reason))
        default: state
        }
        let changed = shared.withLock { shared -> Bool in
            guard !(shared.stopping && state != .stopped), shared.state != state else { return false }
            shared.state = state
            return true
        }
        if changed { onState(state) }
    }

    private func run() async {
        var failures = 0
        var rejections = 0
        while !Task.isCancelled, !shared.withLock({ $0.stopping }) {
            set(.connecting)
            let reason: String
            do throws(RTMPPushError) {
                let connection = try await RTMPPushConnection.open(endpoint, group: group)
                if shared.withLock({ $0.stopping }) {
                    await connection.close()
                    break
                }
                failures = 0
                rejections = 0
                sendHeaders(connection)
                shared.withLock {
                    $0.connection = connection
                    $0.gate.waiting = true
                }
                set(.live)
                let closedBecause = (try? await connection.closed.get()) ?? "connection closed"
                shared.withLock { $0.connection = nil }
                if shared.withLock({ $0.stopping }) { break }
                reason = closedBecause
                failures += 1
            } catch {
                switch error {
                case .rejected(let why):
                    rejections += 1
                    if rejections >= Self.maxRejections {
                        OutputMetrics.failures.increment()
                        set(.failed(reason: why))
                        return
                    }
                    // A refusal is unlikely to change; a few quick tries catch a key saved a moment late.
                    set(.reconnecting(attempt: rejections + 1, retryIn: 1, reason: why))
                    try? await Task.sleep(for: .seconds(1))
                    continue
                case .network(let why):
                    reason = why
                    failures += 1
                }
            }
            OutputMetrics.reconnects.increment()
            let delay = reconnectDelay(attempt: failures)
            set(.reconnecting(attempt: failures + 1, retryIn: delay, reason: reason))
            try? await Task.sleep(for: .seconds(delay))
        }
    }

    private func sendHeaders(_ connection: RTMPPushConnection) {
        connection.sendMetadata([
            ("width", .number(Double(format.width))), ("height", .number(Double(format.height))),
            ("framerate", .number(Double(format.framesPerSecond))), ("videocodecid", .number(7)),
            ("videodatarate", .number(Double(format.videoBitrateKbps))), ("audiocodecid", .number(10)),
            ("audiosamplerate", .number(48_000)), ("audiochannels", .number(2)), ("stereo", .boolean(true)),
            ("encoder", .string("Tally")),
        ])
        if let header = try? FLVVideo.avcSequenceHeader(parameterSets: format.parameterSets) {
            connection.send(.video, timestamp: 0, body: header, flush: false)
        }
        connection.send(.audio, timestamp: 0, body: FLVAudio.aacSequenceHeader(audioSpecificConfig: format.audioSpecificConfig))
    }

    public func offer(_ packet: ProgramPacket) {
        let connection = shared.withLock { shared -> RTMPPushConnection? in
            guard let connection = shared.connection else { return nil }
            guard shared.gate.admit(packet, hasRoom: connection.isWritable) else { return nil }
            shared.packetsSent += 1
            return connection
        }
        guard let connection else { return }
        let timestamp = UInt32(truncatingIfNeeded: max(0, packet.dts) / 1000)
        switch packet.kind {
        case .video:
            connection.send(.video, timestamp: timestamp, body: FLVVideo.avcFrame(annexB: packet.data, keyframe: packet.isKeyframe,
                                                                                  compositionTime: Int32((packet.pts - packet.dts) / 1000)))
        case .audio:
            connection.send(.audio, timestamp: timestamp, body: FLVAudio.aacFrame(packet.data))
        }
    }

    /// Unpublishes cleanly and stops reconnecting.
    public func stop() async {
        let connection = shared.withLock { shared -> RTMPPushConnection? in
            shared.stopping = true
            return shared.connection
        }
        task.withLock { $0?.cancel() }
        await connection?.close()
        await task.withLock { $0 }?.value
        shared.withLock { $0.state = .stopped }
        onState(.stopped)
    }
}
