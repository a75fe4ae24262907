import Dispatch
import Logging
import MediaCodecs
import Metrics
import Outputs
import SDP
import SFU
import Synchronization

/// The program for WebRTC players (WHEP): the one H.264 encode packetized as it is, the AAC
/// decoded and encoded to Opus, both published into the SFU router `program:{broadcast}`,
/// where each player is a consumer with NACKs, congestion control and sender reports.
///
/// Work happens on a queue of its own, so the encoder thread only hands packets over.
/// A player's keyframe request is answered by the encoder's next scheduled keyframe (every
/// two seconds): the program is one encode for every output. While nobody plays, the sound
/// is not transcoded; the pictures still go to the router (packetizing costs next to
/// nothing), which is how the source learns that a player has come.
public final class ProgramPlayers: ProgramOutput {
    public static let participantID = ParticipantID("program")
    /// H.264 as browsers offer it. The program is x264's High profile without B-frames;
    /// decoders built on FFmpeg (Chromium, Safari) take it under this label.
    static let video = LocalSource.Track(kind: .video, codec: RTPCodec(payloadType: 102, name: "H264", clockRate: 90000,
        parameters: [("level-asymmetry-allowed", "1"), ("packetization-mode", "1"), ("profile-level-id", "42e01f")]))
    static let audio = LocalSource.Track(kind: .audio, codec: RTPCodec(payloadType: 111, name: "opus", clockRate: 48000, channels: 2,
        parameters: [("minptime", "10"), ("useinbandfec", "1")]))

    public static func routerID(_ broadcastID: String) -> String { "program:\(broadcastID)" }

    /// Opus packets made for players: none while nobody plays.
    static let opusPackets = Counter(label: "tally_program_player_opus_packets_total")

    private let source: LocalSource
    private let queue = DispatchQueue(label: "tally.program.players")
    private let state: Mutex<State>
    private let logger: Logger

    private struct State: @unchecked Sendable {
        var aac: AACDecoder?
        var opus: OpusEncoder?
        /// The Opus clock: samples encoded since the first, from the first AAC frame's time.
        var audioStart: Int64?
        var samplesSent: Int64 = 0
        var pending = 0
    }

    init(source: LocalSource, audio: ContainerWriter.AudioTrack?, logger: Logger) throws {
        self.source = source
        self.logger = logger
        var state = State()
        if let audio {
            state.aac = try AACDecoder(audioSpecificConfig: audio.audioSpecificConfig)
            state.opus = try OpusEncoder()
        }
        self.state = Mutex(state)
    }

    /// Drops rather than queue without bound: a player misses what it would have got late.
    public func offer(_ packet: ProgramPacket) {
        let admitted = state.withLock { state -> Bool in
            guard state.pending < 240 else { return false }
            state.pending += 1
            return true
        }
        guard admitted else { return }
        queue.async { [self] in
            defer { state.withLock { $0.pending -= 1 } }
            switch packet.kind {
            case .video: sendVideo(packet)
            case .audio: sendAudio(packet)
            }
        }
    }

    private func sendVideo(_ packet: ProgramPacket) {
        let timestamp = UInt32(truncatingIfNeeded: packet.pts * 90 / 1000)
        let payloads = H264Packetizer.payloads(packet.data)
        for (index, payload) in payloads.enumerated() {
            source.send(kind: .video, payload: payload, timestamp: timestamp, marker: index == payloads.count - 1)
        }
    }

    private func sendAudio(_ packet: ProgramPacket) {
        let packets: [(payload: [UInt8], timestamp: UInt32)] = state.withLock { state in
            guard let aac = state.aac, let opus = state.opus else { return [] }
            guard source.isWatched else {
                // The Opus clock starts again from the program's when a player comes.
                state.audioStart = nil
                state.samplesSent = 0
                return []
            }
            do {
                let samples = try aac.decode(packet.data)
                if state.audioStart == nil { state.audioStart = packet.pts * 48 / 1000 }
                return try opus.encode(samples).map { payload in
                    defer { state.samplesSent += Int64(OpusEncoder.samplesPerPacket) }
                    return (payload, UInt32(truncatingIfNeeded: (state.audioStart ?? 0) + state.samplesSent))
                }
            } catch {
                logger.debug("program players: audio dropped", metadata: ["error": "\(error)"])
                return []
            }
        }
        ProgramPlayers.opusPackets.increment(by: packets.count)
        for packet in packets { source.send(kind: .audio, payload: packet.payload, timestamp: packet.timestamp, marker: false) }
    }
}
