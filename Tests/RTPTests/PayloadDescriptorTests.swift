import Testing
@testable import RTP

@Suite("Payload descriptors: VP8, VP9, H.264, Opus")
struct PayloadDescriptorTests {
    @Test("VP8: a keyframe with a 15-bit picture ID, TL0PICIDX and temporal layer")
    func vp8Keyframe() throws {
        let payload: [UInt8] = [
            0x90,       // X=1 S=1 PID=0
            0xE0,       // I L T
            0x92, 0x34, // M=1, picture ID 0x1234
            0x05,       // TL0PICIDX
            0x60,       // TID=1 Y=1
            0x10,       // frame header: P=0, a keyframe
        ]
        let descriptor = try #require(VP8Descriptor.parse(payload[...]))
        #expect(descriptor.isKeyframe && descriptor.pictureID == 0x1234 && descriptor.longPictureID)
        #expect(descriptor.tl0PictureIndex == 5 && descriptor.temporalID == 1 && descriptor.layerSync)
        #expect(descriptor.payloadOffset == 6)
    }

    @Test("VP8: renumbering wraps the 15-bit and 7-bit picture ID and TL0PICIDX in place, and leaves a cut-short descriptor alone")
    func vp8Renumber() {
        var long: [UInt8] = [0x90, 0xC0, 0xFF, 0xFE, 0xFF, 0x10]
        let written = long.withUnsafeMutableBytes { VP8Descriptor.renumber($0, pictureIDDelta: 3, tl0Delta: 2) }
        #expect(written.pictureID == 1 && written.tl0PictureIndex == 1)
        #expect(long == [0x90, 0xC0, 0x80, 0x01, 0x01, 0x10])
        var short: [UInt8] = [0x90, 0x80, 0x7F, 0x10]
        let wrapped = short.withUnsafeMutableBytes { VP8Descriptor.renumber($0, pictureIDDelta: 1, tl0Delta: 0) }
        #expect(wrapped.pictureID == 0)
        #expect(short == [0x90, 0x80, 0x00, 0x10])
        var cut: [UInt8] = [0x90, 0x80, 0x80]
        let untouched = cut.withUnsafeMutableBytes { VP8Descriptor.renumber($0, pictureIDDelta: 1, tl0Delta: 0) }
        #expect(untouched.pictureID == nil)
        #expect(cut == [0x90, 0x80, 0x80])
    }

    @Test("VP9: renumbering moves the picture ID and, in non-flexible mode only, TL0PICIDX")
    func vp9Renumber() {
        var nonFlexible: [UInt8] = [0xA8, 0x80, 0x05, 0x00, 0x10, 0xAB] // I L B, picture ID 5, TID/SID 0, TL0PICIDX 16
        let written = nonFlexible.withUnsafeMutableBytes { VP9Descriptor.renumber($0, pictureIDDelta: 0x7FFF, tl0Delta: 0xFF) }
        #expect(written.pictureID == 4 && written.tl0PictureIndex == 15)
        #expect(VP9Descriptor.parse(nonFlexible[...])?.pictureID == 4 && VP9Descriptor.parse(nonFlexible[...])?.tl0PictureIndex == 15)
        var flexible: [UInt8] = [0xB8, 0x80, 0x05, 0x00, 0xAB] // I L F B: no TL0PICIDX
        let moved = flexible.withUnsafeMutableBytes { VP9Descriptor.renumber($0, pictureIDDelta: 2, tl0Delta: 9) }
        #expect(moved.pictureID == 7 && moved.tl0PictureIndex == nil && flexible == [0xB8, 0x80, 0x07, 0x00, 0xAB])
    }

    @Test("VP8: inter frames and later packets are not keyframes; truncation is nil", arguments: [
        ([0x10, 0x01], false), // S=1 PID=0, P=1
        ([0x00, 0x00], false), // S=0
        ([0x11, 0x00], false), // PID=1
    ] as [([UInt8], Bool)])
    func vp8NotKey(payload: [UInt8], key: Bool) throws {
        #expect(try #require(VP8Descriptor.parse(payload[...])).isKeyframe == key)
    }

    @Test("VP8 refuses truncated descriptors", arguments: [
        [UInt8](),          // empty
        [0x80],             // X set, no extension byte
        [0x90, 0x80],       // I set, no picture ID
        [0x90, 0x80, 0x81], // 15-bit picture ID, no frame data
    ])
    func vp8Truncated(payload: [UInt8]) {
        #expect(VP8Descriptor.parse(payload[...]) == nil)
    }

