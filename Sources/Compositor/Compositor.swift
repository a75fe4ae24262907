import Drawing
import Foundation
import Layout
import MediaCodecs
import Synchronization

/// The program's look: which layout, who in which order, what text and images.
public struct Scene: Sendable {
    public var layout: LayoutSpec
    public var participants: [CompositorInput]
    public var banner: String?
    public var logo: TransparentImage?
    /// A picture behind the stage, and a name for it so it is scaled once, not every tick.
    public var background: (key: String, picture: VideoFrame)?
    /// A chat message on screen: a lower third, above the banner, with who wrote it.
    public var comment: (name: String, text: String)?
    /// How the program arrives at this scene when its layout or tiles differ from the last.
    public var transition: Transition
    public var theme: Theme
    /// A clock in the middle of the picture counting down to `until` under `label`.
    public var countdown: (label: String, until: Date)?

    public init(layout: LayoutSpec, participants: [CompositorInput], banner: String? = nil, logo: TransparentImage? = nil,
                background: (key: String, picture: VideoFrame)? = nil, comment: (name: String, text: String)? = nil,
                transition: Transition = .cut, theme: Theme = .standard, countdown: (label: String, until: Date)? = nil) {
        self.theme = theme
        self.countdown = countdown
        self.comment = comment
        self.transition = transition
        self.layout = layout
        self.participants = participants
        self.banner = banner
        self.logo = logo
        self.background = background
    }
}

/// The show's brand as the compositor draws it: the studio's preview applies the same rules
/// (web/js/studio.js `applyTheme`).
public struct Theme: Sendable, Equatable {
    /// How a name tag or the banner is drawn: on the accent; dark and translucent; or white.
    /// A shaded or white banner keeps an accent edge at its left.
    public enum Style: String, Sendable {
        case accent, shade, light
    }

    public var accent: YUVColor
    /// Text on the accent: white, or near-black when the accent is light.
    public var onAccent: YUVColor
    public var fontPath: String
    public var nameTags: Style
    public var banner: Style

    public static let standard = Theme(red: 37, green: 99, blue: 235)
    static let ink = YUVColor(red: 17, green: 24, blue: 39)

    public init(red: Int, green: Int, blue: Int, fontPath: String = TextRenderer.defaultFont, nameTags: Style = .shade, banner: Style = .accent) {
        accent = YUVColor(red: red, green: green, blue: blue)
        onAccent = Self.isLight(red: red, green: green, blue: blue) ? Self.ink : .white
        self.fontPath = fontPath
        self.nameTags = nameTags
        self.banner = banner
    }

    /// Perceived brightness past which white text would not read on the colour.
    public static func isLight(red: Int, green: Int, blue: Int) -> Bool {
        299 * red + 587 * green + 114 * blue > 160_000
    }

    /// Paints a box in `style` and says which colour its text takes.
    func paint(_ rect: PixelRect, style: Style, edge: Int, on picture: inout VideoFrame) -> YUVColor {
        switch style {
        case .accent:
            picture.fill(rect, with: accent, opacity: 235)
            return onAccent
        case .shade:
            picture.fill(rect, with: .shade, opacity: 160)
            if edge > 0 { picture.fill(PixelRect(x: rect.x, y: rect.y, width: edge, height: rect.height), with: accent) }
            return .white
        case .light:
            picture.fill(rect, with: .white, opacity: 240)
            if edge > 0 { picture.fill(PixelRect(x: rect.x, y: rect.y, width: edge, height: rect.height), with: accent) }
            return Self.ink
        }
    }
}

/// How the program goes from one arrangement to the next.
public enum Transition: Sendable, Equatable {
    case cut
    /// The last picture of the old arrangement, frozen, fades out over the new one, live.
    case crossFade(seconds: Double)
}

/// The time the mix loop keeps: nanoseconds on a monotonic clock, and a sleep until one of
/// them. Production uses the kernel's monotonic clock; tests give a simulated one, so
/// they run as fast as the machine allows and lateness is whatever they make it.
public protocol CompositorClock: Sendable {
    func now() -> UInt64
    func sleep(until deadline: UInt64)
}

