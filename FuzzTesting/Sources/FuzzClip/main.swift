import FuzzDriver
import Foundation
import MediaCodecs

/// Any bytes as a host's clip upload: sniffed by their first bytes, then, for MP4/MOV or
/// WebM/Matroska, opened by that demuxer alone and read as the clip check and the clip feed
/// read it (a bounded number of outputs). Nothing traps; every picture fits the size asked.
let path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-fuzz-clip-\(getpid())").path

func fuzzClip(_ bytes: [UInt8]) {
    guard let container = MediaFileDecoder.Container.sniff(Array(bytes.prefix(16))) else { return }
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { preconditionFailure("cannot write \(path)") }
    defer { try? FileManager.default.removeItem(atPath: path) }
    guard let decoder = try? MediaFileDecoder(path: path, container: container, maxWidth: 320, maxHeight: 180) else { return }
    precondition(decoder.info.width >= 0 && decoder.info.height >= 0 && decoder.info.durationSeconds >= 0, "nonsense stream facts")
    for _ in 0..<200 {
        guard let output = try? decoder.next() else { break }
        if case .picture(let picture, _) = output {
            precondition(picture.width <= 320 && picture.height <= 180, "a picture larger than asked for")
        }
    }
    try? decoder.rewind()
}

runFuzzer(fuzzClip)
