import Cluster
import Compositor
import Drawing
import FluentKit
import Foundation
import Ingest
import Layout
import Logging
import MediaCodecs
import NetworkPolicy
import Program
import NIOPosix
import Outputs
import Registry
import SFU
import Store

/// Where else a new program may run: the deployment's other nodes, and a way to ask one to
/// start a program (the node token's route, in HTTPAPI).
public protocol ProgramPlacement: Sendable {
    /// Every node whose heartbeat is current and that takes new programs, this one included.
    func nodes() async -> [NodeRecord]
    /// Asks `node` to run the broadcast's program; returns once it runs there, or throws
    /// why not (`ProgramDirector.Refusal.remote`).
    func startProgram(_ broadcastID: UUID, on node: NodeRecord) async throws
}

/// Starts, rearranges and stops each live broadcast's program, and keeps the store in step:
/// destination states, the recording's row. The REST API, the stage API and the studio's
/// go-live all come through here (via `RoomManager`).
public actor ProgramDirector {
    /// The node's limits on live programs and where their files go.
    public struct Settings: Sendable {
        public var maxLivePrograms: Int
        public var maxLiveProgramsPerUser: Int
        public var recordingsDirectory: URL
        /// Below this much free disk, no new recording starts and a running one stops.
        public var recordingMinFreeBytes: Int64
        public var maxRecordingBytes: Int64
        public var hlsDirectory: URL
        /// Where the stage's logo and background images are read from.
        public var uploadsDirectory: URL
        public var outbound: OutboundPolicy
        /// The cores live programs may bring this process to (`TALLY_CPU_BUDGET` of all cores).
        public var cpuBudget: Double
        /// Each guest decoded from the smallest simulcast layer that fills their tile, or the top one.
        public var layersFitTiles: Bool

        public init(maxLivePrograms: Int, maxLiveProgramsPerUser: Int, recordingsDirectory: URL, recordingMinFreeBytes: Int64,
                    maxRecordingBytes: Int64, hlsDirectory: URL, uploadsDirectory: URL, outbound: OutboundPolicy, layersFitTiles: Bool = true,
                    cpuBudget: Double = .infinity) {
            self.cpuBudget = cpuBudget
            self.layersFitTiles = layersFitTiles
            self.maxLivePrograms = maxLivePrograms
            self.maxLiveProgramsPerUser = maxLiveProgramsPerUser
            self.recordingsDirectory = recordingsDirectory
            self.recordingMinFreeBytes = recordingMinFreeBytes
            self.maxRecordingBytes = maxRecordingBytes
            self.hlsDirectory = hlsDirectory
            self.uploadsDirectory = uploadsDirectory
            self.outbound = outbound
        }
    }

    private struct Running {
        var program: LiveProgram
        var recording: Recording?
        var progress: Task<Void, Never>
        var owner: UUID
        /// This node's claim on the broadcast; every write as its home is fenced by it.
        var lease: HomeLease
        /// Stage changes and the end, from whichever node the host's request reached.
        var commands: Task<Void, Never>?
    }

    /// What another node asks of the node running a program.
    enum Command: String {
        /// The stage changed: read it again.
        case update
        /// The broadcast ended.
        case stop
    }

    private var programs: [UUID: Running] = [:]
    /// Programs being started, by broadcast, with their owner: they count against the
    /// limits at once, so two go-lives at the same moment cannot both slip under them.
    private var starting: [UUID: UUID] = [:]
    /// Live broadcasts the last scan found with no home (`adoptOrphans`).
    private var homeless: Set<UUID> = []
    /// Shutting down: no new program, no adoption.
    private var draining = false
    private let configuration: Settings
    private let layouts: LayoutLibrary
    private let store: Store
    private let registry: any Registry
    private let homes: HomeLeases
    private let sfu: SFU
    private let ingest: IngestHub
    private let logger: Logger
    /// Destination status changes, saved in the order they happen; drained before the store closes.
    private let destinationWrites = SerialTasks()

    public init(configuration: Settings, layouts: LayoutLibrary, store: Store, registry: any Registry, homes: HomeLeases, sfu: SFU, ingest: IngestHub,
                logger: Logger) {
        self.configuration = configuration
        self.layouts = layouts
        self.store = store
        self.registry = registry
        self.homes = homes
        self.sfu = sfu
        self.ingest = ingest
        self.logger = logger
    }

    public func isLive(_ broadcastID: UUID) -> Bool { programs[broadcastID] != nil }

    /// The size each participant on a program running here was last decoded at; nil when
    /// the program does not run on this node.
    public func decodedSizes(_ broadcastID: UUID) -> [ParticipantID: (width: Int, height: Int)]? {
        programs[broadcastID]?.program.decodedSizes
    }

    /// The node whose lease makes it the broadcast's home now, if any.
    public nonisolated func homeNode(of broadcastID: UUID) async throws -> String? {
        try await homes.holder(of: broadcastID)
    }

    /// The programs this node runs now.
    public var liveCount: Int { programs.count }

    /// What a program costs here, as measured.
    private var cost = ProgramCost()

    /// The process's CPU now, in cores, sampled by the node's heartbeat: it teaches the
    /// program cost that admission checks against the budget. Returns the cost per program.
    public func observeCPU(cores: Double) -> Double {
        cost.record(cores: cores, programs: programs.count)
        return cost.perProgram
    }

    public var cpuBudget: Double { configuration.cpuBudget }

    /// A live program costs about a third of a core for as long as it runs: each node and
    /// each user may run only so many at once.
    public enum Refusal: Error {
        case userLimit(Int)
        case nodeLimit(Int)
        /// Another node is the broadcast's home and runs its program.
        case elsewhere(node: String)
        /// This node is shutting down.
        case draining
        /// One more program would take the process past its CPU budget (cores).
        case cpuBudget(cost: Double, current: Double, budget: Double)
        /// Another node refused to take the program: its error code and message.
        case remote(code: String, message: String)
        /// Every node refused: each at its program limit or CPU budget, or shutting down.
        case clusterFull(nodes: Int)
    }

    /// Where to ask other nodes to run programs; nil: every program runs here.
    private var placement: (any ProgramPlacement)?

    public func place(with placement: any ProgramPlacement) {
        self.placement = placement
    }

    /// Starts a broadcast's program on the least loaded node with room: this one, or
    /// another that `placement` asks. A node that refuses (its limit, its CPU budget) passes
    /// the program on to the next; when every node refuses, the cluster is full.
    public func start(_ broadcast: Broadcast) async throws {
        let id = try broadcast.requireID()
        guard programs[id] == nil, starting[id] == nil else { return }
        guard let placement else { return try await startHere(broadcast) }
        let candidates = Self.byLoad(await placement.nodes(), preferring: homes.node)
        guard candidates.contains(where: { $0.id != homes.node }) else { return try await startHere(broadcast) }
        var refusals: [Error] = []
        for node in candidates {
            do {
                if node.id == homes.node {
                    try await startHere(broadcast)
                } else {
                    try await placement.startProgram(id, on: node)
                    logger.info("program placed on another node", metadata: ["broadcast": "\(id)", "node": "\(node.id)", "url": "\(node.url)"])
                }
                return
            } catch let refusal as Refusal {
                switch refusal {
                case .userLimit, .elsewhere: throw refusal
                case .nodeLimit, .draining, .cpuBudget, .remote, .clusterFull: refusals.append(refusal)
                }
                logger.info("node refused the program; trying the next", metadata: ["broadcast": "\(id)", "node": "\(node.id)", "reason": "\(refusal)"])
            }
        }
        throw refusals.count == 1 ? refusals[0] : Refusal.clusterFull(nodes: candidates.count)
    }

    /// How much busier (in CPU share) this node may be than the least loaded one and still
    /// keep a program asked of it: the host's studio is here, so its media need no relay.
    static let placementMargin = 0.1

    /// Least loaded first: by CPU share, then by live programs; `preferred` (this node) first
    /// unless another is busier by less than `placementMargin`. Draining nodes and nodes at
    /// their program limit take nothing.
    static func byLoad(_ nodes: [NodeRecord], preferring preferred: String) -> [NodeRecord] {
        var ordered = nodes.filter { !$0.draining && $0.load.livePrograms < $0.load.programCapacity }
            .sorted { ($0.load.cpu, $0.load.livePrograms, $0.id) < ($1.load.cpu, $1.load.livePrograms, $1.id) }
        if let index = ordered.firstIndex(where: { $0.id == preferred }), let least = ordered.first,
           ordered[index].load.cpu - least.load.cpu <= placementMargin {
            ordered.insert(ordered.remove(at: index), at: 0)
        }
        return ordered
    }

    /// Starts the broadcast's program on this node, within its limits: what another node's
    /// placement asks of this one.
    public func startHere(_ broadcast: Broadcast) async throws {
        let id = try broadcast.requireID()
        guard programs[id] == nil, starting[id] == nil else { return }
        guard !draining else { throw Refusal.draining }
        let owners = Array(programs.values.map(\.owner)) + Array(starting.values)
        guard owners.count < configuration.maxLivePrograms else { throw Refusal.nodeLimit(configuration.maxLivePrograms) }
        guard owners.filter({ $0 == broadcast.ownerID }).count < configuration.maxLiveProgramsPerUser else {
            throw Refusal.userLimit(configuration.maxLiveProgramsPerUser)
        }
        // A node always takes one program; past that, only what its measured CPU leaves room for.
        guard owners.isEmpty || cost.admits(budget: configuration.cpuBudget, running: owners.count) else {
            throw Refusal.cpuBudget(cost: cost.perProgram, current: cost.current, budget: configuration.cpuBudget)
        }
        starting[id] = broadcast.ownerID
        defer { starting[id] = nil }
        let lease: HomeLease
        switch try await homes.claim(id) {
        case .claimed(let claimed): lease = claimed
        case .heldBy(let node): throw Refusal.elsewhere(node: node)
        }
        do {
            try await start(broadcast, as: lease)
        } catch {
            try? await homes.release(lease)
            throw error
        }
    }

    /// Starts the program of a broadcast this node has just claimed. A recording the
    /// previous home left open is closed there (what it wrote plays) and this one records
    /// the next part.
    private func start(_ broadcast: Broadcast, as lease: HomeLease) async throws {
        let id = lease.broadcast
        let stage = try await programStage(broadcast)
        let destinations = try await Destination.query(on: store.db).filter(\.$broadcastID == id).filter(\.$enabled == true).all()
        var targets: [PushTarget] = []
        for destination in destinations {
            do {
                targets.append(PushTarget(id: try destination.requireID().uuidString, url: destination.rtmpURL,
                                          streamKey: try store.sealer.open(destination.streamKeySealed)))
            } catch {
                await destinationChanged(broadcast: id, destination: try destination.requireID().uuidString, .failed(reason: "the stream key cannot be decrypted; add the destination again"))
            }
        }
        let earlier = try await Recording.query(on: store.db).filter(\.$broadcastID == id).all()
        let recording = broadcast.settings.record
            ? Recording(broadcastID: id, ownerID: broadcast.ownerID, title: broadcast.title,
                        fileName: "\(id.uuidString.lowercased())-\(Int(Date().timeIntervalSince1970)).mp4", part: (earlier.map(\.part).max() ?? 0) + 1)
            : nil
        // A disk that is nearly full takes no new recording: the show goes on, and the
        // recording says at once why it has nothing.
        if let recording, let shortage = diskShortage() {
            recording.status = "failed"
            recording.error = shortage
            logger.error("recording not started", metadata: ["broadcast": "\(id)", "reason": "\(shortage)"])
        }
        let recordingPath = recording.flatMap { $0.status == "failed" ? nil : configuration.recordingsDirectory.appendingPathComponent($0.fileName).path }
        let program = try LiveProgram(
            broadcastID: id.uuidString, settings: Compositor.Settings(resolution: broadcast.settings.resolution), stage: stage, targets: targets,
            recordingPath: recordingPath,
            hlsDirectory: configuration.hlsDirectory.appendingPathComponent(id.uuidString.lowercased()), sfu: sfu, ingest: ingest,
            group: MultiThreadedEventLoopGroup.singleton, outbound: configuration.outbound,
            maxRecordingBytes: configuration.maxRecordingBytes, layersFitTiles: configuration.layersFitTiles, logger: logger) { [weak self, destinationWrites] destination, state in
            destinationWrites.enqueue { [weak self] in await self?.destinationChanged(broadcast: id, destination: destination, state) }
        }
        if let recording, let reason = program.recordingError {
            recording.status = "failed"
            recording.error = reason
            logger.error("recording not started", metadata: ["broadcast": "\(id)", "reason": "\(reason)"])
        }
        // The row only once the program exists: a program that cannot start leaves no
        // recording stuck in `recording`.
        let interrupted = earlier.filter { $0.status == "recording" }
        do {
            try await store.asHome(id, generation: lease.generation) { database in
                for part in interrupted {
                    part.status = part.sizeBytes > 0 ? "ready" : "failed"
                    if part.sizeBytes == 0 { part.error = "the node recording it stopped before anything was recorded" }
                    try await part.save(on: database)
                }
                try await recording?.save(on: database)
            }
        } catch {
            await program.stop()
            throw error
        }
        let progress = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                await self?.saveRecordingProgress(id)
            }
        }
        programs[id] = Running(program: program, recording: recording, progress: progress, owner: broadcast.ownerID, lease: lease,
                               commands: await listen(to: id))
        await program.start(stage)
    }

    /// Commands for the program this node runs, for as long as it runs it.
    private func listen(to id: UUID) async -> Task<Void, Never>? {
        do {
            let commands = try await registry.programCommands(broadcast: id.uuidString)
            return Task { [weak self] in
                for await text in commands {
                    guard let command = Command(rawValue: text) else { continue }
                    await self?.handle(command, for: id)
                }
            }
        } catch {
            logger.warning("program takes commands from this node only: the registry refused the subscription",
                           metadata: ["broadcast": "\(id)", "error": "\(error)"])
            return nil
        }
    }

    private func handle(_ command: Command, for id: UUID) async {
        logger.info("program \(command.rawValue) asked by another node", metadata: ["broadcast": "\(id)"])
        switch command {
        case .update:
            guard let broadcast = try? await Broadcast.find(id, on: store.db) else { return }
            await update(broadcast)
        case .stop:
            await stop(id)
        }
    }

    /// Shows the broadcast's saved stage: here when this node runs its program, otherwise
    /// on the node that does.
    public func update(_ broadcast: Broadcast) async {
        guard let id = broadcast.id else { return }
        guard let program = programs[id]?.program else {
            // Only a live broadcast has a program somewhere to tell.
            if broadcast.status == BroadcastStatus.live.rawValue { await send(.update, to: id) }
            return
        }
        do {
            await program.update(try await programStage(broadcast))
        } catch {
            logger.warning("program stage not updated", metadata: ["broadcast": "\(id)", "error": "\(error)"])
        }
    }

    private func send(_ command: Command, to id: UUID) async {
        do {
            try await registry.sendProgramCommand(broadcast: id.uuidString, command.rawValue)
        } catch {
            logger.warning("program command not sent", metadata: ["broadcast": "\(id)", "command": "\(command.rawValue)", "error": "\(error)"])
        }
    }

    /// Ends the broadcast's program: here when this node runs it, otherwise on the node that does.
    public func stop(_ broadcastID: UUID) async {
        guard let entry = programs.removeValue(forKey: broadcastID) else {
            await send(.stop, to: broadcastID)
            return
        }
        entry.commands?.cancel()
        entry.progress.cancel()
        await entry.program.stop()
        await saveRecording(entry, status: "ready")
        do {
            try await homes.release(entry.lease)
        } catch {
            logger.warning("home not released; it lapses by itself", metadata: ["broadcast": "\(broadcastID)", "error": "\(error)"])
        }
    }

    /// At SIGTERM: no new program or adoption here; live programs go on until they end or
    /// `timeout` passes, then stop, releasing their homes for another node to adopt (their
    /// destinations reconnect from there, their recordings go on as a next part). With no
    /// other node up (`canHandOver`), there is no one to wait for and they stop at once.
    public func drain(timeout: Duration, canHandOver: @Sendable () async -> Bool) async {
        draining = true
        logger.notice("node draining: it takes no new program", metadata: ["programs": "\(programs.count)"])
        guard !programs.isEmpty else { return }
        if await canHandOver() {
            logger.notice("live programs go on until they end or the drain deadline", metadata: ["programs": "\(programs.count)", "deadline_seconds": "\(timeout.components.seconds)"])
            let deadline = ContinuousClock.now + timeout
            while !programs.isEmpty, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        guard !programs.isEmpty else { return }
        logger.notice("handing live programs over to other nodes", metadata: ["programs": "\(programs.count)"])
        for id in programs.keys { await stop(id) }
    }

    /// This node's programs, at shutdown.
    public func stopAll() async {
        for id in programs.keys { await stop(id) }
        await destinationWrites.drain()
    }

    /// Every 2 s while live: this node's claim on the broadcast renewed, the disk checked and
    /// the recording's progress saved. A claim that went to another node (this one stalled
    /// past the lease) ends the program here, writing nothing more: the new home runs it.
    private func saveRecordingProgress(_ id: UUID) async {
        guard let entry = programs[id] else { return }
        do {
            guard try await homes.renew(entry.lease) else {
                await abandon(id, reason: "its home lease went to another node")
                return
            }
        } catch {
            logger.warning("home lease not renewed; the program goes on", metadata: ["broadcast": "\(id)", "error": "\(error)"])
        }
        if let shortage = diskShortage() { entry.program.recording?.fail(shortage) }
        await saveRecording(entry, status: "recording")
    }

    /// Every few seconds: a live broadcast whose home stopped renewing its lease (its node
    /// died, or lost the registry) is taken over by a node with room, the less loaded ones
    /// first, and its program starts here: its destinations reconnect and its recording
    /// goes on as the next part. A broadcast must be seen homeless on two scans in a row, so
    /// one that is ending (its lease released a moment before it is saved ended) is left be.
    public func adoptOrphans() async {
        guard !draining, programs.count + starting.count < configuration.maxLivePrograms else {
            homeless = []
            return
        }
        let live: [Broadcast]
        do {
            live = try await Broadcast.query(on: store.db).filter(\.$status == BroadcastStatus.live.rawValue).all()
        } catch {
            logger.warning("cannot look for broadcasts without a home", metadata: ["error": "\(error)"])
            return
        }
        var seen: Set<UUID> = []
        for broadcast in live {
            guard let id = broadcast.id, programs[id] == nil, starting[id] == nil else { continue }
            do {
                guard try await homes.holder(of: id) == nil else { continue }
            } catch {
                continue
            }
            seen.insert(id)
            guard homeless.contains(id) else { continue }
            // The least loaded node tends to claim first; the lease settles any tie.
            try? await Task.sleep(for: .seconds(Double(programs.count) / Double(max(1, configuration.maxLivePrograms))))
            guard let current = try? await Broadcast.find(id, on: store.db), current.status == BroadcastStatus.live.rawValue else { continue }
            do {
                try await start(current)
                logger.warning("broadcast re-homed on this node: its previous home stopped renewing its lease", metadata: ["broadcast": "\(id)"])
            } catch Refusal.elsewhere {
                continue
            } catch {
                logger.error("cannot take over a broadcast without a home", metadata: ["broadcast": "\(id)", "error": "\(error)"])
            }
        }
        homeless = seen
    }

    /// Stops a program this node no longer owns, without a word to the store.
    private func abandon(_ id: UUID, reason: String) async {
        guard let entry = programs.removeValue(forKey: id) else { return }
        logger.error("program stopped on this node: \(reason)", metadata: ["broadcast": "\(id)"])
        entry.commands?.cancel()
        entry.progress.cancel()
        await entry.program.stop()
    }

    /// Saves the recording's figures as written; a recording that failed stays `failed`,
    /// with why, and the first time is logged.
    private func saveRecording(_ entry: Running, status: String) async {
        guard let recording = entry.recording else { return }
        if let written = entry.program.recording?.status {
            recording.durationSeconds = written.duration
            recording.sizeBytes = written.size
            if case .failed(let reason) = written.state, recording.status != "failed" {
                logger.error("recording failed", metadata: ["recording": "\(recording.id?.uuidString ?? "")", "reason": "\(reason)"])
                recording.error = reason
            }
        }
        recording.status = recording.error == nil ? status : "failed"
        do {
            try await store.asHome(entry.lease.broadcast, generation: entry.lease.generation) { try await recording.save(on: $0) }
        } catch let fenced as FencedOut {
            logger.error("recording state not saved: another node is home now", metadata: ["recording": "\(recording.loggedID)", "error": "\(fenced)"])
        } catch {
            logger.error("recording state not saved", metadata: ["recording": "\(recording.id?.uuidString ?? "")", "error": "\(error)"])
        }
    }

    /// Why the recordings' disk cannot take more, or nil while it has room.
    private func diskShortage() -> String? {
        var stats = statvfs()
        guard statvfs(configuration.recordingsDirectory.path, &stats) == 0 else { return nil }
        let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
        guard free < configuration.recordingMinFreeBytes else { return nil }
        return "the disk is nearly full: \(free >> 20) MB free, recordings need \(configuration.recordingMinFreeBytes >> 20) MB"
    }

    /// At start-up, whatever a crash left behind: a broadcast still `live` whose program no
    /// node runs (none renews its claim in the registry) has ended, and a recording still
    /// `recording` becomes `ready` (fragmented MP4 plays up to the crash) or, with nothing
    /// on disk, `failed`. However recently they were saved: a restart within seconds used
    /// to leave them so for ever.
    public func reconcileAfterRestart() async {
        do {
            for broadcast in try await Broadcast.query(on: store.db).filter(\.$status == BroadcastStatus.live.rawValue).all()
            where try await homes.holder(of: broadcast.requireID()) == nil {
                broadcast.status = BroadcastStatus.ended.rawValue
                broadcast.endedAt = Date()
                try await broadcast.save(on: store.db)
                logger.warning("broadcast left live by a stopped server has ended", metadata: ["broadcast": "\(broadcast.loggedID)"])
            }
            for recording in try await Recording.query(on: store.db).filter(\.$status == "recording").all() {
                if let broadcast = recording.broadcastID, try await homes.holder(of: broadcast) != nil { continue }
                let path = configuration.recordingsDirectory.appendingPathComponent(recording.fileName).path
                let size = ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? nil) ?? 0
                recording.sizeBytes = size
                if size > 0 {
                    recording.status = "ready"
                } else {
                    recording.status = "failed"
                    recording.error = "the server stopped before anything was recorded"
                }
                try await recording.save(on: store.db)
                logger.warning("recording interrupted by a stopped server", metadata: ["recording": "\(recording.loggedID)", "status": "\(recording.status)"])
            }
        } catch {
            logger.error("cannot reconcile broadcasts and recordings after a restart: \(String(reflecting: error))")
        }
    }

    private func destinationChanged(broadcast: UUID, destination: String, _ state: DestinationState) async {
        logger.info("destination \(state.name)", metadata: ["broadcast": "\(broadcast)", "destination": "\(destination)",
                                                            "reason": "\(state.reason ?? "")"])
        if let uuid = UUID(uuidString: destination), let row = try? await Destination.find(uuid, on: store.db) {
            row.status = state.name
            try? await row.save(on: store.db)
        }
        guard let event = RoomEvent.destinationStatus(destination, state) else { return }
        try? await registry.publishRoomEvent(room: broadcast.uuidString, event)
    }

    /// The stored stage with names looked up and images decoded.
    private func programStage(_ broadcast: Broadcast) async throws -> ProgramStage {
        let stage = broadcast.currentStage
        let layout = layouts.layout(named: stage.layout) ?? layouts.layout(named: "grid") ?? layouts.layouts[0]
        let rows = try await Participant.query(on: store.db).filter(\.$broadcastID == broadcast.requireID()).all()
        let names = Dictionary(try rows.map { (try $0.requireID(), $0.name) }) { first, _ in first }
        let logo = image(stage.logo, maxWidth: 240, maxHeight: 120).map { TransparentImage(picture: $0.picture, alpha: $0.alpha) }
        let background = stage.background.flatMap { url in image(url, maxWidth: 1920, maxHeight: 1080).map { (key: url, picture: $0.picture) } }
        let people = stage.participants.map { (source: StageSource.participant(ParticipantID($0.uuidString)), name: names[$0] ?? "Guest") }
        let streams = stage.streams.map { (source: StageSource.stream($0), name: $0) }
        let clips = try await clipTiles(stage.clips, owner: broadcast.ownerID)
        if stage.clipFullscreen, let first = clips.first {
            // The clip alone, filling the frame with its sound: an intro, an ad break.
            let solo = layouts.layout(named: "solo") ?? layout
            return ProgramStage(layout: solo, tiles: [first], banner: nil, logo: logo, background: background, transition: transition(stage),
                                theme: Self.theme(stage.theme), countdown: countdown(stage))
        }
        return ProgramStage(layout: layout, tiles: people + streams + clips,
                            banner: stage.banner?.text, logo: logo, background: background, comment: stage.comment.map { ($0.name, $0.text) },
                            transition: transition(stage), theme: Self.theme(stage.theme), countdown: countdown(stage))
    }

    /// The stored theme in the compositor's terms; a field it cannot read takes the standard's.
    static func theme(_ theme: Stage.Theme) -> Theme {
        let rgb = theme.rgb ?? (red: 37, green: 99, blue: 235)
        return Theme(red: rgb.red, green: rgb.green, blue: rgb.blue, fontPath: ThemeFonts.path(theme.font),
                     nameTags: Theme.Style(rawValue: theme.nametags) ?? .shade, banner: Theme.Style(rawValue: theme.banner) ?? .accent)
    }

    private func countdown(_ stage: Stage) -> (label: String, until: Date)? {
        stage.countdown.map { ($0.label, Date(timeIntervalSince1970: Double($0.until) / 1000)) }
    }

    /// A cross-fade lasts half a second, as the studio's preview draws it.
    private func transition(_ stage: Stage) -> Transition {
        switch stage.transition {
        case .cut: .cut
        case .fade: .crossFade(seconds: 0.5)
        }
    }

    /// The stage's clips that are still in the owner's library, in stage order.
    private func clipTiles(_ ids: [UUID], owner: UUID) async throws -> [(source: StageSource, name: String)] {
        guard !ids.isEmpty else { return [] }
        let rows = try await Clip.query(on: store.db).filter(\.$id ~~ ids).filter(\.$ownerID == owner).all()
        let byID = Dictionary(try rows.map { (try $0.requireID(), $0) }) { first, _ in first }
        let directory = Clip.directory(uploads: configuration.uploadsDirectory)
        return ids.compactMap { id in
            guard let row = byID[id], let container = MediaFileDecoder.Container(rawValue: row.container) else { return nil }
            let source = ClipSource(id: id, path: directory.appendingPathComponent(row.fileName).path, container: container, loop: row.loop)
            return (source: StageSource.clip(source), name: row.name)
        }
    }

    private func image(_ url: String?, maxWidth: Int, maxHeight: Int) -> (picture: VideoFrame, alpha: [UInt8])? {
        guard let url, url.hasPrefix("/uploads/") else { return nil }
        let name = url.dropFirst("/uploads/".count)
        guard !name.contains("/"), let data = FileManager.default.contents(atPath: configuration.uploadsDirectory.appendingPathComponent(String(name)).path) else { return nil }
        do {
            return try ImageDecoder.decode([UInt8](data), maxWidth: maxWidth, maxHeight: maxHeight)
        } catch {
            logger.warning("stage image skipped", metadata: ["url": "\(url)", "error": "\(error)"])
            return nil
        }
    }
}
