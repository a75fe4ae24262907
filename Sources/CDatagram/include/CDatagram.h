#ifndef TALLY_CDATAGRAM_H
#define TALLY_CDATAGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

// The WebRTC transport's UDP port and threads: what Swift's Glibc module leaves out (sendmmsg,
// CPU_COUNT), behind plain functions. Calls that can fail return -errno.

// A non-blocking UDP socket with SO_REUSEADDR, both kernel buffers asked at `bufferBytes`,
// and each datagram's destination address reported (IP_PKTINFO), bound to `address`.
// Returns the descriptor.
int tally_datagram_bind(const struct sockaddr *address, socklen_t length, int bufferBytes);

// The local address a datagram leaves from, on a socket bound to every address: the one its
// peer sent to (IP_PKTINFO, IPV6_PKTINFO), not the one the kernel's route would pick, which
// the peer would not recognise. family 0: the kernel chooses.
typedef struct {
    sa_family_t family;
    struct in_addr v4;
    struct in6_addr v6;
} tally_datagram_source;

// Sends `count` (at most 64) datagrams in one sendmmsg: `lengths[i]` bytes at `bytes[i]` to
// `addresses[i]`, which is `addressLengths[i]` long, from `sources[i]`. Returns how many the
// kernel took; when the first is refused, -errno.
int tally_datagram_send(int fd, uint8_t *const *bytes, const size_t *lengths,
                        const struct sockaddr_storage *addresses, const socklen_t *addressLengths,
                        const tally_datagram_source *sources, int count);

// How many CPUs this process may run on (its affinity mask, as taskset sets it); at least 1.
int tally_available_cpus(void);

#endif
