import FLV
import Foundation
import MediaCodecs
import NetworkPolicy
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

/// One RTMP(S) destination of a live program or a relayed ingest stream: connecting → live
/// → reconnecting (on network errors, for ever, with backoff) or failed (the server rejected
/// the key or app, after at most `maxRejections` tries). Packets go straight to the
/// connection's loop; when the connection cannot take more, the push drops to the next
/// keyframe. H.264 goes as classic FLV; HEVC, AV1 and VP9 as enhanced RTMP (`hvc1`,
/// `av01`, `vp09`).
public final class DestinationPush: ProgramOutput {
    public let id: String
    public let endpoint: RTMPEndpoint
    public static let maxRejections = 3
    private let group: any EventLoopGroup
    private let policy: OutboundPolicy
    private let onState: @Sendable (DestinationState) -> Void
    private let shared: Mutex<Shared>
    private let task = Mutex<Task<Void, Never>?>(nil)

    private struct Shared: @unchecked Sendable {
        var connection: RTMPPushConnection?
        var gate = KeyframeGate(counter: OutputMetrics.droppedRTMP)
        var state = DestinationState.idle
        var stopping = false
        var packetsSent = 0
        var video: ContainerWriter.VideoTrack
        var audio: ContainerWriter.AudioTrack?
        var videoBitrateKbps: Int
        /// The last packet's FLV timestamp: where headers sent mid-stream go, so time never steps back.
        var lastTimestamp: UInt32 = 0
    }

    public convenience init(id: String, endpoint: RTMPEndpoint, format: ProgramFormat, group: any EventLoopGroup, policy: OutboundPolicy,
                            onState: @escaping @Sendable (DestinationState) -> Void) {
        self.init(id: id, endpoint: endpoint, video: format.videoTrack, audio: format.audioTrack, videoBitrateKbps: format.videoBitrateKbps,
                  group: group, policy: policy, onState: onState)
    }

    /// `video` is H.264, HEVC, AV1 or VP9; `videoBitrateKbps` is only told to the server.
    public init(id: String, endpoint: RTMPEndpoint, video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack?,
                videoBitrateKbps: Int, group: any EventLoopGroup, policy: OutboundPolicy, onState: @escaping @Sendable (DestinationState) -> Void) {
        self.id = id
        self.endpoint = endpoint
        self.group = group
        self.policy = policy
        self.onState = onState
        shared = Mutex(Shared(video: video, audio: audio, videoBitrateKbps: videoBitrateKbps))
    }

    /// New tracks for the packets that follow (a relayed encoder that came back, the slate):
    /// the server gets new sequence headers at once, and pictures resume at the next keyframe.
    public func changeTracks(video: ContainerWriter.VideoTrack, audio: ContainerWriter.AudioTrack?) {
        shared.withLock { shared in
            shared.video = video
            shared.audio = audio
            shared.gate.waiting = true
            if let connection = shared.connection { Self.sendHeaders(connection, shared, timestamp: shared.lastTimestamp) }
        }
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
                let connection = try await RTMPPushConnection.open(endpoint, group: group, policy: policy)
                if shared.withLock({ $0.stopping }) {
                    await connection.close()
                    break
                }
                failures = 0
                rejections = 0
                // Under the lock, so tracks changing meanwhile cannot slip between headers and pictures.
                shared.withLock { shared in
                    Self.sendHeaders(connection, shared, timestamp: 0)
                    shared.connection = connection
                    shared.gate.waiting = true
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
                case .forbidden(let why):
                    // The address will not become allowed by waiting; say so once and stop.
                    OutputMetrics.failures.increment()
                    set(.failed(reason: "not allowed: \(why)"))
                    return
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

    private static func sendHeaders(_ connection: RTMPPushConnection, _ shared: Shared, timestamp: UInt32) {
        let video = shared.video
        // Enhanced RTMP names the codec by its FourCC, as a number, where classic FLV has 7.
        let fourCC = Self.fourCC(video.codec)
        let codecID = fourCC.map { Double($0.utf8.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) } ?? 7
        var metadata: [(String, AMF0Value)] = [
            ("width", .number(Double(video.width))), ("height", .number(Double(video.height))),
            ("framerate", .number(Double(video.framesPerSecond))), ("videocodecid", .number(codecID)),
            ("videodatarate", .number(Double(shared.videoBitrateKbps))),
        ]
        if let audio = shared.audio {
            metadata += [("audiocodecid", .number(10)), ("audiosamplerate", .number(Double(audio.sampleRate))),
                         ("audiochannels", .number(Double(audio.channels))), ("stereo", .boolean(audio.channels == 2))]
        }
        connection.sendMetadata(metadata + [("encoder", .string("Tally"))])
        let header = switch video.codec {
        case .hevc: try? FLVVideo.hevcSequenceHeader(parameterSets: video.parameterSets)
        case .av1, .vp9: FLVVideo.enhancedSequenceStart(fourCC: fourCC ?? "", record: video.parameterSets)
        default: try? FLVVideo.avcSequenceHeader(parameterSets: video.parameterSets)
        }
        if let header { connection.send(.video, timestamp: timestamp, body: header, flush: false) }
        if let audio = shared.audio {
            connection.send(.audio, timestamp: timestamp, body: FLVAudio.aacSequenceHeader(audioSpecificConfig: audio.audioSpecificConfig))
        }
    }

    /// Enhanced RTMP's name for a codec classic FLV has no number for.
    private static func fourCC(_ codec: VideoCodec) -> String? {
        switch codec {
        case .hevc: "hvc1"
        case .av1: "av01"
        case .vp9: "vp09"
        default: nil
        }
    }

    public func offer(_ packet: ProgramPacket) {
        let timestamp = UInt32(truncatingIfNeeded: max(0, packet.dts) / 1000)
        let admitted = shared.withLock { shared -> (RTMPPushConnection, VideoCodec)? in
            guard let connection = shared.connection else { return nil }
            guard shared.gate.admit(packet, hasRoom: connection.isWritable) else { return nil }
            shared.packetsSent += 1
            shared.lastTimestamp = timestamp
            return (connection, shared.video.codec)
        }
        guard let (connection, codec) = admitted else { return }
        switch packet.kind {
        case .video:
            let compositionTime = Int32((packet.pts - packet.dts) / 1000)
            let body = switch codec {
            case .hevc: FLVVideo.hevcFrame(annexB: packet.data, keyframe: packet.isKeyframe, compositionTime: compositionTime)
            case .av1, .vp9: FLVVideo.enhancedFrame(fourCC: Self.fourCC(codec) ?? "", data: packet.data, keyframe: packet.isKeyframe)
            default: FLVVideo.avcFrame(annexB: packet.data, keyframe: packet.isKeyframe, compositionTime: compositionTime)
            }
            connection.send(.video, timestamp: timestamp, body: body)
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
