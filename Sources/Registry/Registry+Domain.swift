/// The registry's vocabulary: key names live here and nowhere else.
extension Registry {
    // MARK: Presence

    /// Marks a participant present in a room until `ttl` passes without another call.
    public func markPresent(room: String, participant: String, ttl: Duration) async throws {
        try await addMember("presence:\(room)", participant, ttl: ttl)
    }

    public func markAbsent(room: String, participant: String) async throws {
        try await removeMember("presence:\(room)", participant)
    }

    public func present(room: String) async throws -> [String] {
        try await members("presence:\(room)")
    }

    // MARK: Studio resume tokens

    /// What a studio client shows to take back its place after its socket dropped.
    public func storeResumeToken(participant: String, token: String, ttl: Duration) async throws {
        try await set("resume:\(participant)", token, ttl: ttl)
    }

    public func resumeToken(participant: String) async throws -> String? {
        try await get("resume:\(participant)")
    }

    // MARK: Refresh tokens

    /// Remembers a refresh token (by its hash, never the token) for the user it belongs to.
    public func storeRefreshToken(hash: String, userID: String, ttl: Duration) async throws {
        try await set("refresh:\(hash)", userID, ttl: ttl)
    }

    /// Consumes a refresh token: it works once, which is what makes rotation safe.
    public func takeRefreshToken(hash: String) async throws -> String? {
        try await take("refresh:\(hash)")
    }

    /// Remembers that a refresh token was used, and its family, for as long as it could have
    /// lived: showing it again means it was copied, and the whole family is revoked.
    public func markRefreshTokenUsed(hash: String, family: String, ttl: Duration) async throws {
        try await set("refresh-used:\(hash)", family, ttl: ttl)
    }

    public func usedRefreshTokenFamily(hash: String) async throws -> String? {
        try await get("refresh-used:\(hash)")
    }

    /// Ends every token of a sign-in's chain of refreshes: access tokens carry the family.
    public func revokeTokenFamily(_ family: String, ttl: Duration) async throws {
        try await set("revoked-family:\(family)", "1", ttl: ttl)
    }

    public func isTokenFamilyRevoked(_ family: String) async throws -> Bool {
        try await get("revoked-family:\(family)") != nil
    }

    public func revokeRefreshToken(hash: String) async throws {
        try await delete("refresh:\(hash)")
    }

    /// Access tokens are stateless; a signed-out one is remembered until it would expire anyway.
    public func revokeAccessToken(id: String, ttl: Duration) async throws {
        try await set("revoked:\(id)", "1", ttl: ttl)
    }

    public func isAccessTokenRevoked(id: String) async throws -> Bool {
        try await get("revoked:\(id)") != nil
    }

    // MARK: Rate limits

    /// Counts an attempt against `limit` per `window`; returns how long to wait when over it.
    public func rateLimit(_ bucket: String, limit: Int, window: Duration) async throws -> Duration? {
        let hits = try await increment("rate:\(bucket)", window: window)
        return hits.count > limit ? hits.resetsIn : nil
    }

    /// How many attempts `bucket` has counted in its current window, counting none.
    public func attempts(_ bucket: String) async throws -> Int {
        Int(try await get("rate:\(bucket)") ?? "0") ?? 0
    }

    /// Counts one attempt in `bucket`, whose window starts with its first.
    public func countAttempt(_ bucket: String, window: Duration) async throws {
        _ = try await increment("rate:\(bucket)", window: window)
    }

    // MARK: Programs

    /// A word to whichever node runs `broadcast`'s program, from any node.
    public func sendProgramCommand(broadcast: String, _ command: String) async throws {
        try await publish("program:\(broadcast)", command)
    }

    public func programCommands(broadcast: String) async throws -> AsyncStream<String> {
        try await subscribe("program:\(broadcast)")
    }

    // MARK: Rooms

    /// Makes `node` the owner of `room` unless another node already is; returns the owner.
    public func claimRoom(_ room: String, node: String, ttl: Duration) async throws -> String {
        // The owner's claim can lapse between the two calls; a few rounds settle it.
        for _ in 0..<3 {
            if try await setIfAbsent("room-owner:\(room)", node, ttl: ttl) { return node }
            if let owner = try await get("room-owner:\(room)") { return owner }
        }
        throw RegistryError.unavailable("ownership of room \(room) keeps changing")
    }

    /// The channel every node of a room listens on for that room's events.
    public func publishRoomEvent(room: String, _ message: String) async throws {
        try await publish("room:\(room)", message)
    }

    public func roomEvents(room: String) async throws -> AsyncStream<String> {
        try await subscribe("room:\(room)")
    }
}
