import Foundation
import HTTPAPI
import Hummingbird
import NIOCore
import Testing

@Suite("Uploads: images checked by their bytes, served back by URL")
struct UploadTests {
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 7, count: 64)
    static let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array(repeating: 1, count: 64)
    static let webp: [UInt8] = Array("RIFF".utf8) + [0, 0, 0, 0] + Array("WEBPVP8 ".utf8) + Array(repeating: 2, count: 32)

    @Test("PNG, JPEG and WebP are stored and served back byte for byte", arguments: [
        ("image/png", png), ("image/jpeg", jpeg), ("image/webp", webp),
    ])
    func roundTrip(contentType: String, bytes: [UInt8]) async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let reply = try await api.call(.post, "/api/upload?name=logo", token: host.accessToken, headers: [.contentType: contentType], body: ByteBuffer(bytes: bytes))
            #expect(reply.status == .created, "\(reply.text)")
            #expect(reply["content_type"] as? String == contentType)
            #expect(reply["original_name"] as? String == "logo")
            let url = try #require(reply["url"] as? String)
            let served = try await api.call(.get, url)
            #expect(served.status == .ok)
            #expect(served.headers[.contentType] == contentType)
            #expect(Array(served.body.readableBytesView) == bytes)
        }
    }

    @Test("a body that is not the image it claims to be is refused")
    func wrongBytes() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let lying = try await api.call(.post, "/api/upload", token: host.accessToken, headers: [.contentType: "image/png"], body: ByteBuffer(bytes: Self.jpeg))
            #expect(lying.status == .unsupportedMediaType)
            let text = try await api.call(.post, "/api/upload", token: host.accessToken, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "hello"))
            #expect(text.status == .unsupportedMediaType && text.errorCode == "unsupported_media_type")
            let svg = try await api.call(.post, "/api/upload", token: host.accessToken, headers: [.contentType: "image/svg+xml"], body: ByteBuffer(string: "<svg/>"))
            #expect(svg.status == .unsupportedMediaType)
        }
    }

    @Test("an image over the limit is a 413; anonymous uploads are 401s")
    func limits() async throws {
        try await withServer(configure: { $0.maxUploadBytes = 1000 }) { api, _ in
            let host = try await api.signUp()
            let big = ByteBuffer(bytes: Self.png + Array(repeating: 0, count: 2000))
            let reply = try await api.call(.post, "/api/upload", token: host.accessToken, headers: [.contentType: "image/png"], body: big)
            #expect(reply.status == .contentTooLarge && reply.errorCode == "payload_too_large")
            let anonymous = try await api.call(.post, "/api/upload", headers: [.contentType: "image/png"], body: ByteBuffer(bytes: Self.png))
            #expect(anonymous.status == .unauthorized)
            #expect(try await api.call(.get, "/uploads/nothing.png").status == .notFound)
        }
    }
}