    @Test("VP9 refuses truncated descriptors", arguments: [
        [UInt8](),          // empty
        [0x80],             // I set, no picture ID
        [0xA0, 0x01],       // I and L set, no layer byte
        [0xA0, 0x01, 0x00], // non-flexible, no TL0PICIDX
        [0x02],             // V set, no scalability structure
        [0x12, 0x10, 0x02], // SS promises a resolution it does not carry
    ])
    func vp9Truncated(payload: [UInt8]) {
        #expect(VP9Descriptor.parse(payload[...]) == nil)
    }

    @Test("VP9: a non-flexible keyframe with its scalability structure")
    func vp9Keyframe() throws {
        let payload: [UInt8] = [
            0xAA,                   // I=1 P=0 L=1 F=0 B=1 E=0 V=1
            0x05,                   // picture ID 5
            0x00,                   // TID=0 U=0 SID=0 D=0
            0x03,                   // TL0PICIDX
            0x10,                   // SS: one layer, Y=1 (resolutions), G=0
            0x02, 0x80, 0x01, 0x68, // 640 x 360
            0x00,                   // frame data
        ]
        let descriptor = try #require(VP9Descriptor.parse(payload[...]))
        #expect(descriptor.isKeyframe && descriptor.pictureID == 5 && descriptor.tl0PictureIndex == 3)
        #expect(descriptor.resolutions.map(\.width) == [640] && descriptor.resolutions.map(\.height) == [360])
        #expect(descriptor.payloadOffset == 9)
    }

    @Test("VP9: a flexible-mode inter frame on an upper layer")
    func vp9Flexible() throws {
        let payload: [UInt8] = [
            0xFC,       // I=1 P=1 L=1 F=1 B=1 E=1
            0x81, 0x23, // M=1, picture ID 0x0123
            0x53,       // TID=2 U=1 SID=1 D=1
            0x03, 0x04, // P_DIFF 1 (N=1), P_DIFF 2 (N=0)
            0x00,
        ]
        let descriptor = try #require(VP9Descriptor.parse(payload[...]))
        #expect(!descriptor.isKeyframe && descriptor.pictureID == 0x0123)
        #expect(descriptor.temporalID == 2 && descriptor.switchingUp && descriptor.spatialID == 1 && descriptor.interLayerDependent)
        #expect(descriptor.tl0PictureIndex == nil && descriptor.payloadOffset == 6)
    }

    @Test("H.264: STAP-A with SPS, PPS and IDR is a keyframe")
    func h264Aggregate() throws {
        let payload: [UInt8] = [
            0x18,                   // STAP-A
            0x00, 0x02, 0x67, 0x42, // SPS
            0x00, 0x02, 0x68, 0xCE, // PPS
            0x00, 0x03, 0x65, 0x88, 0x84, // IDR slice
        ]
        let parsed = try #require(H264Payload.parse(payload[...]))
        #expect(parsed.packetization == .aggregate && parsed.nalTypes == [7, 8, 5] && parsed.isKeyframe)
    }

    @Test("H.264: FU-A starts, middles and singles", arguments: [
        ([0x7C, 0x85, 0x00], H264Payload.Packetization.fragment(start: true, end: false), true), // FU-A start of IDR
        ([0x7C, 0x05, 0x00], .fragment(start: false, end: false), false),                        // FU-A middle
        ([0x41, 0x9A], .single, false),                                                          // non-IDR slice
        ([0x65, 0x88], .single, true),                                                           // IDR slice
    ] as [([UInt8], H264Payload.Packetization, Bool)])
    func h264(payload: [UInt8], packetization: H264Payload.Packetization, key: Bool) throws {
        let parsed = try #require(H264Payload.parse(payload[...]))
        #expect(parsed.packetization == packetization && parsed.isKeyframe == key)
    }

    @Test("H.264: malformed payloads are nil", arguments: [
        [UInt8](), [0x80], [0x00], [0x18, 0x00, 0x09, 0x67], [0x7C, 0xC5], [0x7C],
    ])
    func h264Malformed(payload: [UInt8]) {
        #expect(H264Payload.parse(payload[...]) == nil)
    }

    @Test("Opus: the TOC byte gives mode, frame length and channels", arguments: [
        (UInt8(0xFC), OpusPayload.Mode.celt, 20_000, true),  // config 31: CELT fullband 20 ms, stereo
        (0x78, .hybrid, 20_000, false),                      // config 15: hybrid fullband 20 ms
        (0x08, .silk, 20_000, false),                        // config 1: SILK narrowband 20 ms
    ])
    func opus(toc: UInt8, mode: OpusPayload.Mode, duration: Int, stereo: Bool) throws {
        let parsed = try #require(OpusPayload.parse([toc][...]))
        #expect(parsed.mode == mode && parsed.frameDuration == duration && parsed.stereo == stereo)
    }
}
