import ArgumentParser
import Compositor
import Foundation
import Layout
import MediaCodecs
import NetworkPolicy
import NIOPosix
import Outputs
import RTMP

/// The compositor's job as the benchmark defines it: four 360p inputs (raw I420 and s16le
/// stereo files, the same ones ffmpeg reads) → 720p30 grid → H.264 3 Mbps + AAC, for a fixed
/// number of frames, with optional RTMP destinations. Prints the process's CPU seconds.
struct CompositorBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compositor",
        abstract: "Four raw 360p inputs into a 720p30 grid, encoded once; CPU seconds as JSON.")

    @Option(help: "Raw I420 640×360 files, comma-separated (four).") var video: String
    @Option(help: "Raw s16le 48 kHz stereo files, comma-separated (four).") var audio: String
    @Option(help: "Seconds of program to make.") var seconds = 20
    @Option(help: "The layouts folder.") var layouts = "layouts"
    @Option(help: "RTMP URLs to push to, comma-separated (each with its key at the end).") var push = ""
    @Option(help: "x264 threads (0: Tally's default for the size, one at 720p30; -1: x264's own choice, as ffmpeg leaves it).") var encoderThreads = 0

    struct Result: Codable {
        var frames: Int
        var lateFrames: Int
        var cpuSeconds: Double
        var destinations: Int
        var droppedPackets: Int
    }

    func run() throws {
        let width = 640, height = 360
        let frameSize = width * height * 3 / 2
        let clips = try video.split(separator: ",").map { path -> [VideoFrame] in
            let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: String(path))))
            return stride(from: 0, to: data.count - frameSize + 1, by: frameSize).map { offset in
                VideoFrame(width: width, height: height, y: Array(data[offset..<offset + width * height]),
                           u: Array(data[offset + width * height..<offset + width * height * 5 / 4]),
                           v: Array(data[offset + width * height * 5 / 4..<offset + frameSize]))
            }
        }
        let tones = try audio.split(separator: ",").map { path -> [Float] in
            let data = try Data(contentsOf: URL(fileURLWithPath: String(path)))
            return data.withUnsafeBytes { raw in raw.bindMemory(to: Int16.self).map { Float($0) / 32768 } }
        }
        guard clips.count == 4, tones.count == 4, clips.allSatisfy({ !$0.isEmpty }), tones.allSatisfy({ $0.count >= 3200 }) else {
            throw ValidationError("give four video and four audio files")
        }
        let library = try LayoutLibrary(directory: URL(fileURLWithPath: layouts))
        guard let grid = library.layout(named: "grid") else { throw ValidationError("no grid layout in \(layouts)") }
        let inputs = (0..<4).map { CompositorInput(name: "Input \($0 + 1)") }
        let bus = ProgramBus()
        var settings = Compositor.Settings()
        settings.encoderThreads = encoderThreads
        let compositor = try Compositor(settings: settings, scene: Scene(layout: grid, participants: inputs)) { bus.publish($0) }
        let format = compositor.format
        let pushes = try push.split(separator: ",").enumerated().map { index, url in
            DestinationPush(id: "bench-\(index)", endpoint: try RTMPEndpoint(url: String(url), streamKey: ""), format: format,
                            group: MultiThreadedEventLoopGroup.singleton, policy: .unrestricted) { _ in }
        }
        for push in pushes {
            bus.attach(push)
            push.start()
        }
        // Feed the inputs like decoders would: one picture and 20 ms of audio per input at their own pace.
        let feeding = Feeder(inputs: inputs, clips: clips, tones: tones)
        feeding.start()
        Thread.sleep(forTimeInterval: 1)
        let before = Self.cpuSeconds()
        let startFrames = compositor.stats.frames
        compositor.start()
        Thread.sleep(forTimeInterval: Double(seconds))
        compositor.stop()
        let cpu = Self.cpuSeconds() - before
        feeding.stop()
        let dropped = pushes.reduce(0) { $0 + $1.droppedPackets }
        let done = DispatchSemaphore(value: 0)
        Task {
            for push in pushes { await push.stop() }
            done.signal()
        }
        done.wait()
        let stats = compositor.stats
        let result = Result(frames: stats.frames - startFrames, lateFrames: stats.lateFrames, cpuSeconds: cpu, destinations: pushes.count, droppedPackets: dropped)
        print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
    }
}

/// Delivers the clips and tones to the inputs at 30 fps on a thread of its own.
final class Feeder: @unchecked Sendable {
    private let inputs: [CompositorInput]
    private let clips: [[VideoFrame]]
    private let tones: [[Float]]
    private var running = true
    private let lock = NSLock()

    init(inputs: [CompositorInput], clips: [[VideoFrame]], tones: [[Float]]) {
        self.inputs = inputs
        self.clips = clips
        self.tones = tones
    }

    func start() {
        Thread.detachNewThread { [self] in
            var tick = 0
            let start = Date()
            while lock.withLock({ running }) {
                for (index, input) in inputs.enumerated() {
                    input.deliver(clips[index][tick % clips[index].count])
                    let tone = tones[index]
                    let offset = (tick * 3200) % (tone.count - 3199)
                    input.deliver(audio: Array(tone[offset..<offset + 3200]))
                }
                tick += 1
                let due = start.addingTimeInterval(Double(tick) / 30)
                Thread.sleep(forTimeInterval: max(0, due.timeIntervalSinceNow))
            }
        }
    }

    func stop() {
        lock.withLock { running = false }
    }
}
