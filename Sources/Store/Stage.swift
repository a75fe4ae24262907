import Foundation

/// What the program shows: who is on stage, in order (the first is featured), in which
/// layout, under which banner. Stored with the broadcast, so it survives a restart.
public struct Stage: Codable, Sendable, Equatable {
    public var layout: String
    public var participants: [UUID]
    public var banner: Banner?
    /// Images from the host's uploads (`/uploads/…` URLs): a logo in the corner, a background
    /// behind the stage.
    public var logo: String?
    public var background: String?

    public struct Banner: Codable, Sendable, Equatable {
        public var text: String

        public init(text: String) {
            self.text = text
        }
    }

    public init(layout: String, participants: [UUID] = [], banner: Banner? = nil, logo: String? = nil, background: String? = nil) {
        self.layout = layout
        self.participants = participants
        self.banner = banner
        self.logo = logo
        self.background = background
    }
}
