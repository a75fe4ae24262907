import Hummingbird
import Layout

struct LayoutListResponse: APIResponse {
    var layouts: [LayoutSpec]
}

extension API {
    /// The stage layouts, for the studio to draw its preview with the same specs the
    /// compositor uses. Not secret: guests need them too.
    func addLayoutRoutes(to router: Router<AppContext>) {
        router.get("api/layouts") { _, _ in
            LayoutListResponse(layouts: layouts.layouts)
        }
    }
}
