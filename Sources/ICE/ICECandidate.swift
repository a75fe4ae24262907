/// Host candidates as `a=candidate` values (RFC 8839 §5.1).
public enum ICECandidate {
    /// RFC 8445 §5.1.2.1: type preference in the top byte, then local preference, then
    /// 256 minus the component. UDP is preferred over TCP by local preference.
    public static func priority(typePreference: UInt32 = 126, localPreference: UInt32, component: UInt32 = 1) -> UInt32 {
        (typePreference << 24) | (localPreference << 8) | (256 - component)
    }

    public static func hostUDP(ip: String, port: Int, foundation: String = "1") -> String {
        "\(foundation) 1 udp \(priority(localPreference: 65535)) \(ip) \(port) typ host"
    }

    /// A passive ICE-TCP candidate (RFC 6544 §4.5): the browser connects to us.
    public static func hostTCPPassive(ip: String, port: Int, foundation: String = "2") -> String {
        "\(foundation) 1 tcp \(priority(localPreference: 32767)) \(ip) \(port) typ host tcptype passive"
    }
}
