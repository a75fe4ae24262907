import ICE
import MediaPlane
import STUN

/// Which session a datagram (or ICE-TCP frame) belongs to, decided without I/O. A path that
/// passed ICE names its session whatever it carries; from any other path only a STUN
/// binding request is considered, by the local username fragment its USERNAME starts with
/// (RFC 8445 §7.3). Everything else is for no session and is dropped unread.
struct SessionDemux {
    enum Match: Equatable {
        /// From a validated path of this session.
        case known(SessionID)
        /// A check naming this session from a path not yet validated: the session's ICE
        /// agent decides, and `learn` records the path once it validates it.
        case check(SessionID)
    }

    private var byFragment: [String: SessionID] = [:]
    private var byPath: [ICEPath: SessionID] = [:]

    func match(_ bytes: [UInt8], from path: ICEPath) -> Match? {
        if let known = byPath[path] { return .known(known) }
        guard STUNCodec.looksLikeSTUN(bytes), let message = try? STUNCodec.parse(bytes),
              let fragment = ICELiteAgent.localUsernameFragment(ofRequest: message.message), let session = byFragment[fragment] else { return nil }
        return .check(session)
    }

    func session(on path: ICEPath) -> SessionID? { byPath[path] }

    func isTaken(fragment: String) -> Bool { byFragment[fragment] != nil }

    mutating func register(fragment: String, for session: SessionID) {
        byFragment[fragment] = session
    }

    /// A path the session's ICE agent validated: its traffic now goes to that session.
    mutating func learn(_ path: ICEPath, for session: SessionID) {
        byPath[path] = session
    }

    /// A path that is gone (a TCP connection closed); the session it served, if any.
    mutating func forget(_ path: ICEPath) -> SessionID? {
        byPath.removeValue(forKey: path)
    }

    /// A session that closed: neither its fragment nor its paths name it any more.
    mutating func remove(fragment: String, paths: Set<ICEPath>) {
        byFragment[fragment] = nil
        for path in paths { byPath[path] = nil }
    }
}