/// CLOCK_MONOTONIC, slept on with absolute deadlines so ticks never drift.
public struct MonotonicClock: CompositorClock {
    public init() {}

    public func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    public func sleep(until deadline: UInt64) {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, nil) == EINTR {}
    }
}

/// The mix loop: on a fixed tick it draws the scene into one picture, mixes the stage's
/// audio, and encodes both once. Ticks are scheduled against absolute times from the start,
/// so the clock never drifts; a tick that starts late is counted, and a frame that can no
/// longer be on time is skipped rather than delaying the ones after it.
public final class Compositor: Sendable {
    public struct Settings: Sendable, Equatable {
        public var width: Int
        public var height: Int
        public var framesPerSecond: Int
        public var videoBitrateKbps: Int
        public var audioBitrate: Int
        public var encoderPreset: String
        public var encoderThreads: Int

        public init(width: Int = 1280, height: Int = 720, framesPerSecond: Int = 30, videoBitrateKbps: Int = 3000,
                    audioBitrate: Int = 128_000, encoderPreset: String = "veryfast", encoderThreads: Int = 0) {
            self.width = width
            self.height = height
            self.framesPerSecond = framesPerSecond
            self.videoBitrateKbps = videoBitrateKbps
            self.audioBitrate = audioBitrate
            self.encoderPreset = encoderPreset
            self.encoderThreads = encoderThreads
        }

        /// x264's threads: `encoderThreads` when positive; when 0, one thread up to 720p30 (a
        /// fifth of a core at veryfast, and cheaper than slice threads' coordination) and
        /// x264's own choice above; when negative, always x264's own choice.
        public var effectiveEncoderThreads: Int {
            if encoderThreads != 0 { return max(0, encoderThreads) }
            return width * height * framesPerSecond <= 1280 * 720 * 30 ? 1 : 0
        }

        /// From a broadcast's `resolution` setting: 720p30 (default), 1080p30, 1080p60.
        public init(resolution: String) {
            switch resolution {
            case "1080p30": self.init(width: 1920, height: 1080, framesPerSecond: 30, videoBitrateKbps: 4500)
            case "1080p60": self.init(width: 1920, height: 1080, framesPerSecond: 60, videoBitrateKbps: 6000)
            default: self.init()
            }
        }
    }

    public struct Statistics: Sendable, Equatable {
        public var frames = 0
        public var lateFrames = 0
        public var skippedFrames = 0
        public var encodeErrors = 0
    }

    public let settings: Settings
    /// What the encoders were opened with: every output needs it before the first packet.
    public let format: ProgramFormat
    /// The scene, and a count of its arrangements (layout and tiles), which a transition follows.
    private let scene: Mutex<(scene: Scene, arrangement: Int)>
    private let statistics = Mutex(Statistics())
    private let running = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let engine: Mutex<Engine>
    private let onPacket: @Sendable (ProgramPacket) -> Void
    private let clock: any CompositorClock
    private let done = DispatchSemaphore(value: 0)

    /// The encoders and drawing state, used only by the mix thread.
    private struct Engine: @unchecked Sendable {
        var video: H264Encoder
        var audio: AACEncoder
        /// By font file; nil where the file would not load (the default face is used instead).
        var fonts: [String: TextRenderer?] = [:]
        /// By input, for the inputs of the current scene (which keeps them alive).
        var scalers: [ObjectIdentifier: FrameScaler] = [:]
        var background: (key: String, frame: VideoFrame)?
        /// The picture drawn each tick, reused so a frame costs no allocation.
        var canvas: VideoFrame?
        /// The arrangement last drawn, and a cross-fade under way from the one before.
        var arrangement = 0
        var fade: (from: VideoFrame, start: UInt64, ticks: UInt64)?

