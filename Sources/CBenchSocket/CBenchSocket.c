#define _GNU_SOURCE
#include "CBenchSocket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int address(const char *ip, uint16_t port, struct sockaddr_in *out) {
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons(port);
    return inet_pton(AF_INET, ip, &out->sin_addr) == 1 ? 0 : -EINVAL;
}

int tally_bench_udp_connect(const char *ip, uint16_t port, int receiveBuffer) {
    struct sockaddr_in remote, local;
    if (address(ip, port, &remote) < 0 || address(ip, 0, &local) < 0) return -EINVAL;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int on = 1;
    // FORCE lifts rmem_max when running as root; the plain option is the fallback.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receiveBuffer, sizeof receiveBuffer) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, sizeof receiveBuffer);
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0 ||
        bind(fd, (struct sockaddr *)&local, sizeof local) < 0 ||
        connect(fd, (struct sockaddr *)&remote, sizeof remote) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int tally_bench_tcp_connect(const char *ip, uint16_t port) {
    struct sockaddr_in remote;
    if (address(ip, port, &remote) < 0) return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&remote, sizeof remote) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int tally_bench_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int tally_bench_epoll_add(int epoll, int fd, uint64_t tag) {
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) < 0 ? -errno : 0;
}

int tally_bench_epoll_wait(int epoll, uint64_t *tags, int capacity, int timeoutMilliseconds) {
    struct epoll_event events[256];
    if (capacity > 256) capacity = 256;
    int count = epoll_wait(epoll, events, capacity, timeoutMilliseconds);
    if (count < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < count; i++) tags[i] = events[i].data.u64;
    return count;
}

enum { maxBatch = 64, controlSpace = CMSG_SPACE(sizeof(struct timespec)) };

int tally_bench_receive(int fd, uint8_t *buffers, size_t stride, int count, int32_t *lengths, int64_t *arrivals) {
    struct mmsghdr messages[maxBatch];
    struct iovec vectors[maxBatch];
    char control[maxBatch][controlSpace];
    if (count > maxBatch) count = maxBatch;
    memset(messages, 0, sizeof(struct mmsghdr) * count);
    for (int i = 0; i < count; i++) {
        vectors[i].iov_base = buffers + stride * i;
        vectors[i].iov_len = stride;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_control = control[i];
        messages[i].msg_hdr.msg_controllen = controlSpace;
    }
    int received = recvmmsg(fd, messages, count, MSG_DONTWAIT, NULL);
    if (received < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < received; i++) {
        lengths[i] = (int32_t)messages[i].msg_len;
        arrivals[i] = 0;
        struct msghdr *header = &messages[i].msg_hdr;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(header); c; c = CMSG_NXTHDR(header, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec stamp;
                memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
                arrivals[i] = (int64_t)stamp.tv_sec * 1000000000 + stamp.tv_nsec;
            }
        }
    }
    return received;
}

int tally_bench_send(int fd, const uint8_t *bytes, size_t length) {
    ssize_t sent = send(fd, bytes, length, MSG_DONTWAIT);
    return sent < 0 ? -errno : (int)sent;
}

int64_t tally_bench_realtime_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int64_t thread_cpu_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

int tally_bench_udp_baseline(int receivers, int size, double seconds, int64_t *sent, int64_t *cpuNanoseconds) {
    int sender = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sender < 0) return -errno;
    int *sockets = calloc(receivers, sizeof(int));
    struct sockaddr_in *addresses = calloc(receivers, sizeof(struct sockaddr_in));
    uint8_t *payload = calloc(1, size);
    int result = 0;
    for (int i = 0; i < receivers; i++) {
        struct sockaddr_in local;
        socklen_t length = sizeof local;
        address("127.0.0.1", 0, &local);
        sockets[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sockets[i] < 0 || bind(sockets[i], (struct sockaddr *)&local, sizeof local) < 0 ||
            getsockname(sockets[i], (struct sockaddr *)&addresses[i], &length) < 0) {
            result = -errno;
            receivers = i + 1;
            goto done;
        }
    }
    struct mmsghdr messages[maxBatch];
    struct iovec vector = {payload, (size_t)size};
    int64_t count = 0, cpuStart = thread_cpu_nanoseconds();
    int64_t until = tally_bench_realtime_nanoseconds() + (int64_t)(seconds * 1e9);
    int next = 0;
    while (tally_bench_realtime_nanoseconds() < until) {
        memset(messages, 0, sizeof messages);
        for (int i = 0; i < maxBatch; i++) {
            messages[i].msg_hdr.msg_name = &addresses[next];
            messages[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
            messages[i].msg_hdr.msg_iov = &vector;
            messages[i].msg_hdr.msg_iovlen = 1;
            next = (next + 1) % receivers;
        }
        int done = sendmmsg(sender, messages, maxBatch, 0);
        if (done < 0) { result = -errno; break; }
        count += done;
    }
    *sent = count;
    *cpuNanoseconds = thread_cpu_nanoseconds() - cpuStart;
done:
    for (int i = 0; i < receivers; i++) if (sockets[i] > 0) close(sockets[i]);
    close(sender);
    free(sockets);
    free(addresses);
    free(payload);
    return result;
}
