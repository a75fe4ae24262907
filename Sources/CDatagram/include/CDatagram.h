#ifndef TALLY_CDATAGRAM_H
#define TALLY_CDATAGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

// The WebRTC transport's UDP port and threads: what Swift's Glibc module leaves out (sendmmsg,
// CPU_COUNT), behind plain functions. Calls that can fail return -errno.

// A non-blocking UDP socket with SO_REUSEADDR, both kernel buffers asked at `bufferBytes`,
// bound to `address`. Returns the descriptor.
int tally_datagram_bind(const struct sockaddr *address, socklen_t length, int bufferBytes);

// Sends `count` (at most 64) datagrams in one sendmmsg: `lengths[i]` bytes at `bytes[i]` to
// `addresses[i]`, which is `addressLengths[i]` long. Returns how many the kernel took; when
// the first is refused, -errno.
int tally_datagram_send(int fd, uint8_t *const *bytes, const size_t *lengths,
                        const struct sockaddr_storage *addresses, const socklen_t *addressLengths, int count);

// How many CPUs this process may run on (its affinity mask, as taskset sets it); at least 1.
int tally_available_cpus(void);

#endif
