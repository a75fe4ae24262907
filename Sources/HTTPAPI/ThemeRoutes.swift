import FluentKit
import Foundation
import Hummingbird
import Rooms
import Store

extension Stage.Theme: APIResponse {}

extension API {
    /// The host's brand: `GET /api/theme` reads it, `PUT /api/theme` sets it for the shows they
    /// create from then on (a theme chosen in a studio or through the stage API is kept so
    /// too). The faces a theme names are served at `/fonts/{name}.ttf` for the preview.
    func addThemeRoutes(to router: Router<AppContext>) {
        router.get("api/theme") { _, context -> Stage.Theme in
            let userID = try context.requireUser()
            guard let user = try await User.find(userID, on: store.db) else { throw APIError.unauthorized }
            return user.theme ?? .standard
        }
        router.put("api/theme") { request, context -> Stage.Theme in
            let userID = try context.requireUser()
            let theme = try await request.decodeJSON(Stage.Theme.self, context: context)
            if let problem = theme.problem { throw APIError(.badRequest, "invalid_theme", problem) }
            guard let user = try await User.find(userID, on: store.db) else { throw APIError.unauthorized }
            user.theme = theme
            try await user.save(on: store.db)
            return theme
        }
        router.get("fonts/:file") { _, context -> Response in
            let file = context.parameters.get("file") ?? ""
            guard file.hasSuffix(".ttf"), let path = ThemeFonts.servedPath(String(file.dropLast(4))),
                  FileManager.default.isReadableFile(atPath: path) else { throw APIError.notFound("font") }
            // Streamed from disk off the event loop, as recordings are.
            let body = try await FileIO().loadFile(path: path, context: context)
            return Response(status: .ok, headers: [.contentType: "font/ttf", .cacheControl: "public, max-age=86400"], body: body)
        }
    }

    /// Keeps a theme as its host's, for their next shows; a failure only costs that.
    func keepTheme(_ theme: Stage.Theme, for owner: UUID) async {
        do {
            guard let user = try await User.find(owner, on: store.db), user.theme != theme else { return }
            user.theme = theme
            try await user.save(on: store.db)
        } catch {
            logger.warning("the host's theme was not kept for their next shows", metadata: ["user": "\(owner)", "error": "\(error)"])
        }
    }
}
