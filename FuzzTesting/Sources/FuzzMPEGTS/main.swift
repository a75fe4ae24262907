import FuzzDriver
import Ingest
import MediaCodecs

/// Any bytes as an SRT encoder would send them: as MPEG-TS (libavformat's demuxer behind our
/// reader, then our H.264/ADTS handling), as an ADTS header and as an SRT stream ID. Nothing
/// traps, and no packet comes out larger than what went in.
func fuzzMPEGTS(_ bytes: [UInt8]) {
    _ = SRTStreamID(String(decoding: bytes, as: UTF8.self))
    if let frame = ADTSFrame(bytes) { precondition(frame.headerSize < frame.length && frame.length <= bytes.count, "ADTS frame past its bytes") }
    var offset = 0
    let reader = try? ContainerReader(format: "mpegts") { buffer in
        // Datagram-sized pieces, as SRT delivers them.
        let count = min(buffer.count, 1316, bytes.count - offset)
        bytes.withUnsafeBytes { source in buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<offset + count])) }
        offset += count
        return count
    }
    guard let reader else { return }
    var streams = TSElementaryStreams()
    while let packet = try? reader.next() {
        precondition(packet.data.count <= bytes.count, "a demuxed packet larger than the stream")
        for case .packet(let out) in streams.take(packet) {
            precondition(out.data.count <= bytes.count * 2 + 64, "an elementary packet out of proportion to its input")
        }
    }
}

runFuzzer(fuzzMPEGTS)
