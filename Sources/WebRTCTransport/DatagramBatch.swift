import CDatagram
import Glibc
import NIOCore

/// Where a UDP peer is, as the kernel takes it, and which of the server's addresses it talks
/// to: converted once when ICE selects the path, not for every packet.
struct DatagramDestination {
    var address = sockaddr_storage()
    var length: socklen_t = 0
    var source = tally_datagram_source()

    /// `local`: the address the peer's datagrams arrived at, which answers must come from.
    init?(_ socketAddress: SocketAddress, local: SocketAddress? = nil) {
        var converted = false
        socketAddress.withSockAddr { pointer, size in
            guard size <= MemoryLayout<sockaddr_storage>.size else { return }
            withUnsafeMutableBytes(of: &address) { $0.baseAddress!.copyMemory(from: pointer, byteCount: size) }
            length = socklen_t(size)
            converted = true
        }
        guard converted else { return nil }
        switch (socketAddress, local) {
        case (.v4, .v4(let here)?):
            source.family = sa_family_t(AF_INET)
            source.v4 = here.address.sin_addr
        case (.v6, .v6(let here)?):
            source.family = sa_family_t(AF_INET6)
            source.v6 = here.address.sin6_addr
        default:
            break
        }
    }
}

/// Outgoing media datagrams gathered for one `sendmmsg`: each packet is copied into a slot
/// of one arena, protected there in place, and sent with up to 63 others. A fan-out of
/// hundreds of copies so costs a few system calls and no allocation per copy.
///
/// Not thread-safe: owned by the transport's event loop.
final class DatagramBatch {
    static let capacity = 64
    /// Room per datagram: any RTP packet Tally forwards, plus SRTP's tag.
    static let slotSize = 2048

    private let arena: UnsafeMutablePointer<UInt8>
    private let starts: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>
    private let lengths: UnsafeMutablePointer<Int>
    private let addresses: UnsafeMutablePointer<sockaddr_storage>
    private let addressLengths: UnsafeMutablePointer<socklen_t>
    private let sources: UnsafeMutablePointer<tally_datagram_source>
    /// Who each datagram is for: if the kernel's buffer is full, the rest go through the
    /// channel, which waits for room.
    private var peers: [PeerConnection?]
    private(set) var count = 0

    init() {
        arena = .allocate(capacity: Self.capacity * Self.slotSize)
        starts = .allocate(capacity: Self.capacity)
        lengths = .allocate(capacity: Self.capacity)
        addresses = .allocate(capacity: Self.capacity)
        addressLengths = .allocate(capacity: Self.capacity)
        sources = .allocate(capacity: Self.capacity)
        for slot in 0..<Self.capacity { starts[slot] = arena + slot * Self.slotSize }
        peers = Array(repeating: nil, count: Self.capacity)
    }

    deinit {
        arena.deallocate()
        starts.deallocate()
        lengths.deallocate()
        addresses.deallocate()
        addressLengths.deallocate()
        sources.deallocate()
    }

    var isFull: Bool { count == Self.capacity }

    /// Copies `packet` (at most `slotSize` less SRTP's overhead) into the next slot and
    /// protects it there for `peer`; false when it cannot be protected, and nothing is queued.
    func append(_ packet: ByteBuffer, for peer: PeerConnection, to destination: DatagramDestination) -> Bool {
        append(for: peer, to: destination) { slot in
            packet.withUnsafeReadableBytes { slot.copyMemory(from: $0) }
            return packet.readableBytes
        }
    }

    /// Builds a packet in the next slot with `build`, which gets the room left after SRTP's
    /// overhead and returns the packet's length (nil: nothing to send), then protects it
    /// there for `peer`; false when nothing was queued.
    func append(for peer: PeerConnection, to destination: DatagramDestination, _ build: (UnsafeMutableRawBufferPointer) -> Int?) -> Bool {
        precondition(!isFull, "flush a full batch before appending")
        let slot = starts[count]!
        let room = Self.slotSize - PeerConnection.protectionOverhead
        guard let length = build(UnsafeMutableRawBufferPointer(start: slot, count: room)) else { return false }
        precondition(length <= room, "a datagram larger than a slot")
        guard let protectedLength = peer.protectRTP(slot, length: length, capacity: Self.slotSize) else { return false }
        lengths[count] = protectedLength
        addresses[count] = destination.address
        addressLengths[count] = destination.length
        sources[count] = destination.source
        peers[count] = peer
        count += 1
        return true
    }

    /// Sends everything queued on `fd`. Datagrams the kernel has no room for are handed to
    /// `overflow` with the peer they are for; one it refuses outright (an address it cannot
    /// reach, say) is dropped and its peer handed to `refused`.
    func send(on fd: CInt, overflow: (UnsafeRawBufferPointer, PeerConnection) -> Void, refused: (PeerConnection, CInt) -> Void) {
        var next = 0
        while next < count {
            let result = tally_datagram_send(fd, starts + next, lengths + next, addresses + next, addressLengths + next, sources + next, CInt(count - next))
            if result > 0 {
                next += Int(result)
            } else if result == -EAGAIN || result == -EWOULDBLOCK || result == -ENOBUFS {
                for slot in next..<count {
                    if let peer = peers[slot] { overflow(UnsafeRawBufferPointer(start: starts[slot], count: lengths[slot]), peer) }
                }
                next = count
            } else {
                if let peer = peers[next] { refused(peer, -result) }
                next += 1
            }
        }
        for slot in 0..<count { peers[slot] = nil }
        count = 0
    }
}

extension DatagramDestination {
    /// Sends one datagram now (ICE and DTLS, whose peers retransmit): true when the kernel took it.
    func send(_ bytes: [UInt8], on fd: CInt) -> Bool {
        var address = address, addressLength = length, source = source, byteCount = bytes.count
        return bytes.withUnsafeBufferPointer { buffer in
            var start = UnsafeMutablePointer(mutating: buffer.baseAddress)
            return tally_datagram_send(fd, &start, &byteCount, &address, &addressLength, &source, 1) == 1
        }
    }
}
