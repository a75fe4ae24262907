/// The bitrate a publisher that sizes its video from REMB alone (aiortc, older encoders: no
/// transport-wide feedback) is told it may send, worked out once a second from what arrives:
/// up by a quarter while nothing is lost and the publisher uses what it was given, down in
/// proportion to heavy loss (as GCC's loss controller does), never past what a studio camera
/// needs.
public struct ReceiveSideEstimate: Sendable, Equatable {
    /// A 720p30 camera at full quality: the top layer the compositor and players ask for.
    public static let ceiling = 2_500_000.0
    public static let floor = 150_000.0

    public private(set) var bitrate = 0.0

    public init() {}

    /// `incoming`: bits per second received over the last second; `loss`: the fraction lost.
    /// Returns the REMB to send.
    public mutating func update(incoming: Double, loss: Double) -> UInt64 {
        if bitrate == 0 { bitrate = max(Self.floor, incoming) }
        if loss > 0.10 {
            bitrate = max(Self.floor, incoming * (1 - 0.5 * loss))
        } else if loss < 0.02, incoming >= 0.5 * bitrate {
            bitrate = min(Self.ceiling, max(bitrate, incoming) * 1.25)
        }
        return UInt64(bitrate)
    }
}