        /// The theme's face, loaded once; the default face when it cannot be.
        mutating func text(_ path: String) -> TextRenderer? {
            if fonts[path] == nil { fonts[path] = .some(try? TextRenderer(fontPath: path)) }
            if let renderer = fonts[path] ?? nil { return renderer }
            guard path != TextRenderer.defaultFont else { return nil }
            return text(TextRenderer.defaultFont)
        }
    }

    public init(settings: Settings, scene: Scene, clock: any CompositorClock = MonotonicClock(),
                onPacket: @escaping @Sendable (ProgramPacket) -> Void) throws {
        self.settings = settings
        self.clock = clock
        let video = try H264Encoder(.init(width: settings.width, height: settings.height, framesPerSecond: settings.framesPerSecond,
                                          bitrateKbps: settings.videoBitrateKbps, preset: settings.encoderPreset, threads: settings.effectiveEncoderThreads))
        let audio = try AACEncoder(bitrate: settings.audioBitrate)
        format = ProgramFormat(width: settings.width, height: settings.height, framesPerSecond: settings.framesPerSecond,
                        videoBitrateKbps: settings.videoBitrateKbps, parameterSets: video.parameterSets, audioSpecificConfig: audio.audioSpecificConfig)
        engine = Mutex(Engine(video: video, audio: audio))
        self.scene = Mutex((scene, 0))
        self.onPacket = onPacket
    }

    public func update(_ scene: Scene) {
        self.scene.withLock { current in
            let rearranged = current.scene.layout.name != scene.layout.name
                || current.scene.participants.map(ObjectIdentifier.init) != scene.participants.map(ObjectIdentifier.init)
            current.scene = scene
            if rearranged { current.arrangement += 1 }
        }
    }

    public var stats: Statistics { statistics.withLock { $0 } }

