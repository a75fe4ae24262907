/// The VP9 payload descriptor (RFC 9628 §4.2), flexible and non-flexible modes, with the
/// scalability structure's resolutions when present.
///
///         +-+-+-+-+-+-+-+-+
///         |I|P|L|F|B|E|V|Z| (REQUIRED)
///         +-+-+-+-+-+-+-+-+
///    I:   |M| PICTURE ID  | (7 or 15 bits)
///    L:   | TID |U| SID |D|
///         |   TL0PICIDX   | (non-flexible mode only)
///    P,F: | P_DIFF      |N| (up to 3 times)
///    V:   | SS ...        |
public struct VP9Descriptor: Sendable, Equatable {
    public var interPicturePredicted: Bool
    public var flexibleMode: Bool
    public var startOfFrame: Bool
    public var endOfFrame: Bool
    public var pictureID: UInt16?
    public var temporalID: UInt8?
    public var switchingUp: Bool
    public var spatialID: UInt8?
    public var interLayerDependent: Bool
    public var tl0PictureIndex: UInt8?
    /// Per spatial layer, from the scalability structure (V=1), when it gives them.
    public var resolutions: [(width: UInt16, height: UInt16)]
    public var payloadOffset: Int

    /// The start of a picture that needs no earlier picture, on the base spatial layer.
    public var isKeyframe: Bool {
        !interPicturePredicted && startOfFrame && (spatialID ?? 0) == 0
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.interPicturePredicted == rhs.interPicturePredicted && lhs.flexibleMode == rhs.flexibleMode
            && lhs.startOfFrame == rhs.startOfFrame && lhs.endOfFrame == rhs.endOfFrame && lhs.pictureID == rhs.pictureID
            && lhs.temporalID == rhs.temporalID && lhs.switchingUp == rhs.switchingUp && lhs.spatialID == rhs.spatialID
            && lhs.interLayerDependent == rhs.interLayerDependent && lhs.tl0PictureIndex == rhs.tl0PictureIndex
            && lhs.resolutions.map(\.width) == rhs.resolutions.map(\.width) && lhs.resolutions.map(\.height) == rhs.resolutions.map(\.height)
            && lhs.payloadOffset == rhs.payloadOffset
    }

    public static func parse(_ payload: ArraySlice<UInt8>) -> VP9Descriptor? {
        var reader = SliceReader(payload)
        guard let first = reader.byte() else { return nil }
        var descriptor = VP9Descriptor(
            interPicturePredicted: first & 0x40 != 0, flexibleMode: first & 0x10 != 0, startOfFrame: first & 0x08 != 0,
            endOfFrame: first & 0x04 != 0, pictureID: nil, temporalID: nil, switchingUp: false, spatialID: nil,
            interLayerDependent: false, tl0PictureIndex: nil, resolutions: [], payloadOffset: 0)
        if first & 0x80 != 0 {
            guard let high = reader.byte() else { return nil }
            if high & 0x80 != 0 {
                guard let low = reader.byte() else { return nil }
                descriptor.pictureID = UInt16(high & 0x7F) << 8 | UInt16(low)
            } else {
                descriptor.pictureID = UInt16(high)
            }
        }
        if first & 0x20 != 0 {
            guard let layers = reader.byte() else { return nil }
            descriptor.temporalID = layers >> 5
            descriptor.switchingUp = layers & 0x10 != 0
            descriptor.spatialID = (layers >> 1) & 0x07
            descriptor.interLayerDependent = layers & 0x01 != 0
            if !descriptor.flexibleMode {
                guard let tl0 = reader.byte() else { return nil }
                descriptor.tl0PictureIndex = tl0
            }
        }
        if descriptor.flexibleMode && descriptor.interPicturePredicted {
            for _ in 0..<3 {
                guard let reference = reader.byte() else { return nil }
                if reference & 0x01 == 0 { break }
            }
        }
        if first & 0x02 != 0 {
            guard let structure = reader.byte() else { return nil }
            let layerCount = Int(structure >> 5) + 1
            if structure & 0x10 != 0 {
                for _ in 0..<layerCount {
                    guard let w1 = reader.byte(), let w2 = reader.byte(), let h1 = reader.byte(), let h2 = reader.byte() else { return nil }
                    descriptor.resolutions.append((UInt16(w1) << 8 | UInt16(w2), UInt16(h1) << 8 | UInt16(h2)))
                }
            }
            if structure & 0x08 != 0 {
                guard let groups = reader.byte() else { return nil }
                for _ in 0..<groups {
                    guard let group = reader.byte() else { return nil }
                    for _ in 0..<((group >> 2) & 0x03) {
                        guard reader.byte() != nil else { return nil }
                    }
                }
            }
        }
        descriptor.payloadOffset = reader.consumed
        return descriptor
    }
}

/// A cursor over a slice that returns nil instead of trapping at the end.
struct SliceReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    var consumed: Int { index - bytes.startIndex }

    mutating func byte() -> UInt8? {
        guard index < bytes.endIndex else { return nil }
        defer { index += 1 }
        return bytes[index]
    }
}

extension VP9Descriptor {
    /// Adds `pictureIDDelta` to the picture ID (modulo its 7 or 15 bits) and `tl0Delta` to
    /// TL0PICIDX (non-flexible mode) of the descriptor at the start of `payload`, in place.
    /// Returns the values written, as `VP8Descriptor.renumber` does.
    @discardableResult
    public static func renumber(_ payload: UnsafeMutableRawBufferPointer, pictureIDDelta: UInt16, tl0Delta: UInt8) -> (pictureID: UInt16?, tl0PictureIndex: UInt8?) {
        guard let first = payload.first else { return (nil, nil) }
        var index = 1
        var pictureID: UInt16?
        if first & 0x80 != 0 {
            guard let (value, next) = PictureIDField.add(pictureIDDelta, in: payload, at: index) else { return (nil, nil) }
            pictureID = value
            index = next
        }
        // TL0PICIDX follows the layer indices, in non-flexible mode only.
        guard first & 0x20 != 0, first & 0x10 == 0 else { return (pictureID, nil) }
        index += 1
        guard index < payload.count else { return (pictureID, nil) }
        payload[index] &+= tl0Delta
        return (pictureID, payload[index])
    }
}
