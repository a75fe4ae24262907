import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Store
import TallyNode

/// The backends the suite runs on: SQLite and the in-process registry unless the test script
/// points it at a real PostgreSQL and Redis (and runs the suite serially: tests then share
/// one database, and two migrators must not race on it).
enum TestBackend {
    static let databaseURL = ProcessInfo.processInfo.environment["TALLY_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let redisURL = ProcessInfo.processInfo.environment["TALLY_TEST_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
}

/// A whole Tally API on a fresh data directory, driven through Hummingbird's router tester.
func withServer(
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ test: @escaping @Sendable (APIClient, TallyNode) async throws -> Void
) async throws {
    try await withServices(configure: configure) { services in
        let app = Application(router: try TallyServer.router(services: services.services), logger: Logger(label: "tally-test"))
        try await app.test(.router) { client in try await test(APIClient(client: client), services) }
    }
}

/// Opened services on the test configuration, shut down and removed afterwards.
func withServices(
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (TallyNode) async throws -> Void
) async throws {
    var configuration = ServerConfiguration()
    configuration.dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-test-\(UUID().uuidString)")
    configuration.databaseURL = TestBackend.databaseURL
    configuration.redisURL = TestBackend.redisURL
    configuration.redisKeyPrefix = "test-\(UUID().uuidString):"
    configuration.passwordHashCost = 4
    configuration.udpPort = 0
    configuration.tcpPort = 0
    configuration.rtmpPort = 0
    configuration.srtPort = 0
    configuration.turnPort = 0
    configuration.publicIP = "127.0.0.1"
    configure(&configuration)
    let settings = configuration
    var logger = Logger(label: "tally-test")
    logger.logLevel = .warning
    let log = logger
    let services = try await TallyNode.open(configuration: settings, logger: log)
    do {
        try await body(services)
    } catch {
        await services.shutdown()
        try? FileManager.default.removeItem(at: settings.dataDirectory)
        throw error
    }
    await services.shutdown()
    try? FileManager.default.removeItem(at: settings.dataDirectory)
}

/// A reply with its JSON decoded loosely, the way a client in another language would read it.
struct Reply: @unchecked Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }

    var text: String { String(buffer: body) }

    /// The `error.code` of an error reply.
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }

    subscript(key: String) -> Any? { json[key] }
}

struct APIClient: Sendable {
    let client: any TestClientProtocol

    func call(
        _ method: HTTPRequest.Method, _ path: String, json: [String: any Sendable]? = nil, token: String? = nil,
        headers: HTTPFields = [:], body: ByteBuffer? = nil
    ) async throws -> Reply {
        var fields = headers
        var payload = body
        if let json {
            payload = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
            fields[.contentType] = "application/json"
        }
        if let token { fields[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: path, method: method, headers: fields, body: payload) { response in
            Reply(status: response.status, headers: response.headers, body: response.body)
        }
    }

    /// Registers a new account and returns its access token.
    func signUp(email: String = "host-\(UUID().uuidString.prefix(8))@example.com", password: String = "correct horse", name: String = "Host") async throws -> Session {
        let reply = try await call(.post, "/api/auth/register", json: ["email": email, "password": password, "name": name])
        guard reply.status == .created, let access = reply["access_token"] as? String, let refresh = reply["refresh_token"] as? String,
              let user = reply["user"] as? [String: Any], let id = user["id"] as? String else {
            throw TestFailure("sign-up failed: \(reply.status) \(reply.text)")
        }
        return Session(email: email, password: password, userID: id, accessToken: access, refreshToken: refresh)
    }

    func createBroadcast(_ token: String, title: String = "Morning show", extra: [String: any Sendable] = [:]) async throws -> String {
        var body: [String: any Sendable] = ["title": title]
        body.merge(extra) { $1 }
        let reply = try await call(.post, "/api/broadcasts", json: body, token: token)
        guard reply.status == .created, let id = reply["id"] as? String else { throw TestFailure("create broadcast failed: \(reply.text)") }
        return id
    }
}

struct Session: Sendable {
    var email: String
    var password: String
    var userID: String
    var accessToken: String
    var refreshToken: String
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