    /// Starts the mix thread.
    public func start() {
        guard !running.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in
            mix { _ in stopped.load(ordering: .relaxed) }
            done.signal()
        }
        thread.name = "tally-compositor"
        thread.start()
    }

    /// Stops after the current tick and waits for the thread to finish.
    public func stop() {
        guard running.load(ordering: .relaxed), !stopped.exchange(true, ordering: .relaxed) else { return }
        done.wait()
    }

    /// Runs the first `count` ticks on the calling thread, on the compositor's clock; for
    /// tests and tools that want frames without a thread.
    public func run(ticks count: UInt64) {
        mix { $0 >= count }
    }

    /// The loop: each tick is due at the start plus its number of intervals. `finished` is
    /// asked before each tick with its number.
    private func mix(until finished: (UInt64) -> Bool) {
        let interval = 1_000_000_000 / UInt64(settings.framesPerSecond)
        let start = clock.now()
        var tick: UInt64 = 0
        while !finished(tick) {
            let due = start + tick * interval
            let now = clock.now()
            if now < due {
                clock.sleep(until: due)
            } else if now - due > interval {
                // This tick's picture cannot be on time: skip it, keeping the clock. Its sound
                // is still mixed and encoded: audio stamps count samples, so a tick without
                // sound would put every later sound a tick early against its picture.
                statistics.withLock {
                    $0.lateFrames += 1
                    $0.skippedFrames += 1
                }
                CompositorMetrics.lateFrames.increment()
                CompositorMetrics.skippedFrames.increment()
                let packets = engine.withLock { engine in sound(tick: tick, scene: self.scene.withLock { $0.scene }, engine: &engine) }
                for packet in packets { onPacket(packet) }
                tick += 1
                continue
            } else if now - due > interval / 2 {
                statistics.withLock { $0.lateFrames += 1 }
                CompositorMetrics.lateFrames.increment()
            }
            produce(tick: tick)
            tick += 1
        }
    }

    /// The tick's share of the stage's sound, mixed and encoded.
    private func sound(tick: UInt64, scene: Scene, engine: inout Engine) -> [ProgramPacket] {
        let fps = UInt64(settings.framesPerSecond)
        let sampleStart = Int(tick * 48_000 / fps)
        let sampleEnd = Int((tick + 1) * 48_000 / fps)
        var mix = [Float](repeating: 0, count: (sampleEnd - sampleStart) * 2)
        for input in scene.participants { input.mix(into: &mix, count: mix.count) }
        for index in mix.indices { mix[index] = max(-1, min(1, mix[index])) }
        do {
            return try engine.audio.encode(mix)
        } catch {
            statistics.withLock { $0.encodeErrors += 1 }
            CompositorMetrics.encodeErrors.increment()
            return []
        }
    }

    /// One frame and the audio that goes with it, stamped from the tick number alone.
    private func produce(tick: UInt64) {
        let fps = UInt64(settings.framesPerSecond)
        let pts = Int64(tick * 1_000_000 / fps)
        let (scene, arrangement) = self.scene.withLock { $0 }
        let packets: [ProgramPacket] = engine.withLock { engine in
            var picture = engine.canvas ?? VideoFrame(width: settings.width, height: settings.height, fill: (0, 128, 128))
            if arrangement != engine.arrangement {
                engine.arrangement = arrangement
                engine.fade = nil
                if case .crossFade(let seconds) = scene.transition, let last = engine.canvas {
                    engine.fade = (last, tick, max(2, UInt64(seconds * Double(fps))))
                }
            }
            engine.canvas = nil
            draw(scene, into: &picture, engine: &engine)
            if let fade = engine.fade {
                let step = tick - fade.start + 1
                if step >= fade.ticks {
                    engine.fade = nil
                } else {
                    picture.blend(over: fade.from, weight: Int(step * 256 / fade.ticks))
                }
            }
            var out: [ProgramPacket] = []
            do {
                if let packet = try engine.video.encode(&picture, pts: pts) { out.append(packet) }
            } catch {
                statistics.withLock { $0.encodeErrors += 1 }
                CompositorMetrics.encodeErrors.increment()
            }
            engine.canvas = picture
            return out + sound(tick: tick, scene: scene, engine: &engine)
        }
        statistics.withLock { $0.frames += 1 }
        CompositorMetrics.frames.increment()
        for packet in packets { onPacket(packet) }
    }

    private func draw(_ scene: Scene, into picture: inout VideoFrame, engine: inout Engine) {
        let width = settings.width, height = settings.height
        if let background = scene.background {
            if engine.background?.key != background.key {
                var scaled = VideoFrame(width: width, height: height, fill: (YUVColor.stage.y, YUVColor.stage.u, YUVColor.stage.v))
                Self.drawCovering(background.picture, into: &scaled, rect: PixelRect(x: 0, y: 0, width: width, height: height), scaler: FrameScaler())
                engine.background = (background.key, scaled)
            }
            picture.copyPlanes(from: engine.background!.frame)
        } else {
            picture.fillPlanes(YUVColor.stage)
        }
        let theme = scene.theme
        let text = engine.text(theme.fontPath)
        // The layout places labels; each input's label is its place in the scene.
        let labels = scene.participants.indices.map(String.init)
        let inputs = Dictionary(uniqueKeysWithValues: zip(labels, scene.participants))
        let placements = scene.layout.place(labels, width: width, height: height)
        for placement in placements.sorted(by: { $0.z < $1.z }) {
            guard let input = inputs[placement.participant] else { continue }
            let rect = PixelRect(x: placement.x, y: placement.y, width: placement.width, height: placement.height)
            if let latest = input.latestFrame {
                let scaler = engine.scalers[ObjectIdentifier(input)] ?? FrameScaler()
                engine.scalers[ObjectIdentifier(input)] = scaler
                if placement.fit == .contain {
                    picture.fill(rect, with: .shade)
                    Self.drawContained(latest.frame, into: &picture, rect: rect, scaler: scaler)
                } else {
                    Self.drawCovering(latest.frame, into: &picture, rect: rect, scaler: scaler)
                }
            } else {
                picture.fill(rect, with: .tile)
                if let text {
                    let mask = text.render(input.name, pixelHeight: max(14, rect.height / 8), maxWidth: rect.width * 4 / 5)
                    picture.draw(mask, x: rect.x + (rect.width - mask.width) / 2, y: rect.y + (rect.height - mask.height) / 2, color: .white)
                }
            }
            if let text, rect.height >= 60 {
                let size = max(12, min(28, rect.height / 14))
                let mask = text.render(input.name, pixelHeight: size, maxWidth: rect.width - size * 2)
                let tag = PixelRect(x: rect.x + size / 2, y: rect.y + rect.height - mask.height - size, width: mask.width + size, height: mask.height + size / 2)
                let ink = theme.paint(tag, style: theme.nameTags, edge: 0, on: &picture)
                picture.draw(mask, x: tag.x + size / 2, y: tag.y + size / 4, color: ink)
            }
        }
        let shown = Set(scene.participants.map(ObjectIdentifier.init))
        engine.scalers = engine.scalers.filter { shown.contains($0.key) }
        if let banner = scene.banner, !banner.isEmpty, let text {
            let size = height / 20
            let mask = text.render(banner, pixelHeight: size, maxWidth: width * 8 / 10)
            let band = PixelRect(x: width / 20, y: height - size * 3, width: mask.width + size * 2, height: size * 2)
            let ink = theme.paint(band, style: theme.banner, edge: max(4, size / 5), on: &picture)
            picture.draw(mask, x: band.x + size, y: band.y + (band.height - mask.height) / 2, color: ink)
        }
        if let comment = scene.comment, let text {
            Self.drawComment(comment, into: &picture, text: text, theme: theme, bannerShown: scene.banner?.isEmpty == false)
        }
        if let countdown = scene.countdown, let text {
            Self.drawCountdown(label: countdown.label, remaining: countdown.until.timeIntervalSinceNow, into: &picture, text: text, theme: theme)
        }
        if let logo = scene.logo {
            let margin = height / 30
            picture.draw(logo, x: width - logo.picture.width - margin, y: margin)
        }
    }

    /// The comment's lower third, as the studio's preview draws it: the writer's name on an
    /// accent strip over the message on a light card, at the left, above the banner's band.
    static func drawComment(_ comment: (name: String, text: String), into picture: inout VideoFrame, text: TextRenderer, theme: Theme, bannerShown: Bool) {
        let width = picture.width, height = picture.height
        let size = height / 24
        let name = text.render(comment.name, pixelHeight: size, maxWidth: width * 6 / 10)
        let message = text.render(comment.text, pixelHeight: size, maxWidth: width * 6 / 10)
        let cardWidth = max(name.width, message.width) + size * 2
        let strip = size * 3 / 2
        let bottom = height - (bannerShown ? height / 20 * 3 + size / 2 : height / 20)
        let card = PixelRect(x: width / 20, y: bottom - strip - size * 2, width: cardWidth, height: strip + size * 2)
        picture.fill(PixelRect(x: card.x, y: card.y, width: card.width, height: strip), with: theme.accent, opacity: 255)
        picture.draw(name, x: card.x + size, y: card.y + (strip - name.height) / 2, color: theme.onAccent)
        picture.fill(PixelRect(x: card.x, y: card.y + strip, width: card.width, height: card.height - strip), with: .white, opacity: 240)
        picture.draw(message, x: card.x + size, y: card.y + strip + (size * 2 - message.height) / 2, color: .shade)
    }

    /// The countdown, as the studio's preview draws it: a card on the accent in the middle
    /// of the picture, the label over the time left (M:SS), 0:00 once it has passed.
    static func drawCountdown(label: String, remaining: TimeInterval, into picture: inout VideoFrame, text: TextRenderer, theme: Theme) {
        let width = picture.width, height = picture.height
        let labelSize = height / 18, clockSize = height / 6
        let labelMask = text.render(label, pixelHeight: labelSize, maxWidth: width * 7 / 10)
        let clockMask = text.render(countdownClock(remaining), pixelHeight: clockSize, maxWidth: width * 7 / 10)
        let cardWidth = max(labelMask.width, clockMask.width, width / 4) + labelSize * 2
        let cardHeight = labelMask.height + clockMask.height + labelSize * 2
        let card = PixelRect(x: (width - cardWidth) / 2, y: (height - cardHeight) / 2, width: cardWidth, height: cardHeight)
        picture.fill(card, with: theme.accent, opacity: 235)
        picture.draw(labelMask, x: card.x + (card.width - labelMask.width) / 2, y: card.y + labelSize, color: theme.onAccent)
        picture.draw(clockMask, x: card.x + (card.width - clockMask.width) / 2, y: card.y + labelSize + labelMask.height, color: theme.onAccent)
    }

    /// Whole seconds left, rounded up, as M:SS.
    static func countdownClock(_ remaining: TimeInterval) -> String {
        let seconds = remaining > 0 ? Int(min(remaining, 360_000).rounded(.up)) : 0
        let tens = seconds % 60 < 10 ? "0" : ""
        return "\(seconds / 60):\(tens)\(seconds % 60)"
    }

    /// Fills `rect`, cropping the picture's overflow equally on both sides.
    static func drawCovering(_ frame: VideoFrame, into picture: inout VideoFrame, rect: PixelRect, scaler: FrameScaler) {
        let sourceAspect = Double(frame.width) / Double(frame.height)
        let targetAspect = Double(rect.width) / Double(max(1, rect.height))
        var crop = PixelRect(x: 0, y: 0, width: frame.width, height: frame.height)
        if sourceAspect > targetAspect {
            crop.width = Int(Double(frame.height) * targetAspect)
            crop.x = (frame.width - crop.width) / 2
        } else {
            crop.height = Int(Double(frame.width) / targetAspect)
            crop.y = (frame.height - crop.height) / 2
        }
        // A source up to 6 % larger than its tile (a 640×360 layer in a 608×342 grid tile) is
        // cropped to it rather than scaled: the picture is that much closer, and the tile
        // costs a copy instead of a filter.
        let target = rect.clipped(width: picture.width, height: picture.height).even
        if crop.width >= target.width, crop.height >= target.height, crop.width * 100 <= target.width * 106, crop.height * 100 <= target.height * 106 {
            // Even offsets, so the chroma planes line up with luma.
            crop = PixelRect(x: (crop.x + (crop.width - target.width) / 2) & ~1, y: (crop.y + (crop.height - target.height) / 2) & ~1,
                             width: target.width, height: target.height)
            scaler.draw(frame, crop: crop, into: &picture, rect: target)
            return
        }
        scaler.draw(frame, crop: crop, into: &picture, rect: rect)
    }

    /// Fits the whole picture inside `rect`, centred.
    static func drawContained(_ frame: VideoFrame, into picture: inout VideoFrame, rect: PixelRect, scaler: FrameScaler) {
        let scale = min(Double(rect.width) / Double(frame.width), Double(rect.height) / Double(frame.height))
        let width = Int(Double(frame.width) * scale), height = Int(Double(frame.height) * scale)
        let target = PixelRect(x: rect.x + (rect.width - width) / 2, y: rect.y + (rect.height - height) / 2, width: width, height: height)
        scaler.draw(frame, crop: PixelRect(x: 0, y: 0, width: frame.width, height: frame.height), into: &picture, rect: target)
    }
}

extension VideoFrame {
    /// Mixes this picture over `old` of the same size: `weight` 256 is this picture alone,
    /// 0 the old one.
    mutating func blend(over old: VideoFrame, weight: Int) {
        let weight = UInt16(max(0, min(256, weight)))
        func mix(_ plane: inout [UInt8], _ under: [UInt8]) {
            plane.withUnsafeMutableBufferPointer { new in
                under.withUnsafeBufferPointer { old in
                    guard var to = new.baseAddress, var from = old.baseAddress else { return }
                    for _ in 0..<min(new.count, old.count) {
                        to.pointee = UInt8(truncatingIfNeeded: (UInt16(from.pointee) &* (256 &- weight) &+ UInt16(to.pointee) &* weight) >> 8)
                        to += 1
                        from += 1
                    }
                }
            }
        }
        mix(&y, old.y)
        mix(&u, old.u)
        mix(&v, old.v)
    }
}
