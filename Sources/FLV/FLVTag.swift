/// FLV tag bodies (Adobe FLV spec v10.1, E.4) as RTMP carries them in audio (8), video (9)
/// and data (18) messages, for H.264 + AAC, plus enhanced RTMP's FourCC video header.
public enum FLVTagType: UInt8, Sendable {
    case audio = 8
    case video = 9
    case script = 18
}

public enum FLVError: Error, Equatable, CustomStringConvertible {
    case truncated(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .truncated(let what): "FLV: truncated \(what)"
        case .unsupported(let what): "FLV: unsupported \(what)"
        }
    }
}

public enum FLVVideo {
    /// An AVC sequence header: the AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1)
    /// built from Annex B SPS and PPS.
    public static func avcSequenceHeader(parameterSets: [UInt8]) throws(FLVError) -> [UInt8] {
        let units = AnnexB.nalUnits(parameterSets)
        let sps = units.filter { AnnexB.type($0) == 7 }
        let pps = units.filter { AnnexB.type($0) == 8 }
        guard let first = sps.first, first.count >= 4, !pps.isEmpty else { throw FLVError.truncated("parameter sets (need SPS and PPS)") }
        // The record counts SPS in 5 bits, PPS in 8 and sizes each unit in 16.
        guard sps.count <= 31, pps.count <= 255 else { throw FLVError.unsupported("\(sps.count) SPS and \(pps.count) PPS in one record") }
        guard (sps + pps).allSatisfy({ $0.count <= 0xFFFF }) else { throw FLVError.unsupported("parameter set over 65535 bytes") }
        var record: [UInt8] = [0x17, 0x00, 0, 0, 0]
        record += [1, first[first.startIndex + 1], first[first.startIndex + 2], first[first.startIndex + 3], 0xFF, 0xE0 | UInt8(sps.count)]
        for unit in sps { record += [UInt8(unit.count >> 8), UInt8(unit.count & 0xFF)] + unit }
        record.append(UInt8(pps.count))
        for unit in pps { record += [UInt8(unit.count >> 8), UInt8(unit.count & 0xFF)] + unit }
        return record
    }

    /// One coded picture: Annex B in, length-prefixed NAL units out. Access unit delimiters
    /// are left out; `compositionTime` is pts − dts in milliseconds.
    public static func avcFrame(annexB: [UInt8], keyframe: Bool, compositionTime: Int32 = 0) -> [UInt8] {
        var body: [UInt8] = [keyframe ? 0x17 : 0x27, 0x01]
        let cts = UInt32(bitPattern: compositionTime) & 0xFF_FFFF
        body += [UInt8(cts >> 16), UInt8(cts >> 8 & 0xFF), UInt8(cts & 0xFF)]
        body.reserveCapacity(annexB.count + 16)
        for unit in AnnexB.nalUnits(annexB) where AnnexB.type(unit) != 9 {
            let size = UInt32(unit.count)
            body += [UInt8(size >> 24), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF)]
            body += unit
        }
        return body
    }
}

public enum FLVAudio {
    /// AAC, 44 kHz flag, 16-bit, stereo: the header byte every AAC FLV tag starts with
    /// (the real rate is in the AudioSpecificConfig).
    static let aacHeader: UInt8 = 0xAF

    public static func aacSequenceHeader(audioSpecificConfig: [UInt8]) -> [UInt8] {
        [aacHeader, 0x00] + audioSpecificConfig
    }

    public static func aacFrame(_ raw: [UInt8]) -> [UInt8] {
        [aacHeader, 0x01] + raw
    }
}

/// A parsed video tag body: what an ingest needs to route it.
public struct FLVVideoTag: Sendable, Equatable {
    public enum Codec: Sendable, Equatable {
        case avc
        /// Enhanced RTMP: the FourCC (`hvc1`, `av01`, `vp09`, `avc1`).
        case fourCC(String)
        case legacy(UInt8)
    }

    public enum PacketKind: Sendable, Equatable {
        case sequenceHeader
        case frame
        case endOfSequence
        case other(UInt8)
    }

    public var codec: Codec
    public var isKeyframe: Bool
    public var kind: PacketKind
    public var compositionTime: Int32
    /// The codec data after the headers: a decoder configuration record or length-prefixed NAL units.
    public var payload: ArraySlice<UInt8>

