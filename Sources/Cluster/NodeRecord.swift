import Foundation

/// A node's load as it last reported it: what placement and operators compare nodes by.
public struct NodeLoad: Codable, Sendable, Equatable {
    /// This process's CPU time over the last heartbeat interval, as a share of all the
    /// machine's cores (0 idle … 1 every core busy).
    public var cpu: Double
    public var cpus: Int
    public var livePrograms: Int
    /// The live programs the node takes at most (`TALLY_MAX_LIVE_PROGRAMS`).
    public var programCapacity: Int
    /// WebRTC sessions sending media to this node (studio guests, WHIP).
    public var publishers: Int
    /// WebRTC sessions this node sends media to (studio players, WHEP).
    public var subscribers: Int
    public var egressBitsPerSecond: Double
    /// One live program's CPU on this node, in cores, as measured (assumed until one ran).
    public var programCost: Double
    /// The cores live programs may bring the process to (`TALLY_CPU_BUDGET` of all cores);
    /// nil when the node admits by count alone.
    public var cpuBudget: Double?

    public init(cpu: Double, cpus: Int, livePrograms: Int, programCapacity: Int, publishers: Int, subscribers: Int, egressBitsPerSecond: Double,
                programCost: Double, cpuBudget: Double?) {
        self.programCost = programCost
        self.cpuBudget = cpuBudget
        self.cpu = cpu
        self.cpus = cpus
        self.livePrograms = livePrograms
        self.programCapacity = programCapacity
        self.publishers = publishers
        self.subscribers = subscribers
        self.egressBitsPerSecond = egressBitsPerSecond
    }

    enum CodingKeys: String, CodingKey {
        case cpu, cpus, publishers, subscribers
        case livePrograms = "live_programs"
        case programCapacity = "program_capacity"
        case egressBitsPerSecond = "egress_bps"
        case programCost = "program_cost"
        case cpuBudget = "cpu_budget"
    }
}

/// One node of a deployment as its heartbeat last described it.
public struct NodeRecord: Codable, Sendable, Equatable {
    /// Chosen afresh by each process: a restarted node is a new node.
    public var id: String
    /// Where clients and other nodes reach it (`TALLY_PUBLIC_URL`, or its own address).
    public var url: String
    public var startedAt: Date
    public var reportedAt: Date
    /// Shutting down: it takes no new broadcasts.
    public var draining: Bool
    public var load: NodeLoad
    /// The address its media relay is reached at (the port comes with each relay), when it
    /// differs from the URL's host or the URL's host is a name other nodes need not resolve.
    public var relayHost: String?

    public init(id: String, url: String, startedAt: Date, reportedAt: Date, draining: Bool, load: NodeLoad) {
        self.id = id
        self.url = url
        self.startedAt = startedAt
        self.reportedAt = reportedAt
        self.draining = draining
        self.load = load
    }

    enum CodingKeys: String, CodingKey {
        case id, url, draining, load
        case relayHost = "relay_host"
        case startedAt = "started_at"
        case reportedAt = "reported_at"
    }
}
