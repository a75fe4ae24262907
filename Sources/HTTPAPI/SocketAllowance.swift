import Synchronization
import SFU

/// Open studio sockets per identity and per client address. Each socket holds a task, a
/// registry subscription and presence upkeep; one invite or one address opening thousands
/// would take the server's connections from everyone else.
final class SocketAllowance: Sendable {
    /// An invite link shared by a whole studio is one identity, and a studio's people reconnect.
    static let perIdentity = 32
    static let perAddress = 64

    private let open = Mutex<(byIdentity: [String: Int], byAddress: [String: Int])>(([:], [:]))

    /// Counts one more socket for `owner`, unless either of its counts is at its cap.
    func take(_ owner: SessionOwner) -> Bool {
        open.withLock { open in
            guard open.byIdentity[owner.identity, default: 0] < Self.perIdentity, open.byAddress[owner.address, default: 0] < Self.perAddress else {
                return false
            }
            open.byIdentity[owner.identity, default: 0] += 1
            open.byAddress[owner.address, default: 0] += 1
            return true
        }
    }

    func release(_ owner: SessionOwner) {
        open.withLock { open in
            open.byIdentity[owner.identity, default: 1] -= 1
            if open.byIdentity[owner.identity] == 0 { open.byIdentity[owner.identity] = nil }
            open.byAddress[owner.address, default: 1] -= 1
            if open.byAddress[owner.address] == 0 { open.byAddress[owner.address] = nil }
        }
    }

    func isFull(_ owner: SessionOwner) -> Bool {
        open.withLock { $0.byIdentity[owner.identity, default: 0] >= Self.perIdentity || $0.byAddress[owner.address, default: 0] >= Self.perAddress }
    }
}
