/// A receiver's view of one SSRC's packet indices (RFC 3711 §3.3.1–3.3.2, Appendix A): the
/// highest index seen and which of the 1024 before it have arrived.
struct ReplayWindow {
    static let size: UInt64 = 1024
    private(set) var highest: UInt64?
    /// A ring of `size` bits, one per index modulo `size`.
    private var seen = [UInt64](repeating: 0, count: Int(size / 64))

    /// The 48-bit index of a sequence number: its rollover counter guessed from the highest
    /// index so far, as the one that puts it nearest.
    func estimate(_ sequence: UInt16) -> UInt64 {
        Self.index(of: sequence, near: highest)
    }

    /// The index of `sequence` nearest `highest`, the highest index known on its SSRC.
    static func index(of sequence: UInt16, near highest: UInt64?) -> UInt64 {
        guard let highest else { return UInt64(sequence) }
        let rollover = highest >> 16
        let top = Int(UInt16(truncatingIfNeeded: highest))
        var guess = rollover
        if top < 32768 {
            if Int(sequence) - top > 32768, rollover > 0 { guess = rollover - 1 }
        } else if top - 32768 > Int(sequence) {
            guess = rollover + 1
        }
        return guess << 16 | UInt64(sequence)
    }

    /// False for an index already seen, or too old to tell.
    func isFresh(_ index: UInt64) -> Bool {
        guard let highest, index <= highest else { return true }
        return highest - index < Self.size && !contains(index)
    }

    mutating func accept(_ index: UInt64) {
        if let highest, index <= highest {
            if highest - index < Self.size { mark(index) }
            return
        }
        if let highest, index - highest < Self.size {
            var gap = highest + 1
            while gap < index {
                clear(gap)
                gap += 1
            }
        } else {
            for word in seen.indices { seen[word] = 0 }
        }
        highest = index
        mark(index)
    }

    private func contains(_ index: UInt64) -> Bool {
        let bit = index % Self.size
        return seen[Int(bit / 64)] & (1 << (bit % 64)) != 0
    }

    private mutating func mark(_ index: UInt64) {
        let bit = index % Self.size
        seen[Int(bit / 64)] |= 1 << (bit % 64)
    }

    private mutating func clear(_ index: UInt64) {
        let bit = index % Self.size
        seen[Int(bit / 64)] &= ~(1 << (bit % 64))
    }
}

/// The highest RTP index sent on each SSRC, from which each packet's rollover counter
/// follows. A sender needs no more: what it sends may repeat an index (a retransmission).
///
/// A transport sends a handful of SSRCs (audio, video, their RTX), so they are kept inline
/// and searched in order; a dictionary takes any beyond. Sending a packet then touches no
/// memory outside the SRTP context.
struct SentIndices {
    private var ssrcs = InlineArray<4, UInt32>(repeating: 0)
    private var highest = InlineArray<4, UInt64>(repeating: 0)
    private var inlineCount = 0
    private var others: [UInt32: UInt64] = [:]

    /// The index of `sequence` on `ssrc`, recorded as sent.
    mutating func send(_ sequence: UInt16, ssrc: UInt32) -> UInt64 {
        for slot in 0..<inlineCount where ssrcs[slot] == ssrc {
            let index = ReplayWindow.index(of: sequence, near: highest[slot])
            highest[slot] = max(highest[slot], index)
            return index
        }
        let index = ReplayWindow.index(of: sequence, near: others[ssrc])
        if inlineCount < ssrcs.count {
            ssrcs[inlineCount] = ssrc
            highest[inlineCount] = index
            inlineCount += 1
        } else {
            others[ssrc] = max(others[ssrc] ?? 0, index)
        }
        return index
    }
}
