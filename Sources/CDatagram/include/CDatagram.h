#ifndef TALLY_CDATAGRAM_H
#define TALLY_CDATAGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

// The WebRTC transport's UDP port: what Swift's Glibc module leaves out (sendmmsg), behind
// plain functions. Every call returns -errno on failure.

// A non-blocking UDP socket with SO_REUSEADDR, both kernel buffers asked at `bufferBytes`,
// bound to `address`. Returns the descriptor.
int tally_datagram_bind(const struct sockaddr *address, socklen_t length, int bufferBytes);

// Sends `count` (at most 64) datagrams in one sendmmsg: `lengths[i]` bytes at `bytes[i]` to
// `addresses[i]`, which is `addressLengths[i]` long. Returns how many the kernel took; when
// the first is refused, -errno.
int tally_datagram_send(int fd, uint8_t *const *bytes, const size_t *lengths,
                        const struct sockaddr_storage *addresses, const socklen_t *addressLengths, int count);

#endif
