import Foundation

/// An ingest stream's life, decided apart from its media: each event moves the phase and
/// returns what the stream must then do. `IngestStream` runs the machine under its lock,
/// applies the output actions there (they must stay in order with the packets), and runs
/// the rest (closing a connection, reporting the status) after it unlocks.
struct IngestMachine {
    enum Phase: Equatable {
        /// Armed: no publisher, no outputs.
        case waiting
        /// A publisher is attached; its media waits for a keyframe to reach the outputs.
        case awaitingKeyframe(publisher: UInt64)
        /// The publisher's media flows to the outputs.
        case publishing(publisher: UInt64)
        /// The publisher left; the slate holds the outputs since `since`.
        case holding(since: ContinuousClock.Instant)
        /// Stopped through the API: publishes are refused until it is armed again.
        case stopped
        /// The publisher sent what the stream cannot carry.
        case failed(reason: String)
    }

    enum Action: Equatable {
        /// Close the connection of the publisher that held the stream (replaced or refused).
        case closePublisher(reason: String)
        case startSlate
        case stopSlate
        /// A new source starts on the stream's timeline.
        case beginSource
        /// Open HLS (and the ladder and relays) with the publisher's tracks.
        case openOutputs
        /// The open outputs take the publisher's tracks.
        case switchTracks
        case closeOutputs
        /// The status changed: tell the store.
        case report
    }

    /// What to do with one packet of the publisher's.
    enum PacketVerdict: Equatable {
        /// Not the current publisher's: ignore it.
        case stale
        /// Before the first keyframe: dropped (a video frame counts as a dropped frame).
        case drop
        /// To the outputs, after `actions`.
        case emit(actions: [Action])
    }

    private(set) var phase = Phase.waiting
    /// HLS, the ladder and relays are open; they outlive a publisher through the slate.
    private(set) var outputsOpen = false
    /// When this run's first publisher connected.
    private(set) var startTime: Date?
    /// Publishers since the stream was created.
    private(set) var publishers = 0
    /// The publisher's tracks changed: the outputs switch at its next keyframe.
    private var tracksChanged = false
    /// The publisher is new: its media starts a new source on the timeline.
    private var newSource = false
    private var nextToken: UInt64 = 1

    /// The one status the stream API reports.
    var status: IngestStatus {
        switch phase {
        case .waiting: .starting
        case .awaitingKeyframe, .publishing, .holding: .running
        case .stopped: .stopped
        case .failed: .error
        }
    }

    var publisher: UInt64? {
        switch phase {
        case .awaitingKeyframe(let token), .publishing(let token): token
        case .waiting, .holding, .stopped, .failed: nil
        }
    }

    /// A publisher arrives and takes the stream over from any other; nil while the stream
    /// is stopped or failed.
    mutating func attach(at now: Date) -> (token: UInt64, actions: [Action])? {
        var actions: [Action] = []
        switch phase {
        case .stopped, .failed:
            return nil
        case .awaitingKeyframe, .publishing:
            actions.append(.closePublisher(reason: "replaced by a new publisher with the same key"))
        case .holding:
            actions.append(.stopSlate)
        case .waiting:
            break
        }
        let token = nextToken
        nextToken += 1
        publishers += 1
        if startTime == nil { startTime = now }
        phase = .awaitingKeyframe(publisher: token)
        tracksChanged = true
        newSource = true
        return (token, actions + [.report])
    }

    /// The publisher's codec configuration changed; false when `token` no longer holds the stream.
    mutating func tracksDidChange(token: UInt64) -> Bool {
        guard publisher == token else { return false }
        tracksChanged = true
        return true
    }

    /// Where one packet of `token`'s goes. `canStart`: it is a video keyframe and the
    /// publisher's video track is known, so the outputs can open or switch at it.
    mutating func packet(token: UInt64, canStart: Bool) -> PacketVerdict {
        switch phase {
        case .awaitingKeyframe(let current) where current == token:
            guard canStart else { return .drop }
            var actions: [Action] = newSource ? [.beginSource] : []
            if !outputsOpen {
                actions.append(.openOutputs)
                outputsOpen = true
            } else if tracksChanged {
                actions.append(.switchTracks)
            }
            newSource = false
            tracksChanged = false
            phase = .publishing(publisher: token)
            return .emit(actions: actions)
        case .publishing(let current) where current == token:
            guard tracksChanged, canStart else { return .emit(actions: []) }
            tracksChanged = false
            return .emit(actions: [.switchTracks])
        default:
            return .stale
        }
    }

    /// The outputs could not open: the publisher's media goes nowhere until the next one.
    mutating func outputsFailed() {
        outputsOpen = false
    }

    /// The publisher is gone: the slate holds the outputs if they are open.
    mutating func detach(token: UInt64, at now: ContinuousClock.Instant) -> [Action]? {
        guard publisher == token else { return nil }
        if outputsOpen {
            phase = .holding(since: now)
            return [.startSlate, .report]
        }
        phase = .waiting
        return [.report]
    }

    /// The publisher sent what the stream cannot carry.
    mutating func fail(token: UInt64, reason: String) -> [Action]? {
        guard publisher == token else { return nil }
        phase = .failed(reason: reason)
        outputsOpen = false
        return [.closePublisher(reason: reason), .closeOutputs, .report]
    }

    /// Stopped through the API.
    mutating func stop() -> [Action] {
        let close: [Action] = publisher == nil ? [] : [.closePublisher(reason: "the stream was stopped")]
        phase = .stopped
        startTime = nil
        outputsOpen = false
        return close + [.stopSlate, .closeOutputs, .report]
    }

    /// The server is going down: everything closes, and nothing is reported (the store
    /// resets streams left running when it opens again).
    mutating func shutdown() -> [Action] {
        let close: [Action] = publisher == nil ? [] : [.closePublisher(reason: "the server is shutting down")]
        if publisher != nil || phase.isHolding { phase = .waiting }
        outputsOpen = false
        return close + [.stopSlate, .closeOutputs]
    }

    /// Started (again) through the API.
    mutating func arm() -> [Action] {
        switch phase {
        case .stopped, .failed:
            phase = .waiting
            return [.report]
        default:
            return []
        }
    }

    /// The slate's clock: once the publisher has been away for `timeout`, the outputs end.
    mutating func slateTick(at now: ContinuousClock.Instant, timeout: Duration) -> [Action]? {
        guard case .holding(let since) = phase else { return nil }
        guard now - since >= timeout else { return [] }
        phase = .waiting
        outputsOpen = false
        startTime = nil
        return [.stopSlate, .closeOutputs, .report]
    }
}

extension IngestMachine.Phase {
    var isHolding: Bool {
        if case .holding = self { true } else { false }
    }
}
