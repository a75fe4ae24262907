import DTLS
import FuzzDriver
import SRTP

/// Any datagram, as SRTP and as SRTCP under both profiles: unprotecting never traps or reads
/// past the bytes, and a forgery is never taken. What protects comes back unchanged, and
/// once taken is refused as a replay.
func fuzzSRTP(_ bytes: [UInt8]) {
    for (sender, receiver) in sessions {
        var forged = bytes
        precondition((try? receiver.unprotectRTP(&forged)) == nil, "forged SRTP was accepted")
        forged = bytes
        precondition((try? receiver.unprotectRTCP(&forged)) == nil, "forged SRTCP was accepted")

        var packet = bytes
        if (try? sender.protectRTP(&packet)) != nil {
            var restored = packet
            do {
                try receiver.unprotectRTP(&restored)
                precondition(restored == bytes, "SRTP round trip changed the packet")
                var replay = packet
                precondition((try? receiver.unprotectRTP(&replay)) == nil, "replayed SRTP was accepted")
            } catch {
                // A sequence number far behind the receiver's window is refused as too old.
                precondition(error == .replayed, "own SRTP refused: \(error)")
            }
        }
        packet = bytes
        if (try? sender.protectRTCP(&packet)) != nil {
            var restored = packet
            guard (try? receiver.unprotectRTCP(&restored)) != nil else { fatalError("own SRTCP refused") }
            precondition(restored == bytes, "SRTCP round trip changed the packet")
        }
    }
}

// One pair of sessions per profile for the run: libFuzzer calls in from a single thread.
nonisolated(unsafe) let sessions: [(SRTPSession, SRTPSession)] = [SRTPKeyingMaterial.Profile.aeadAES128GCM, .aes128CMSHA1_80].map { profile in
    let keys = SRTPKeyingMaterial(profile: profile, localKey: Array(repeating: 1, count: 16), localSalt: Array(repeating: 2, count: profile.saltLength),
                                  remoteKey: Array(repeating: 3, count: 16), remoteSalt: Array(repeating: 4, count: profile.saltLength))
    return (try! SRTPSession(keys: keys), try! SRTPSession(keys: keys.mirrored))
}
runFuzzer(fuzzSRTP)
