/// The VP8 payload descriptor (RFC 7741 §4.2) and what the SFU needs from the frame header.
///
///          0 1 2 3 4 5 6 7
///         +-+-+-+-+-+-+-+-+
///         |X|R|N|S|R| PID | (REQUIRED)
///         +-+-+-+-+-+-+-+-+
///    X:   |I|L|T|K| RSV   | (OPTIONAL)
///         +-+-+-+-+-+-+-+-+
///    I:   |M| PictureID   | (OPTIONAL, 7 or 15 bits)
///         +-+-+-+-+-+-+-+-+
///    L:   |   TL0PICIDX   | (OPTIONAL)
///         +-+-+-+-+-+-+-+-+
///    T/K: |TID|Y| KEYIDX  | (OPTIONAL)
///         +-+-+-+-+-+-+-+-+
public struct VP8Descriptor: Sendable, Equatable {
    public var nonReference: Bool
    /// S: the first packet of a partition.
    public var startOfPartition: Bool
    public var partitionIndex: UInt8
    public var pictureID: UInt16?
    /// Whether the picture ID is the 15-bit form.
    public var longPictureID: Bool
    public var tl0PictureIndex: UInt8?
    public var temporalID: UInt8?
    /// Y: this frame only depends on the base temporal layer (a switching point up).
    public var layerSync: Bool
    /// Where the VP8 payload (frame data) starts within the RTP payload.
    public var payloadOffset: Int
    /// The first packet of a keyframe: S=1, PID=0, and the frame header's P bit clear.
    public var isKeyframe: Bool

    public static func parse(_ payload: ArraySlice<UInt8>) -> VP8Descriptor? {
        var index = payload.startIndex
        guard index < payload.endIndex else { return nil }
        let first = payload[index]
        index += 1
        var descriptor = VP8Descriptor(
            nonReference: first & 0x20 != 0, startOfPartition: first & 0x10 != 0, partitionIndex: first & 0x07,
            pictureID: nil, longPictureID: false, tl0PictureIndex: nil, temporalID: nil, layerSync: false, payloadOffset: 0, isKeyframe: false)
        if first & 0x80 != 0 {
            guard index < payload.endIndex else { return nil }
            let extensions = payload[index]
            index += 1
            if extensions & 0x80 != 0 {
                guard index < payload.endIndex else { return nil }
                if payload[index] & 0x80 != 0 {
                    guard index + 1 < payload.endIndex else { return nil }
                    descriptor.pictureID = UInt16(payload[index] & 0x7F) << 8 | UInt16(payload[index + 1])
                    descriptor.longPictureID = true
                    index += 2
                } else {
                    descriptor.pictureID = UInt16(payload[index])
                    index += 1
                }
            }
            if extensions & 0x40 != 0 {
                guard index < payload.endIndex else { return nil }
                descriptor.tl0PictureIndex = payload[index]
                index += 1
            }
            if extensions & 0x30 != 0 {
                guard index < payload.endIndex else { return nil }
                if extensions & 0x20 != 0 {
                    descriptor.temporalID = payload[index] >> 6
                    descriptor.layerSync = payload[index] & 0x20 != 0
                }
                index += 1
            }
        }
        guard index < payload.endIndex else { return nil }
        descriptor.payloadOffset = index - payload.startIndex
        descriptor.isKeyframe = descriptor.startOfPartition && descriptor.partitionIndex == 0 && payload[index] & 0x01 == 0
        return descriptor
    }
}

extension VP8Descriptor {
    /// Adds `pictureIDDelta` to the picture ID (modulo its 7 or 15 bits) and `tl0Delta` to
    /// TL0PICIDX of the descriptor at the start of `payload`, in place. Returns the values
    /// written; nil for a field the descriptor does not carry, or all nil when it is cut short.
    @discardableResult
    public static func renumber(_ payload: UnsafeMutableRawBufferPointer, pictureIDDelta: UInt16, tl0Delta: UInt8) -> (pictureID: UInt16?, tl0PictureIndex: UInt8?) {
        guard payload.count >= 2, payload[0] & 0x80 != 0 else { return (nil, nil) }
        let extensions = payload[1]
        var index = 2
        var pictureID: UInt16?
        if extensions & 0x80 != 0 {
            guard let (value, next) = PictureIDField.add(pictureIDDelta, in: payload, at: index) else { return (nil, nil) }
            pictureID = value
            index = next
        }
        var tl0PictureIndex: UInt8?
        if extensions & 0x40 != 0 {
            guard index < payload.count else { return (pictureID, nil) }
            payload[index] &+= tl0Delta
            tl0PictureIndex = payload[index]
        }
        return (pictureID, tl0PictureIndex)
    }
}

/// The 7- or 15-bit picture ID of the VP8 and VP9 descriptors (M bit first).
enum PictureIDField {
    /// Adds `delta` to the picture ID at `index`, modulo its width; the new value and the
    /// index after the field, or nil when the field is cut short.
    static func add(_ delta: UInt16, in payload: UnsafeMutableRawBufferPointer, at index: Int) -> (value: UInt16, next: Int)? {
        guard index < payload.count else { return nil }
        guard payload[index] & 0x80 != 0 else {
            let value = (UInt16(payload[index]) &+ delta) & 0x7F
            payload[index] = UInt8(value)
            return (value, index + 1)
        }
        guard index + 1 < payload.count else { return nil }
        let value = ((UInt16(payload[index] & 0x7F) << 8 | UInt16(payload[index + 1])) &+ delta) & 0x7FFF
        payload[index] = 0x80 | UInt8(value >> 8)
        payload[index + 1] = UInt8(value & 0xFF)
        return (value, index + 2)
    }
}
