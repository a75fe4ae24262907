import DTLS
import FuzzDriver

/// Any datagram: record splitting and handshake-header parsing never trap; what splits
/// packs back into the same bytes; a server session fed the bytes stays well behaved.
func fuzzDTLS(_ bytes: [UInt8]) {
    guard let records = try? DTLSRecord.split(bytes) else { return }
    for record in records where record.contentType == 22 && record.range.count > DTLSRecord.headerLength {
        _ = try? DTLSHandshakeHeader.parse(bytes[(record.range.lowerBound + DTLSRecord.headerLength)..<record.range.upperBound])
    }
    guard let datagrams = try? DTLSRecord.packetize(bytes, mtu: 1200) else { fatalError("split records do not packetize") }
    precondition(datagrams.flatMap { $0 } == bytes, "packetizing changed the bytes")
    if session.isFinished { session = try! DTLSSession(context: context, remoteFingerprint: "00") }
    _ = session.receive(bytes)
}

// One context for the run, and a session replaced once an input ends it: libFuzzer calls in
// from a single thread.
nonisolated(unsafe) let context = try! DTLSContext(role: .server, certificate: DTLSCertificate())
nonisolated(unsafe) var session = try! DTLSSession(context: context, remoteFingerprint: "00")
runFuzzer(fuzzDTLS)
