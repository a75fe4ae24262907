#define _GNU_SOURCE
#include "CDatagram.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int tally_datagram_bind(const struct sockaddr *address, socklen_t length, int bufferBytes) {
    int fd = socket(address->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int on = 1;
    int packetInfo = address->sa_family == AF_INET6
        ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on)
        : setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
    if (packetInfo < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufferBytes, sizeof bufferBytes) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufferBytes, sizeof bufferBytes) < 0 ||
        bind(fd, address, length) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

// Room for one packet-info control message of either family.
#define TALLY_SOURCE_SPACE CMSG_SPACE(sizeof(struct in6_pktinfo))

static void tally_put_control(struct msghdr *message, unsigned char *control, int level, int type, const void *data, size_t size) {
    message->msg_control = control;
    message->msg_controllen = CMSG_SPACE(size);
    struct cmsghdr *header = CMSG_FIRSTHDR(message);
    header->cmsg_level = level;
    header->cmsg_type = type;
    header->cmsg_len = CMSG_LEN(size);
    memcpy(CMSG_DATA(header), data, size);
}

static void tally_set_source(struct msghdr *message, const tally_datagram_source *source, unsigned char *control) {
    if (source->family == AF_INET) {
        struct in_pktinfo info = {.ipi_spec_dst = source->v4};
        tally_put_control(message, control, IPPROTO_IP, IP_PKTINFO, &info, sizeof info);
    } else if (source->family == AF_INET6) {
        struct in6_pktinfo info = {.ipi6_addr = source->v6};
        tally_put_control(message, control, IPPROTO_IPV6, IPV6_PKTINFO, &info, sizeof info);
    }
}

int tally_datagram_send(int fd, uint8_t *const *bytes, const size_t *lengths,
                        const struct sockaddr_storage *addresses, const socklen_t *addressLengths,
                        const tally_datagram_source *sources, int count) {
    struct mmsghdr messages[64];
    struct iovec vectors[64];
    unsigned char controls[64][TALLY_SOURCE_SPACE] __attribute__((aligned(8)));
    if (count > 64) count = 64;
    if (count <= 0) return 0;
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    memset(controls, 0, TALLY_SOURCE_SPACE * (size_t)count);
    for (int i = 0; i < count; i++) {
        vectors[i].iov_base = bytes[i];
        vectors[i].iov_len = lengths[i];
        messages[i].msg_hdr.msg_name = (void *)&addresses[i];
        messages[i].msg_hdr.msg_namelen = addressLengths[i];
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        tally_set_source(&messages[i].msg_hdr, &sources[i], controls[i]);
    }
    int sent;
    do {
        sent = sendmmsg(fd, messages, (unsigned int)count, 0);
    } while (sent < 0 && errno == EINTR);
    return sent < 0 ? -errno : sent;
}

int tally_available_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int count = CPU_COUNT(&set);
    return count > 0 ? count : 1;
}