    public static func parse(_ body: ArraySlice<UInt8>) throws(FLVError) -> FLVVideoTag {
        guard let first = body.first else { throw FLVError.truncated("video tag") }
        let frameType = (first >> 4) & 0x07
        if first & 0x80 != 0 {
            // Enhanced RTMP: [IsExHeader:1][FrameType:3][PacketType:4][FourCC:32].
            guard body.count >= 5 else { throw FLVError.truncated("enhanced video header") }
            let packetType = first & 0x0F
            let fourCC = String(decoding: body[body.startIndex + 1..<body.startIndex + 5], as: UTF8.self)
            var offset = body.startIndex + 5
            var composition: Int32 = 0
            let kind: PacketKind
            switch packetType {
            case 0: kind = .sequenceHeader
            case 1:
                kind = .frame
                if fourCC == "avc1" || fourCC == "hvc1" {
                    guard body.count >= 8 else { throw FLVError.truncated("composition time") }
                    composition = Self.signed24(body[offset], body[offset + 1], body[offset + 2])
                    offset += 3
                }
            case 2: kind = .endOfSequence
            case 3: kind = .frame
            default: kind = .other(packetType)
            }
            return FLVVideoTag(codec: .fourCC(fourCC), isKeyframe: frameType == 1, kind: kind, compositionTime: composition, payload: body[offset...])
        }
        let codecID = first & 0x0F
        guard codecID == 7 else {
            return FLVVideoTag(codec: .legacy(codecID), isKeyframe: frameType == 1, kind: .frame, compositionTime: 0, payload: body.dropFirst())
        }
        guard body.count >= 5 else { throw FLVError.truncated("AVC video header") }
        let packetType = body[body.startIndex + 1]
        let kind: PacketKind = switch packetType {
        case 0: .sequenceHeader
        case 1: .frame
        case 2: .endOfSequence
        default: .other(packetType)
        }
        let start = body.startIndex
        return FLVVideoTag(codec: .avc, isKeyframe: frameType == 1, kind: kind,
                           compositionTime: Self.signed24(body[start + 2], body[start + 3], body[start + 4]), payload: body[(start + 5)...])
    }

    static func signed24(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> Int32 {
        let value = Int32(a) << 16 | Int32(b) << 8 | Int32(c)
        return value & 0x80_0000 != 0 ? value - 0x100_0000 : value
    }

    /// Length-prefixed NAL units (`lengthSize` bytes each, from the configuration record)
    /// back to Annex B.
    public static func annexB(lengthPrefixed payload: ArraySlice<UInt8>, lengthSize: Int = 4) throws(FLVError) -> [UInt8] {
        guard (1...4).contains(lengthSize) else { throw FLVError.unsupported("NAL length size \(lengthSize)") }
        var output: [UInt8] = []
        output.reserveCapacity(payload.count + 16)
        var index = payload.startIndex
        while index < payload.endIndex {
            guard index + lengthSize <= payload.endIndex else { throw FLVError.truncated("NAL length") }
            var size = 0
            for byte in payload[index..<index + lengthSize] { size = size << 8 | Int(byte) }
            index += lengthSize
            guard size <= payload.endIndex - index else { throw FLVError.truncated("NAL unit") }
            output += [0, 0, 0, 1]
            output += payload[index..<index + size]
            index += size
        }
        return output
    }
}

/// An AVCDecoderConfigurationRecord, read back to Annex B parameter sets.
public struct AVCDecoderConfiguration: Sendable, Equatable {
    public var lengthSize: Int
    public var parameterSets: [UInt8]

    public static func parse(_ record: ArraySlice<UInt8>) throws(FLVError) -> AVCDecoderConfiguration {
        guard record.count >= 7, record.first == 1 else { throw FLVError.truncated("AVC decoder configuration") }
        var index = record.startIndex + 4
        let lengthSize = Int(record[index] & 0x03) + 1
        index += 1
        var sets: [UInt8] = []
        for countMask in [UInt8(0x1F), 0xFF] {
            guard index < record.endIndex else { throw FLVError.truncated("parameter set count") }
            let count = Int(record[index] & countMask)
            index += 1
            for _ in 0..<count {
                sets += [0, 0, 0, 1]
                sets += try Self.sizedUnit(record, at: &index, what: "parameter set")
            }
        }
        return AVCDecoderConfiguration(lengthSize: lengthSize, parameterSets: sets)
    }

    /// One NAL unit of a decoder configuration record, after its 16-bit length.
    static func sizedUnit(_ record: ArraySlice<UInt8>, at index: inout Int, what: String) throws(FLVError) -> ArraySlice<UInt8> {
        guard index + 2 <= record.endIndex else { throw FLVError.truncated("\(what) length") }
        let size = Int(record[index]) << 8 | Int(record[index + 1])
        index += 2
        guard size <= record.endIndex - index else { throw FLVError.truncated(what) }
        defer { index += size }
        return record[index..<index + size]
    }
}

/// A parsed audio tag body.
public struct FLVAudioTag: Sendable, Equatable {
    /// SoundFormat: 10 is AAC.
    public var format: UInt8
    /// For AAC: whether this is the AudioSpecificConfig rather than a frame.
    public var isSequenceHeader: Bool
    public var payload: ArraySlice<UInt8>

    public static func parse(_ body: ArraySlice<UInt8>) throws(FLVError) -> FLVAudioTag {
        guard let first = body.first else { throw FLVError.truncated("audio tag") }
        let format = first >> 4
        guard format == 10 else { return FLVAudioTag(format: format, isSequenceHeader: false, payload: body.dropFirst()) }
        guard body.count >= 2 else { throw FLVError.truncated("AAC packet type") }
        return FLVAudioTag(format: format, isSequenceHeader: body[body.startIndex + 1] == 0, payload: body.dropFirst(2))
    }
}
