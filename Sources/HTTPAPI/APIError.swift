import Foundation
import Hummingbird
import NIOCore
import Rooms
import Store

/// An error a client sees: `{"error": {"code": "snake_case", "message": "for a person"}}`.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var buffer = ByteBuffer()
        let body = ErrorBody(error: .init(code: code, message: message))
        buffer.writeBytes(try JSONEncoder().encode(body))
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: buffer))
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
        }

        var error: Detail
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "bad_request", message) }
    static func notFound(_ what: String) -> APIError { APIError(.notFound, "\(what)_not_found", "no such \(what.replacingOccurrences(of: "_", with: " "))") }
    static let unauthorized = APIError(.unauthorized, "unauthorized", "sign in first: send Authorization: Bearer <access token>")
    static let registryUnavailable = APIError(.serviceUnavailable, "registry_unavailable", "the session registry is unreachable; try again shortly", headers: [.retryAfter: "2"])
    static let storeUnavailable = APIError(.serviceUnavailable, "store_unavailable", "the database is unreachable; try again shortly", headers: [.retryAfter: "2"])
}

/// Turns every error into the JSON error shape: framework errors keep their status with our
/// code names; anything unexpected becomes a 500 whose details go to the log only.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as RoomError {
            return try APIError(error).response(from: request, context: context)
        } catch let error as HTTPError {
            return try Self.translate(error).response(from: request, context: context)
        } catch is NIOTooManyBytesError {
            return try APIError(.contentTooLarge, "payload_too_large", "the request body is too large")
                .response(from: request, context: context)
        } catch let error as RegistryUnavailable {
            context.logger.warning("registry unavailable", metadata: ["error": "\(error.underlying)"])
            return try APIError.registryUnavailable.response(from: request, context: context)
        } catch {
            if error.isStoreUnavailable {
                context.logger.warning("database unavailable", metadata: ["error": "\(String(reflecting: error))"])
                return try APIError.storeUnavailable.response(from: request, context: context)
            }
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            return try APIError(.internalServerError, "internal_error", "something went wrong on our side; it has been logged")
                .response(from: request, context: context)
        }
    }

    static func translate(_ error: HTTPError) -> APIError {
        switch error.status {
        case .notFound: APIError(.notFound, "not_found", "no such endpoint")
        case .contentTooLarge: APIError(.contentTooLarge, "payload_too_large", "the request body is too large")
        case .methodNotAllowed: APIError(.methodNotAllowed, "method_not_allowed", "this endpoint does not accept that method")
        case .badRequest: APIError(.badRequest, "bad_request", error.body ?? "the request is malformed")
        default: APIError(error.status, error.status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_"), error.body ?? error.status.reasonPhrase)
        }
    }
}

/// A registry call failed because the registry is away: the request gets a 503.
struct RegistryUnavailable: Error {
    var underlying: any Error
}

extension APIError {
    /// A room manager's refusal, in its own words, with the status that fits.
    init(_ error: RoomError) {
        let status: HTTPResponse.Status = switch error {
        case .invalidTransition, .nodeAtCapacity, .cpuBudgetSpent, .clusterAtCapacity, .refusedByNode, .programElsewhere, .broadcastEnded, .studioFull: .conflict
        case .userProgramLimit, .tooManyParticipants, .inviteExhausted: .tooManyRequests
        case .programFailed: .internalServerError
        case .nodeDraining: .serviceUnavailable
        case .invalidStage, .unknownStream, .unknownUpload, .unknownClip, .resumeRefused: .badRequest
        case .broadcastNotFound: .notFound
        case .notOwner, .notInvited, .hostOnly: .forbidden
        }
        let headers: HTTPFields = if case .userProgramLimit = error { [.retryAfter: "60"] } else { [:] }
        self.init(status, error.code, error.message, headers: headers)
    }
}
