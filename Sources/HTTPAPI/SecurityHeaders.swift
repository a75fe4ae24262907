import Hummingbird

/// Headers every response carries, and the pages a Content-Security-Policy:
/// - the studio's pages run only their own scripts and styles, connect only to this server,
///   and cannot be framed by another site;
/// - no page sends a Referer, since invite links carry their token in the URL;
/// - no body is sniffed into another type;
/// - over HTTPS, HSTS.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = AppContext
    /// Over HTTPS, browsers are told to come back only over HTTPS for a year.
    let strictTransport: Bool

    static let pagePolicy = [
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "media-src 'self' blob:",
        "connect-src 'self'", "font-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    func handle(_ request: Request, context: AppContext, next: (Request, AppContext) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        if strictTransport { response.headers[.init("Strict-Transport-Security")!] = "max-age=31536000" }
        if response.headers[.contentType]?.hasPrefix("text/html") == true {
            response.headers[.init("Content-Security-Policy")!] = Self.pagePolicy
            response.headers[.init("X-Frame-Options")!] = "DENY"
        }
        return response
    }
}
