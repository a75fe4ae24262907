import Foundation
@testable import MediaCodecs
import Testing

@Suite("Clips: a host's video files decoded for the program")
struct MediaFileDecoderTests {
    /// A red 320×240 picture with a 1 kHz tone, `seconds` long.
    static func clip(_ name: String, seconds: Int = 2, codecs: [String]) throws -> String {
        let path = Fixture.temporary(name)
        try Fixture.run(["-f", "lavfi", "-i", "color=red:s=320x240:r=25", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100",
                         "-t", "\(seconds)", "-pix_fmt", "yuv420p"] + codecs + [path])
        return path
    }

    @Test("an MP4 of H.264 and AAC: every picture red at its size, sound as 48 kHz stereo, times from zero; it rewinds to its start")
    func mp4() throws {
        let path = try Self.clip("clip.mp4", codecs: ["-c:v", "libx264", "-c:a", "aac"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let head = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(16))
        #expect(MediaFileDecoder.Container.sniff(head) == .mp4)
        let decoder = try MediaFileDecoder(path: path, container: .mp4)
        #expect(decoder.info.width == 320 && decoder.info.height == 240 && decoder.info.videoCodec == "h264" && decoder.info.hasAudio)
        #expect(abs(decoder.info.durationSeconds - 2) < 0.1, "\(decoder.info.durationSeconds)")
        var pictures: [(VideoFrame, Double)] = []
        var samples = 0
        while let output = try decoder.next() {
            switch output {
            case .picture(let picture, let seconds): pictures.append((picture, seconds))
            case .sound(let sound, _): samples += sound.count
            }
        }
        #expect(pictures.count == 50)
        #expect(pictures.first?.1 == 0 && abs((pictures.last?.1 ?? 0) - 1.96) < 0.01)
        for (picture, _) in pictures {
            // Red in BT.601 limited range: Y 81, U 90, V 240.
            #expect(abs(Int(picture.y[picture.y.count / 2]) - 81) < 6 && abs(Int(picture.v[picture.v.count / 2]) - 240) < 6)
        }
        #expect(abs(samples / 2 - 96_000) < 4_800, "\(samples / 2) samples per channel")
        try decoder.rewind()
        guard case .picture(_, let seconds)? = try decoder.next() else {
            Issue.record("no picture after rewinding")
            return
        }
        #expect(seconds < 0.05)
    }

    @Test("WebM of VP9 and Opus, and a MOV, scaled down to fit what is asked")
    func webmAndMOV() throws {
        let webm = try Self.clip("clip.webm", seconds: 1, codecs: ["-c:v", "libvpx-vp9", "-c:a", "libopus"])
        let mov = try Self.clip("clip.mov", seconds: 1, codecs: ["-c:v", "libx264", "-c:a", "aac"])
        defer {
            try? FileManager.default.removeItem(atPath: webm)
            try? FileManager.default.removeItem(atPath: mov)
        }
        for (path, container) in [(webm, MediaFileDecoder.Container.matroska), (mov, .mp4)] {
            let head = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(16))
            #expect(MediaFileDecoder.Container.sniff(head) == container)
            let decoder = try MediaFileDecoder(path: path, container: container, maxWidth: 160, maxHeight: 160)
            #expect(decoder.info.hasAudio)
            var sawSound = false
            var size: (Int, Int)?
            while let output = try decoder.next() {
                switch output {
                case .picture(let picture, _): size = (picture.width, picture.height)
                case .sound: sawSound = true
                }
            }
            #expect(size.map { $0 == (160, 120) } == true, "\(String(describing: size))")
            #expect(sawSound)
        }
    }

    @Test("what is not a video file is refused with a reason, and a thumbnail is a JPEG of the picture")
    func refusalsAndThumbnail() throws {
        #expect(MediaFileDecoder.Container.sniff(Array("#EXTM3U\nhttp://x".utf8)) == nil)
        let audioOnly = Fixture.temporary("tone.webm")
        try Fixture.run(["-f", "lavfi", "-i", "sine=frequency=1000", "-t", "1", "-c:a", "libopus", audioOnly])
        let garbage = Fixture.temporary("garbage.mp4")
        try Data([0, 0, 0, 0x18] + Array("ftypisom".utf8) + [UInt8](repeating: 0x41, count: 2000)).write(to: URL(fileURLWithPath: garbage))
        defer {
            try? FileManager.default.removeItem(atPath: audioOnly)
            try? FileManager.default.removeItem(atPath: garbage)
        }
        #expect(throws: CodecError("the file has no video stream")) { try MediaFileDecoder(path: audioOnly, container: .matroska) }
        #expect(throws: CodecError.self) { try MediaFileDecoder(path: garbage, container: .mp4) }
        let jpeg = try JPEGEncoder.encode(VideoFrame(width: 320, height: 180, fill: (81, 90, 240)))
        #expect(jpeg.starts(with: [0xFF, 0xD8, 0xFF]))
        let decoded = try ImageDecoder.decode(jpeg, maxWidth: 4096, maxHeight: 4096).picture
        #expect(decoded.width == 320 && decoded.height == 180)
        // Red still: the JPEG's full range comes back in limited range, a shade nearer grey.
        #expect(decoded.v[decoded.v.count / 2] > 200 && decoded.u[decoded.u.count / 2] < 110)
    }
}
