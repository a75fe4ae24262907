import Program
import SFU

/// Where WHEP players find a broadcast's program, for the routes that answer them without
/// reaching into the program's media module.
public enum ProgramWatch {
    public static var participantID: ParticipantID { ProgramPlayers.participantID }

    public static func routerID(_ broadcastID: String) -> String { ProgramPlayers.routerID(broadcastID) }
}
