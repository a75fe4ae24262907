"""Just enough of a TURN client (RFC 8656 over UDP, long-term credentials) to ask a server
for what a browser never would: relays to other hosts, stale credentials."""
import hashlib
import hmac
import os
import socket
import struct

COOKIE = 0x2112A442
ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND = 0x003, 0x004, 0x008, 0x009
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, REALM, NONCE = 0x0006, 0x0008, 0x0009, 0x0014, 0x0015
LIFETIME, XOR_PEER_ADDRESS, XOR_RELAYED_ADDRESS, REQUESTED_TRANSPORT, CHANNEL_NUMBER = 0x000D, 0x0012, 0x0016, 0x0019, 0x000C


def message_type(method, klass):
    return (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | ((klass & 1) << 4) | ((klass & 2) << 7)


def attribute(kind, value):
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * ((4 - len(value) % 4) % 4)


def xor_address(ip, port, transaction):
    packed = socket.inet_aton(ip)
    mask = struct.pack("!I", COOKIE)
    return struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + bytes(a ^ b for a, b in zip(packed, mask))


class TURNClient:
    def __init__(self, host, port, username, password):
        self.server = (host, port)
        self.username, self.password = username, password
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.settimeout(3)
        self.realm = self.nonce = None

    def key(self):
        return hashlib.md5(f"{self.username}:{self.realm.decode()}:{self.password}".encode()).digest()

    def request(self, method, attributes=b""):
        """Sends a request (authenticating once the server has named its realm); returns
        (class, error code or None, {attribute type: value})."""
        for _ in range(3):
            transaction = os.urandom(12)
            body = attributes
            if self.realm:
                body += attribute(USERNAME, self.username.encode()) + attribute(REALM, self.realm) + attribute(NONCE, self.nonce)
                header = struct.pack("!HHI", message_type(method, 0), len(body) + 24, COOKIE) + transaction
                mac = hmac.new(self.key(), header + body, hashlib.sha1).digest()
                body += attribute(MESSAGE_INTEGRITY, mac)
            message = struct.pack("!HHI", message_type(method, 0), len(body), COOKIE) + transaction + body
            self.socket.sendto(message, self.server)
            reply = self.socket.recv(65536)
            klass = ((struct.unpack("!H", reply[:2])[0] >> 4) & 1) | ((struct.unpack("!H", reply[:2])[0] >> 7) & 2)
            found, offset = {}, 20
            while offset + 4 <= len(reply):
                kind, length = struct.unpack("!HH", reply[offset:offset + 4])
                found[kind] = reply[offset + 4:offset + 4 + length]
                offset += 4 + length + (4 - length % 4) % 4
            code = None
            if ERROR_CODE in found:
                value = found[ERROR_CODE]
                code = (value[2] & 7) * 100 + value[3]
            if code in (401, 438) and REALM in found and (self.realm is None or code == 438):
                self.realm, self.nonce = found[REALM], found[NONCE]
                continue
            return klass, code, found
        return klass, code, found

    def allocate(self):
        return self.request(ALLOCATE, attribute(REQUESTED_TRANSPORT, bytes([17, 0, 0, 0])))

    def permit(self, ip, port=9):
        return self.request(CREATE_PERMISSION, attribute(XOR_PEER_ADDRESS, xor_address(ip, port, None)))

    def bind_channel(self, ip, port, channel=0x4000):
        return self.request(CHANNEL_BIND, attribute(CHANNEL_NUMBER, struct.pack("!HH", channel, 0)) + attribute(XOR_PEER_ADDRESS, xor_address(ip, port, None)))

    def close(self):
        self.socket.close()
