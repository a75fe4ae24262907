import Foundation
@testable import MediaCodecs
import Testing

@Suite("Matroska: a participant's tracks kept as they came")
struct MatroskaTests {
    @Test("VP8 and Opus go into Matroska with Opus's identification header, and read back at their size and length")
    func vp8AndOpus() throws {
        let frames = try Fixture.vp8Frames(count: 60)
        let path = Fixture.temporary("copy.mkv")
        let remuxed = Fixture.temporary("copy.webm")
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: remuxed)
        }
        #expect(ContainerWriter.AudioTrack.opus.opusHead == Array("OpusHead".utf8) + [1, 2, 0, 0, 0x80, 0xBB, 0, 0, 0, 0, 0])
        let writer = try ContainerWriter(format: .matroska, path: path, video: .init(codec: .vp8, width: 320, height: 240, parameterSets: []), audio: .opus)
        let encoder = try OpusEncoder()
        // Two seconds of a 440 Hz tone, stereo.
        let tone = (0..<(48_000 * 2 * 2)).map { (index: Int) -> Float in
            let seconds = Double(index / 2) / 48_000
            return Float(sin(seconds * 2 * Double.pi * 440) * 0.3)
        }
        let opus = try encoder.encode(tone)
        for (index, frame) in frames.enumerated() {
            let micros = Int64(index) * 33_333
            try writer.write(ProgramPacket(kind: .video, data: frame, pts: micros, dts: micros, isKeyframe: index % 10 == 0))
        }
        for (index, packet) in opus.enumerated() {
            let micros = Int64(index) * 20_000
            try writer.write(ProgramPacket(kind: .audio, data: packet, pts: micros, dts: micros, isKeyframe: true))
        }
        try writer.finish()
        let summary = try MediaFileRemux.remux(input: path, output: remuxed)
        #expect(summary.width == 320 && summary.height == 240)
        #expect(summary.videoCodec == "vp8" && summary.audioCodec == "opus")
        #expect(abs(summary.durationSeconds - 2) < 0.1, "\(summary.durationSeconds)")
    }
}
