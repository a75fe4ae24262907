import Dispatch
import FLV
import Foundation
import Logging
import MediaCodecs
import SFU
import Synchronization

/// The server's copy of one participant while the show is recorded: their camera and
/// microphone as they arrived (the best simulcast layer, reassembled, never decoded or
/// re-encoded) in a Matroska file, beside the participant's own upload. It is what a
/// participant whose upload never finishes still has. Packets come off the SFU's loop and
/// are written on a queue of the recorder's own.
public final class TrackRecorder: Sendable {
    public struct Summary: Sendable, Equatable {
        public var width: Int
        public var height: Int
        public var durationSeconds: Double
        public var bytes: Int64
    }

    public let path: String
    private let broadcastID: String
    private let participantID: ParticipantID
    private let sfu: SFU
    private let logger: Logger
    private let queue = DispatchQueue(label: "tally.track-recorder")
    private let state = Mutex(State())
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant

    /// Audio held until the first video keyframe opens the file: at most this many packets
    /// (5 s of Opus), the oldest dropped first.
    private static let heldAudio = 250

    private struct State: @unchecked Sendable {
        var assembler: FrameAssembler?
        var codec: VideoCodec?
        var writer: ContainerWriter?
        var failed = false
        var size: (width: Int, height: Int)?
        var video = Timeline()
        var audio = Timeline()
        var held: [ProgramPacket] = []
        var firstMicros: Int64?
        var lastMicros: Int64 = 0
    }

    /// One track's RTP clock unrolled into microseconds from the recorder's start.
    private struct Timeline {
        private var last: UInt32?
        private var ticks: Int64 = 0
        private var offset: Int64 = 0

        mutating func micros(_ timestamp: UInt32, clockRate: Int, arrivedAfter: Duration) -> Int64 {
            if let last {
                ticks += Int64(Int32(bitPattern: timestamp &- last))
            } else {
                // The first packet places the track on the recorder's clock by when it arrived.
                offset = arrivedAfter.components.seconds * 1_000_000 + arrivedAfter.components.attoseconds / 1_000_000_000_000
            }
            last = timestamp
            return offset + ticks * 1_000_000 / Int64(max(1, clockRate))
        }

        /// Another simulcast layer has a clock of its own: start again from when its first packet came.
        mutating func restart() {
            last = nil
            ticks = 0
        }
    }

    public init(path: String, broadcastID: String, participantID: ParticipantID, sfu: SFU, logger: Logger) {
        self.path = path
        self.broadcastID = broadcastID
        self.participantID = participantID
        self.sfu = sfu
        self.logger = logger
        started = clock.now
    }

    public func start() async {
        await sfu.tap(broadcastID: broadcastID, participantID: participantID, purpose: .recording) { [self] packet in
            queue.async { self.write(packet) }
        }
    }

    /// Stops taking packets and completes the file (trailer, index).
    public func stop() async -> Summary {
        await sfu.untap(broadcastID: broadcastID, participantID: participantID, purpose: .recording)
        let (size, micros) = queue.sync {
            state.withLock { state -> ((width: Int, height: Int)?, Int64) in
                try? state.writer?.finish()
                return (state.size, state.lastMicros - (state.firstMicros ?? state.lastMicros))
            }
        }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        return Summary(width: size?.width ?? 0, height: size?.height ?? 0, durationSeconds: Double(micros) / 1_000_000, bytes: bytes)
    }

    private func write(_ tapped: TappedPacket) {
        let arrived = clock.now - started
        var keyframeNeeded = false
        state.withLock { state in
            guard !state.failed else { return }
            if tapped.kind == .audio {
                guard tapped.codec.lowercased() == "opus" else { return }
                let micros = state.audio.micros(tapped.packet.timestamp, clockRate: tapped.clockRate, arrivedAfter: arrived)
                let packet = ProgramPacket(kind: .audio, data: Array(tapped.packet.payload), pts: micros, dts: micros, isKeyframe: true)
                if state.writer == nil {
                    state.held.append(packet)
                    if state.held.count > Self.heldAudio { state.held.removeFirst() }
                } else {
                    append(packet, to: &state)
                }
                return
            }
            guard let codec = VideoCodec(sdpName: tapped.codec) else { return }
            if state.assembler == nil || tapped.layerChanged {
                state.assembler = FrameAssembler(codec: codec)
                state.codec = codec
                state.video.restart()
            }
            guard var assembler = state.assembler else { return }
            let frames = assembler.insert(tapped.packet, now: arrived)
            keyframeNeeded = assembler.keyframeNeeded
            assembler.keyframeNeeded = false
            state.assembler = assembler
            for frame in frames {
                if state.writer == nil {
                    guard frame.isKeyframe else { continue }
                    open(with: frame, codec: codec, state: &state)
                    guard state.writer != nil else { return }
                }
                let micros = state.video.micros(frame.rtpTimestamp, clockRate: tapped.clockRate, arrivedAfter: arrived)
                append(ProgramPacket(kind: .video, data: frame.data, pts: micros, dts: micros, isKeyframe: frame.isKeyframe), to: &state)
            }
        }
        if keyframeNeeded { sfu.requestKeyframe(broadcastID: broadcastID, participantID: participantID, purpose: .recording) }
    }

    /// Opens the file at the first keyframe, which gives the picture's size (decoded once) and,
    /// for H.264, the parameter sets.
    private func open(with keyframe: EncodedFrame, codec: VideoCodec, state: inout State) {
        do {
            guard let picture = try VideoDecoders.make(codec).decode(keyframe) else { return }
            let parameterSets = codec == .h264
                ? AnnexB.nalUnits(keyframe.data).filter { [7, 8].contains(AnnexB.type($0)) }.flatMap { [0, 0, 0, 1] + $0 } : []
            state.writer = try ContainerWriter(format: .matroska, path: path,
                                               video: .init(codec: codec, width: picture.width, height: picture.height, parameterSets: parameterSets),
                                               audio: .opus)
            state.size = (picture.width, picture.height)
            for packet in state.held { append(packet, to: &state) }
            state.held = []
        } catch {
            state.failed = true
            logger.error("participant copy not started", metadata: ["broadcast": "\(broadcastID)", "participant": "\(participantID)", "error": "\(error)"])
        }
    }

    private func append(_ packet: ProgramPacket, to state: inout State) {
        do {
            try state.writer?.write(packet)
            state.firstMicros = min(state.firstMicros ?? packet.pts, packet.pts)
            state.lastMicros = max(state.lastMicros, packet.pts)
        } catch {
            state.failed = true
            logger.error("participant copy stopped", metadata: ["broadcast": "\(broadcastID)", "participant": "\(participantID)", "error": "\(error)"])
        }
    }
}
