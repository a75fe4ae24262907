import Foundation
import Store

/// The broadcast state machine: scheduled → live → ended, nothing else. The REST API, the
/// stage API and the studio all move a broadcast through here.
public enum BroadcastLifecycle {
    public enum Event: String, Sendable {
        case start
        case end
    }

    public struct TransitionError: Error, Equatable {
        public var from: BroadcastStatus
        public var event: Event

        public var message: String {
            switch (from, event) {
            case (.live, .start): "the broadcast is already live"
            case (.ended, .start): "an ended broadcast cannot go live again; create a new one"
            case (.scheduled, .end): "the broadcast has not started yet"
            case (.ended, .end): "the broadcast has already ended"
            default: "cannot \(event.rawValue) a \(from.rawValue) broadcast"
            }
        }
    }

    public static func next(from status: BroadcastStatus, on event: Event) -> Result<BroadcastStatus, TransitionError> {
        switch (status, event) {
        case (.scheduled, .start): .success(.live)
        case (.live, .end): .success(.ended)
        default: .failure(TransitionError(from: status, event: event))
        }
    }

    /// Moves `broadcast` to its next status and stamps when it happened; the caller saves it.
    public static func apply(_ event: Event, to broadcast: Broadcast, at now: Date) throws(TransitionError) {
        let current = BroadcastStatus(rawValue: broadcast.status) ?? .ended
        let next = try next(from: current, on: event).get()
        broadcast.status = next.rawValue
        switch next {
        case .live: broadcast.startedAt = now
        case .ended: broadcast.endedAt = now
        case .scheduled: break
        }
    }

    /// Whether a broadcast in this status may be deleted: not while it is on air.
    public static func canDelete(_ status: BroadcastStatus) -> Bool {
        status != .live
    }
}
