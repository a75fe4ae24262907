#ifndef TALLY_BENCH_SOCKET_H
#define TALLY_BENCH_SOCKET_H

#include <stddef.h>
#include <stdint.h>

// The load generator's sockets: what Swift's Glibc module leaves out (epoll, recvmmsg,
// control messages), behind plain functions. Every call returns -errno on failure.

// A non-blocking UDP socket bound to an ephemeral loopback port and connected to ip:port,
// with kernel receive timestamps (SO_TIMESTAMPNS) and a receive buffer of `receiveBuffer` bytes.
int tally_bench_udp_connect(const char *ip, uint16_t port, int receiveBuffer);

// A blocking TCP connection to ip:port.
int tally_bench_tcp_connect(const char *ip, uint16_t port);

int tally_bench_epoll_create(void);
int tally_bench_epoll_add(int epoll, int fd, uint64_t tag);
// Waits up to timeoutMilliseconds; fills `tags` with the tags of readable sockets.
int tally_bench_epoll_wait(int epoll, uint64_t *tags, int capacity, int timeoutMilliseconds);

// Receives up to `count` datagrams without blocking into `count` buffers of `stride` bytes
// at `buffers`; `lengths[i]` and `arrivals[i]` (CLOCK_REALTIME nanoseconds from the kernel,
// 0 when missing) describe each. Returns how many arrived, 0 when none.
int tally_bench_receive(int fd, uint8_t *buffers, size_t stride, int count, int32_t *lengths, int64_t *arrivals);

int tally_bench_send(int fd, const uint8_t *bytes, size_t length);

int64_t tally_bench_realtime_nanoseconds(void);

// The machine's own price of a datagram: sends `size`-byte datagrams round-robin to
// `receivers` loopback sockets (never read, so most are dropped at the receiver, as the
// kernel's full send path still runs) in sendmmsg batches of 64 for `seconds`. Stores how
// many were sent and the calling thread's CPU time in nanoseconds; returns 0 or -errno.
int tally_bench_udp_baseline(int receivers, int size, double seconds, int64_t *sent, int64_t *cpuNanoseconds);

#endif
