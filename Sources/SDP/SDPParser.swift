/// Reads and writes SDP text. Tolerant where browsers differ (LF or CRLF, unknown lines are
/// kept as attributes or skipped), strict where a wrong guess would be dangerous.
public enum SDPParser {
    /// Offers from browsers are a few kilobytes; anything near this is hostile.
    public static let maxSize = 256 * 1024

    public static func parse(_ text: String) throws(SDPError) -> SessionDescription {
        guard text.utf8.count <= maxSize else { throw .tooLarge(text.utf8.count) }
        var origin: SessionDescription.Origin?
        var sessionName = "-"
        var sessionAttributes: [SDPAttribute] = []
        var media: [MediaDescription] = []
        var sawVersion = false

        // CRLF, LF or a bare CR all end a line; no value may keep a CR it could not write back.
        for (index, line) in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).enumerated() {
            let number = index + 1
            guard line.count >= 2, line[line.index(after: line.startIndex)] == "=" else {
                throw .malformedLine(number: number, reason: "expected <type>=<value>")
            }
            let type = line.first!
            let value = String(line.dropFirst(2))
            switch type {
            case "v":
                guard value == "0" else { throw .malformedLine(number: number, reason: "unsupported version \(value)") }
                sawVersion = true
            case "o":
                let fields = value.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count == 6, let version = UInt64(fields[2]) else { throw .malformedLine(number: number, reason: "o= needs 6 fields") }
                origin = .init(username: String(fields[0]), sessionID: String(fields[1]), sessionVersion: version, address: String(fields[5]))
            case "s":
                sessionName = value.isEmpty ? "-" : value
            case "m":
                let fields = value.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 3, let port = Int(fields[1].split(separator: "/").first ?? ""), (0...65535).contains(port) else {
                    throw .malformedLine(number: number, reason: "m= needs media, port and protocol")
                }
                media.append(MediaDescription(kind: String(fields[0]), port: port, proto: String(fields[2]),
                                              formats: fields.dropFirst(3).map(String.init), connection: nil))
            case "c":
                if media.isEmpty { continue }
                media[media.count - 1].connection = value
            case "b":
                if media.isEmpty { continue }
                media[media.count - 1].bandwidths.append(value)
            case "a":
                let attribute: SDPAttribute
                if let colon = value.firstIndex(of: ":") {
                    attribute = SDPAttribute(String(value[..<colon]), String(value[value.index(after: colon)...]))
                } else {
                    attribute = SDPAttribute(value)
                }
                if media.isEmpty {
                    sessionAttributes.append(attribute)
                } else {
                    media[media.count - 1].attributes.append(attribute)
                }
            default:
                // t=, i=, u=, e=, p=, z=, k=, r= carry nothing WebRTC needs.
                continue
            }
        }
        guard sawVersion else { throw .missing("v=0 line") }
        guard let origin else { throw .missing("o= line") }
        return SessionDescription(origin: origin, sessionName: sessionName, attributes: sessionAttributes, media: media)
    }

    public static func serialize(_ description: SessionDescription) -> String {
        var lines = [
            "v=0",
            "o=\(description.origin.username) \(description.origin.sessionID) \(description.origin.sessionVersion) IN IP4 \(description.origin.address)",
            "s=\(description.sessionName)",
            "t=0 0",
        ]
        lines += description.attributes.map(line)
        for section in description.media {
            lines.append("m=\(section.kind) \(section.port) \(section.proto) \(section.formats.joined(separator: " "))")
            if let connection = section.connection { lines.append("c=\(connection)") }
            lines += section.bandwidths.map { "b=\($0)" }
            lines += section.attributes.map(line)
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    private static func line(_ attribute: SDPAttribute) -> String {
        attribute.value.map { "a=\(attribute.name):\($0)" } ?? "a=\(attribute.name)"
    }
}
