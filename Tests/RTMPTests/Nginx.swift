import Foundation
import Testing

/// A real nginx with the RTMP module on loopback: the stand-in for YouTube and Twitch.
/// `/allow` and `/deny` on its HTTP port answer `on_publish` with 200 and 403.
final class NginxRTMP {
    let directory: URL
    let rtmpPort: Int
    let httpPort: Int
    private let process: Process

    init(onPublish: String? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-nginx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("logs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("rec"), withIntermediateDirectories: true)
        let rtmpPort = try Self.freePort()
        let httpPort = try Self.freePort()
        self.rtmpPort = rtmpPort
        self.httpPort = httpPort
        let notify = onPublish.map { "on_publish http://127.0.0.1:\(httpPort)/\($0);" } ?? ""
        let config = """
        load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
        daemon off;
        master_process off;
        error_log \(directory.path)/logs/error.log info;
        pid \(directory.path)/nginx.pid;
        events { worker_connections 64; }
        http {
            access_log off;
            client_body_temp_path \(directory.path)/body;
            proxy_temp_path \(directory.path)/proxy;
            fastcgi_temp_path \(directory.path)/fastcgi;
            uwsgi_temp_path \(directory.path)/uwsgi;
            scgi_temp_path \(directory.path)/scgi;
            server {
                listen 127.0.0.1:\(httpPort);
                location /allow { return 200; }
                location /deny { return 403; }
            }
        }
        rtmp {
            server {
                listen 127.0.0.1:\(rtmpPort);
                application live {
                    live on;
                    record all;
                    record_path \(directory.path)/rec;
                    \(notify)
                }
            }
        }
        """
        try config.write(to: directory.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-p", directory.path, "-c", directory.appendingPathComponent("nginx.conf").path]
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {
            if Self.accepts(port: rtmpPort) { break }
            usleep(50_000)
        }
        try #require(Self.accepts(port: rtmpPort), "nginx-rtmp did not start")
    }

    deinit {
        // The child may inherit a blocked SIGTERM from the test runner's thread.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Stops nginx reading anything, as a receiver that hangs does; SIGKILL still ends it.
    func freeze() { kill(process.processIdentifier, SIGSTOP) }

    /// What nginx recorded of a stream key, once the publisher has gone.
    func recording(_ key: String) -> String { directory.appendingPathComponent("rec/\(key).flv").path }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

func ffprobe(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
    process.arguments = ["-v", "error"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
