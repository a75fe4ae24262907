import FluentKit
import Foundation

/// A person with an account: hosts own broadcasts; guests join by invite and need none.
public final class User: Model, @unchecked Sendable {
    public static let schema = "users"

    @ID(key: .id) public var id: UUID?
    @Field(key: "email") public var email: String
    @Field(key: "password_hash") public var passwordHash: String
    @Field(key: "name") public var name: String
    @OptionalField(key: "avatar_url") public var avatarURL: String?
    @Field(key: "subscription_tier") public var subscriptionTier: String
    /// The host's brand, which each new show of theirs starts with; nil: the standard one.
    @OptionalField(key: "theme") public var theme: Stage.Theme?
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    public init(email: String, passwordHash: String, name: String) {
        self.email = email
        self.passwordHash = passwordHash
        self.name = name
        self.subscriptionTier = "free"
    }
}
