import CBenchSocket
import Foundation
import Glibc

struct HTTPReply {
    var status: Int
    var headers: [String: String]
    var body: String
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Just enough HTTP/1.1 for the bench's few requests (register, create, WHIP, WHEP): one
/// request per connection, so the reply ends where the connection does.
struct HTTPClient {
    var host: String
    var port: UInt16

    /// `url` as `http://host:port`.
    init(url: String) throws {
        guard url.hasPrefix("http://") else { throw BenchError("only http:// URLs: \(url)") }
        let authority = url.dropFirst("http://".count).prefix { $0 != "/" }
        let parts = authority.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw BenchError("expected http://HOST:PORT, got \(url)") }
        host = String(parts[0]) == "localhost" ? "127.0.0.1" : String(parts[0])
        self.port = port
    }

    func post(_ path: String, body: String, contentType: String, token: String? = nil) throws -> HTTPReply {
        let fd = tally_bench_tcp_connect(host, port)
        guard fd >= 0 else { throw BenchError("cannot connect to \(host):\(port): \(String(cString: strerror(-fd)))") }
        defer { close(fd) }
        var head = "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        let request = Array((head + "\r\n" + body).utf8)
        var written = 0
        while written < request.count {
            let count = request[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { throw BenchError("writing to \(host):\(port) failed") }
            written += count
        }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            response += chunk[..<count]
        }
        return try Self.parse(response)
    }

    static func parse(_ response: [UInt8]) throws -> HTTPReply {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let split = (0..<max(0, response.count - 3)).first(where: { response[$0..<($0 + 4)].elementsEqual(separator) }) else {
            throw BenchError("incomplete HTTP response (\(response.count) bytes)")
        }
        let lines = String(decoding: response[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw BenchError("bad status line: \(lines.first ?? "")") }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(response[(split + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return HTTPReply(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }

    private static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = (index..<(bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
                  let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self).prefix { $0 != ";" }, radix: 16), size > 0 else { break }
            let start = lineEnd + 2
            output += bytes[start..<min(bytes.count, start + size)]
            index = start + size + 2
        }
        return output
    }
}
