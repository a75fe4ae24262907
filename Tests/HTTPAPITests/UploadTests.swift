import Foundation
import HTTPAPI
import Hummingbird
import NIOCore
import Testing

@Suite("Uploads: images checked by their bytes, served back by URL")
struct UploadTests {
    /// Headers that declare a size, as real files do; the pixels after them are not read.
    static func png(width: UInt32 = 64, height: UInt32 = 48) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8) + bigEndian(width) + bigEndian(height)
            + [8, 6, 0, 0, 0] + Array(repeating: 7, count: 64)
    }
    static let png = png()
    static let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16] + Array(repeating: 1, count: 14)
        + [0xFF, 0xC0, 0, 17, 8, 0, 48, 0, 64, 3] + Array(repeating: 1, count: 9) + Array(repeating: 1, count: 32)
    static let webp: [UInt8] = Array("RIFF".utf8) + [0, 0, 0, 0] + Array("WEBPVP8 ".utf8) + [0, 0, 0, 0]
        + [0, 0, 0, 0x9D, 0x01, 0x2A, 64, 0, 48, 0] + Array(repeating: 2, count: 32)

    private static func bigEndian(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) } }

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

    /// A 420 KB PNG that declares 12000×12000 pixels cost 443 MB at go-live: refused when
    /// uploaded, by its header, before anything decodes it.
    @Test("an image bomb is refused by the size its header declares")
    func imageBomb() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let bomb = try await api.call(.post, "/api/upload", token: host.accessToken, headers: [.contentType: "image/png"],
                                          body: ByteBuffer(bytes: Self.png(width: 12000, height: 12000)))
            #expect(bomb.status == .contentTooLarge && bomb.errorCode == "image_too_large", "\(bomb.text)")
            let headless = try await api.call(.post, "/api/upload", token: host.accessToken, headers: [.contentType: "image/png"],
                                              body: ByteBuffer(bytes: Array(Self.png.prefix(20))))
            #expect(headless.status == .badRequest && headless.errorCode == "invalid_image")
            #expect(try await api.call(.post, "/api/upload", token: host.accessToken, headers: [.contentType: "image/png"],
                                       body: ByteBuffer(bytes: Self.png(width: 4096, height: 4096))).status == .created)
        }
    }

    @Test("an upload is deleted by its owner only")
    func delete() async throws {
        try await withServer { api, _ in
            let host = try await api.signUp()
            let other = try await api.signUp()
            let reply = try await api.call(.post, "/api/upload", token: host.accessToken, headers: [.contentType: "image/png"], body: ByteBuffer(bytes: Self.png))
            let id = try #require(reply["id"] as? String)
            let url = try #require(reply["url"] as? String)
            #expect(try await api.call(.delete, "/api/upload/\(id)", token: other.accessToken).status == .notFound)
            #expect(try await api.call(.delete, "/api/upload/\(id)", token: host.accessToken).status == .noContent)
            #expect(try await api.call(.get, url).status == .notFound)
        }
    }
}
