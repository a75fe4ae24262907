@testable import Compositor
import Drawing
import Foundation
import Layout
import MediaCodecs
import Synchronization
import Testing

private func gridLayout() throws -> LayoutSpec {
    let layouts = try LayoutLibrary(directory: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../layouts").standardized)
    return try #require(layouts.layout(named: "grid"))
}

private let red = YUVColor(red: 230, green: 30, blue: 30)
private let blue = YUVColor(red: 30, green: 60, blue: 230)

/// Time as a test scripts it: the loop asks for the time once to start and once per tick,
/// and tick `n` is told it is `lateness[n]` past its due time (on time when absent, so it
/// sleeps, which takes no time at all).
private final class ScriptedClock: CompositorClock {
    private let interval: UInt64
    private let lateness: [UInt64: UInt64]
    private let calls = Mutex<UInt64>(0)

    init(framesPerSecond: Int, lateness: [UInt64: UInt64] = [:]) {
        interval = 1_000_000_000 / UInt64(framesPerSecond)
        self.lateness = lateness
    }

    func now() -> UInt64 {
        let call = calls.withLock { calls in
            defer { calls += 1 }
            return calls
        }
        guard call > 0 else { return 0 }
        let tick = call - 1
        // A tick on time is asked a nanosecond before it is due.
        guard let late = lateness[tick] else { return tick == 0 ? 0 : tick * interval - 1 }
        return tick * interval + late
    }

    func sleep(until deadline: UInt64) {}
}

/// On time every tick, like `ScriptedClock`, and tells `onTick` as each tick after the first
/// is waited for: a test changes the scene at a given tick.
private final class SteppingClock: CompositorClock {
    let interval: UInt64
    let calls = Mutex<UInt64>(0)
    let onTick: @Sendable (UInt64) -> Void

    init(framesPerSecond: Int, onTick: @escaping @Sendable (UInt64) -> Void) {
        interval = 1_000_000_000 / UInt64(framesPerSecond)
        self.onTick = onTick
    }

    func now() -> UInt64 {
        let call = calls.withLock { calls in
            defer { calls += 1 }
            return calls
        }
        return call <= 1 ? 0 : (call - 1) * interval - 1
    }

    func sleep(until deadline: UInt64) { onTick(deadline / interval) }
}

/// Runs a small compositor for `ticks` ticks (0.6 s of program at 30 fps) on a scripted
/// clock, and decodes the last picture it encoded.
private func runProgram(scene: Scene, ticks: UInt64 = 18, lateness: [UInt64: UInt64] = [:]) throws
    -> (picture: VideoFrame, packets: [ProgramPacket], stats: Compositor.Statistics) {
    let packets = Mutex<[ProgramPacket]>([])
    let compositor = try Compositor(settings: .init(width: 320, height: 180, framesPerSecond: 30, videoBitrateKbps: 400, encoderThreads: 1),
                                    scene: scene, clock: ScriptedClock(framesPerSecond: 30, lateness: lateness)) { packet in
        packets.withLock { $0.append(packet) }
    }
    compositor.run(ticks: ticks)
    let all = packets.withLock { $0 }
    let decoder = try AVVideoDecoder(codecID: .init(27))
    var last: VideoFrame?
    for packet in all where packet.kind == .video {
        last = try decoder.decode(EncodedFrame(data: packet.data, rtpTimestamp: 0, isKeyframe: packet.isKeyframe)) ?? last
    }
    return (try #require(last), all, compositor.stats)
}

private func color(_ frame: VideoFrame, x: Int, y: Int) -> YUVColor {
    YUVColor(y: frame.y[y * frame.width + x], u: frame.u[y / 2 * frame.chromaWidth + x / 2], v: frame.v[y / 2 * frame.chromaWidth + x / 2])
}

private func near(_ a: YUVColor, _ b: YUVColor, tolerance: Int = 24) -> Bool {
    abs(Int(a.y) - Int(b.y)) <= tolerance && abs(Int(a.u) - Int(b.u)) <= tolerance && abs(Int(a.v) - Int(b.v)) <= tolerance
}

@Suite struct CompositorTests {
    @Test func drawsEachInputInItsGridTileAndEncodesOnTheTickClock() throws {
        let left = CompositorInput(name: "Ada")
        let right = CompositorInput(name: "Bo")
        left.deliver(VideoFrame(width: 640, height: 360, fill: (red.y, red.u, red.v)))
        right.deliver(VideoFrame(width: 480, height: 480, fill: (blue.y, blue.u, blue.v)))
        let (picture, packets, stats) = try runProgram(scene: Scene(layout: try gridLayout(), participants: [left, right]))
        #expect(picture.width == 320 && picture.height == 180)
        let placements = try gridLayout().place(["a", "b"], width: 320, height: 180)
        let a = try #require(placements.first { $0.participant == "a" })
        let b = try #require(placements.first { $0.participant == "b" })
        #expect(near(color(picture, x: a.x + a.width / 2, y: a.y + a.height / 3), red), "\(color(picture, x: a.x + a.width / 2, y: a.y + a.height / 3))")
        #expect(near(color(picture, x: b.x + b.width / 2, y: b.y + b.height / 3), blue))
        #expect(near(color(picture, x: 160, y: 2), .stage), "the backdrop shows outside the tiles")
        let video = packets.filter { $0.kind == .video }
        #expect(video.count == 18 && video.first?.isKeyframe == true)
        // Frame n is stamped n/30 s whatever the wall clock did.
        #expect(zip(video, video.dropFirst()).allSatisfy { ($1.pts - $0.pts) % 33_333 <= 1 && $1.pts > $0.pts })
        #expect(packets.contains { $0.kind == .audio })
        #expect(stats.frames == video.count, "x264 in zero-latency mode gives one packet per frame")
    }

    @Test func aLateTickIsCountedAndOneThatCannotBeOnTimeIsSkippedKeepingTheClock() throws {
        let interval: UInt64 = 1_000_000_000 / 30
        let (_, packets, stats) = try runProgram(scene: Scene(layout: try gridLayout(), participants: [CompositorInput(name: "Ada")]),
                                                 ticks: 12, lateness: [3: interval * 6 / 10, 5: interval * 3 / 2, 8: interval / 4])
        #expect(stats.frames == 11 && stats.lateFrames == 2 && stats.skippedFrames == 1)
        let stamps: [Int64] = packets.filter { $0.kind == .video }.map(\.pts)
        let ticks: [Int64] = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
        // Tick 5 has no frame; the ones after it keep their own times.
        #expect(stamps == ticks.map { $0 * 1_000_000 / 30 })
    }

    @Test func aSkippedTickStillHasItsSoundSoLaterSoundKeepsItsTime() throws {
        let interval: UInt64 = 1_000_000_000 / 30
        func audio(lateness: [UInt64: UInt64]) throws -> [Int64] {
            let (_, packets, _) = try runProgram(scene: Scene(layout: try gridLayout(), participants: [CompositorInput(name: "Ada")]),
                                                 ticks: 40, lateness: lateness)
            return packets.filter { $0.kind == .audio }.map(\.pts)
        }
        let onTime = try audio(lateness: [:])
        // Three pictures skipped: audio stamps count samples, so without their sound every
        // later sound would be stamped 100 ms early against its picture.
        let skipping = try audio(lateness: [5: interval * 3 / 2, 6: interval * 3 / 2, 7: interval * 3 / 2])
        #expect(!onTime.isEmpty && skipping == onTime)
    }

    @Test func aSourceSlightlyLargerThanItsTileIsCroppedNotScaled() {
        // 640×360 into 608×342: the centre 608×342 is copied as it is.
        var source = VideoFrame(width: 640, height: 360, fill: (y: 60, u: 128, v: 128))
        for row in 0..<360 { for column in 0..<640 { source.y[row * 640 + column] = UInt8((column + row) % 200 + 20) } }
        var picture = VideoFrame(width: 1280, height: 720, fill: (y: 16, u: 128, v: 128))
        Compositor.drawCovering(source, into: &picture, rect: PixelRect(x: 28, y: 14, width: 608, height: 342), scaler: FrameScaler())
        // Centred on even offsets, (16, 9) becomes (16, 8): source (16 + c, 8 + r) lands at tile (c, r).
        let sourceX = 16, sourceY = 8
        for (column, row) in [(0, 0), (300, 170), (607, 341)] {
            #expect(picture.y[(14 + row) * 1280 + 28 + column] == source.y[(sourceY + row) * 640 + sourceX + column])
        }
    }

    @Test func anInputWithoutAPictureIsANameTileNotAStall() throws {
        let waiting = CompositorInput(name: "Waiting Person")
        let (picture, packets, _) = try runProgram(scene: Scene(layout: try gridLayout(), participants: [waiting]))
        #expect(packets.filter { $0.kind == .video }.count == 18)
        let tile = try #require(try gridLayout().place(["w"], width: 320, height: 180).first)
        #expect(near(color(picture, x: tile.x + 4, y: tile.y + 4), .tile))
        // The name is written in white somewhere in the tile's middle band.
        let band = (tile.y + tile.height / 3)..<(tile.y + tile.height * 2 / 3)
        let bright = band.flatMap { y in (tile.x..<(tile.x + tile.width)).map { picture.y[y * picture.width + $0] } }.filter { $0 > 180 }
        #expect(bright.count > 20)
    }

    @Test func bannerAndLogoAreDrawn() throws {
        let logo = TransparentImage(picture: VideoFrame(width: 20, height: 20, fill: (YUVColor.white.y, 128, 128)), alpha: [UInt8](repeating: 255, count: 400))
        let (picture, _, _) = try runProgram(scene: Scene(layout: try gridLayout(), participants: [], banner: "Hello from Tally", logo: logo))
        let margin = 180 / 30
        #expect(color(picture, x: 320 - 20 - margin + 10, y: margin + 10).y > 200, "logo in the top right corner")
        let bandY = 180 - (180 / 20) * 2
        #expect(near(color(picture, x: 320 / 20 + 2, y: bandY), Theme.standard.accent, tolerance: 40), "banner band near the bottom left")
    }

    @Test func aCommentIsALowerThirdAboveTheBannerAndGoneWhenCleared() throws {
        let layout = try gridLayout()
        let comment = (name: "Gina", text: "Greetings from the chat")
        let (shown, _, _) = try runProgram(scene: Scene(layout: layout, participants: [], banner: "Banner", comment: comment))
        // 320×180: text 7 px, the card's strip from y 126 to 136, its light body to 150, above the banner's band.
        #expect(near(color(shown, x: 18, y: 130), Theme.standard.accent, tolerance: 40), "the name's accent strip")
        #expect(color(shown, x: 18, y: 145).y > 200, "the message's light card")
        let bandY = 180 - (180 / 20) * 2
        #expect(near(color(shown, x: 320 / 20 + 2, y: bandY), Theme.standard.accent, tolerance: 40), "the banner still below it")
        let (cleared, _, _) = try runProgram(scene: Scene(layout: layout, participants: [], banner: "Banner"))
        #expect(!near(color(cleared, x: 18, y: 130), Theme.standard.accent, tolerance: 40))
        #expect(color(cleared, x: 18, y: 145).y < 100)
    }

    @Test func audioWaitsForABufferThenMixesAndPlaysSilenceWhenDry() {
        let input = CompositorInput(name: "X")
        var mix = [Float](repeating: 0, count: 3200)
        input.deliver(audio: [Float](repeating: 0.25, count: 3200))
        input.mix(into: &mix, count: mix.count)
        #expect(mix.allSatisfy { $0 == 0 }, "under 60 ms buffered: not started yet")
        input.deliver(audio: [Float](repeating: 0.25, count: 3200 * 2))
        input.mix(into: &mix, count: mix.count)
        #expect(mix.allSatisfy { $0 == 0.25 })
        var second = [Float](repeating: 0.5, count: 3200)
        input.mix(into: &second, count: second.count)
        #expect(second.allSatisfy { $0 == 0.75 })
        var dry = [Float](repeating: 0, count: 3200 * 4)
        input.mix(into: &dry, count: dry.count)
        #expect(dry.prefix(3200).allSatisfy { $0 == 0.25 } && dry.suffix(3200).allSatisfy { $0 == 0 })
    }

    @Test func textRendersWithinItsWidth() throws {
        let renderer = try TextRenderer()
        let short = renderer.render("Ada", pixelHeight: 20, maxWidth: 500)
        #expect(short.width > 20 && short.height >= 20 && short.alpha.contains { $0 > 200 })
        let long = renderer.render(String(repeating: "Very long name ", count: 10), pixelHeight: 20, maxWidth: 120)
        #expect(long.width <= 120)
    }
}

/// Lip sync: an input shows the picture captured with the sound it mixes, by capture times.
@Suite struct CompositorInputSyncTests {
    /// Runs 4 s of a publisher whose pictures reach the input `videoLag` seconds after the
    /// sound of the same instant (negative: before), ticking the mix at 30 fps. Each picture
    /// carries its capture time in its luma (milliseconds / 10, modulo 256); returns, per
    /// tick of the last second, the shown picture's capture time minus the mixed sound's.
    func offsets(videoLag: Double, captureTimes: Bool = true) -> (offsets: [Double], buffered: Double) {
        let input = CompositorInput(name: "P")
        var offsets: [Double] = []
        var nextAudio = 0.0, nextVideo = 0.0, nextTick = 0.0
        let start = 1_000.0
        var shownCaptures: [Int: Double] = [:]
        var mixedHead = 0.0
        for step in 0..<4_000 {
            let now = Double(step) / 1_000
            if now >= nextAudio {
                // 20 ms of sound captured just now, its samples counting the time.
                let samples = (0..<960).flatMap { index -> [Float] in
                    let value = Float((nextAudio + Double(index) / 48_000).truncatingRemainder(dividingBy: 1))
                    return [value, value]
                }
                input.deliver(audio: samples, capture: captureTimes ? start + nextAudio : nil)
                nextAudio += 0.02
            }
            let videoCapture = nextVideo
            if now >= videoCapture + videoLag, now >= 0 {
                let key = Int((videoCapture * 1000).rounded())
                shownCaptures[key % 2560 / 10] = videoCapture
                input.deliver(VideoFrame(width: 2, height: 2, fill: (UInt8(key % 2560 / 10), 128, 128)), capture: captureTimes ? start + videoCapture : nil)
                nextVideo += 1.0 / 30
            }
            if now >= nextTick {
                let picture = input.latestFrame
                var mix = [Float](repeating: 0, count: 3_200)
                input.mix(into: &mix, count: mix.count)
                if mix[0] != 0 { mixedHead = Double(mix[0]) }
                if now >= 3, let picture, let shown = shownCaptures[Int(picture.frame.y[0])] {
                    // The sound counts time modulo a second.
                    let offset = (shown - mixedHead).truncatingRemainder(dividingBy: 1)
                    offsets.append(offset >= 0.5 ? offset - 1 : offset < -0.5 ? offset + 1 : offset)
                }
                nextTick += 1.0 / 30
            }
        }
        let buffered = Double(input.bufferedAudioSamples / 2) / 48_000
        return (offsets, buffered)
    }

    @Test(arguments: [0.0, 0.25, -0.1])
    func picturesFollowTheirSound(videoLag: Double) {
        let (offsets, buffered) = offsets(videoLag: videoLag)
        #expect(offsets.count > 20)
        // Within a frame and a half of the sound, whether pictures come late or early.
        #expect(offsets.allSatisfy { abs($0) <= 0.05 }, "\(offsets)")
        // Late pictures hold the sound back by as long; otherwise the jitter buffer alone.
        #expect(abs(buffered - max(0.06, videoLag + 0.04)) < 0.07, "buffered \(buffered)")
    }

    @Test func withoutCaptureTimesTheLatestPictureShows() {
        let (offsets, buffered) = offsets(videoLag: 0.25, captureTimes: false)
        // Pictures a quarter second late are shown as they come: that far behind, less the
        // 60 ms the sound waits in its jitter buffer.
        #expect(offsets.allSatisfy { abs($0 - (-0.25 + 0.06)) < 0.04 }, "\(offsets)")
        #expect(buffered < 0.12)
    }
}

@Suite struct TransitionTests {
    /// The centre colour of every picture of a program that shows red, then blue from tick 6.
    private func centres(_ transition: Transition) throws -> [YUVColor] {
        let layout = try gridLayout()
        let left = CompositorInput(name: "Ada")
        let right = CompositorInput(name: "Bo")
        left.deliver(VideoFrame(width: 320, height: 180, fill: (red.y, red.u, red.v)))
        right.deliver(VideoFrame(width: 320, height: 180, fill: (blue.y, blue.u, blue.v)))
        let packets = Mutex<[ProgramPacket]>([])
        let compositor = Mutex<Compositor?>(nil)
        let clock = SteppingClock(framesPerSecond: 30) { tick in
            guard tick == 6 else { return }
            let program = compositor.withLock { $0 }
            program?.update(Scene(layout: layout, participants: [right], transition: transition))
        }
        let program = try Compositor(settings: .init(width: 320, height: 180, framesPerSecond: 30, videoBitrateKbps: 800, encoderThreads: 1),
                                     scene: Scene(layout: layout, participants: [left]), clock: clock) { packet in
            packets.withLock { $0.append(packet) }
        }
        compositor.withLock { $0 = program }
        program.run(ticks: 18)
        let decoder = try AVVideoDecoder(codecID: .init(27))
        var centres: [YUVColor] = []
        for packet in packets.withLock({ $0 }) where packet.kind == .video {
            if let picture = try decoder.decode(EncodedFrame(data: packet.data, rtpTimestamp: 0, isKeyframe: packet.isKeyframe)) {
                centres.append(color(picture, x: 160, y: 90))
            }
        }
        return centres
    }

    @Test func aNewArrangementCrossFadesOverTheLastPictureWhenAskedAndCutsOtherwise() throws {
        let fading = try centres(.crossFade(seconds: 0.2))
        #expect(fading.count == 18)
        #expect(fading.prefix(6).allSatisfy { near($0, red) })
        // Six ticks of fade: the pictures between show red and blue mixed, more blue each time.
        let between = fading.enumerated().filter { !near($0.element, red) && !near($0.element, blue) }
        #expect(between.count >= 3, "\(fading)")
        #expect(zip(between, between.dropFirst()).allSatisfy { Int($0.element.v) + 4 >= Int($1.element.v) }, "red's V falls as blue's share grows")
        #expect(near(fading[17], blue))
        let cutting = try centres(.cut)
        #expect(cutting.prefix(6).allSatisfy { near($0, red) } && cutting.dropFirst(7).allSatisfy { near($0, blue) }, "\(cutting)")
    }

    @Test func blendingWeighsEachPicture() {
        var top = VideoFrame(width: 2, height: 2, fill: (200, 100, 40))
        top.blend(over: VideoFrame(width: 2, height: 2, fill: (0, 200, 240)), weight: 64)
        #expect(top.y == [50, 50, 50, 50] && top.u == [175] && top.v == [190])
    }
}


/// The show's brand in the program: its accent, its name-tag and banner styles, its face, and
/// a countdown on the accent.
@Suite struct ThemeTests {
    static let magenta = Theme(red: 200, green: 0, blue: 200, nameTags: .accent, banner: .accent)
    static let dejavu = "/usr/share/fonts/truetype/dejavu/"

    @Test func theAccentColoursTheBannerNameTagsAndCommentAndTextStaysReadable() throws {
        let ada = CompositorInput(name: "Ada")
        ada.deliver(VideoFrame(width: 640, height: 360, fill: (red.y, red.u, red.v)))
        let layout = try gridLayout()
        let scene = Scene(layout: layout, participants: [ada], banner: "Banner", comment: (name: "Gina", text: "Hi"), theme: Self.magenta)
        let (picture, _, _) = try runProgram(scene: scene)
        let bandY = 180 - (180 / 20) * 2
        #expect(near(color(picture, x: 320 / 20 + 2, y: bandY), Self.magenta.accent, tolerance: 40), "the banner on the accent")
        #expect(near(color(picture, x: 18, y: 130), Self.magenta.accent, tolerance: 40), "the comment's name strip on the accent")
        // The name tag's left margin, inside the tag and left of its text.
        let tile = try #require(layout.place(["0"], width: 320, height: 180).first)
        let size = max(12, min(28, tile.height / 14))
        #expect(near(color(picture, x: tile.x + size / 2 + 2, y: tile.y + tile.height - size - 4), Self.magenta.accent, tolerance: 40), "the name tag on the accent")

        #expect(Self.magenta.onAccent == .white)
        let yellow = Theme(red: 250, green: 220, blue: 0)
        #expect(Theme.isLight(red: 250, green: 220, blue: 0) && yellow.onAccent != .white, "dark text on a light accent")
        #expect(!Theme.isLight(red: 37, green: 99, blue: 235))
    }

    @Test func aShadedOrLightBannerKeepsAnAccentEdge() throws {
        let styles: [(Theme.Style, (UInt8) -> Bool)] = [(.shade, { $0 < 60 }), (.light, { $0 > 200 })]
        for (style, body) in styles {
            let theme = Theme(red: 200, green: 0, blue: 200, banner: style)
            let (picture, _, _) = try runProgram(scene: Scene(layout: try gridLayout(), participants: [], banner: "Banner", theme: theme))
            let bandY = 180 - (180 / 20) * 2
            #expect(near(color(picture, x: 320 / 20 + 1, y: bandY), theme.accent, tolerance: 40), "\(style): the accent edge")
            #expect(body(color(picture, x: 320 / 20 + 6, y: bandY).y), "\(style): the band itself")
        }
    }

    @Test func eachFontIsItsOwnFaceAndAMissingOneFallsBackToTheDefault() throws {
        let masks = try ["DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono-Bold.ttf"].map {
            try TextRenderer(fontPath: Self.dejavu + $0).render("Tally Wim", pixelHeight: 24, maxWidth: 1000)
        }
        #expect(Set(masks.map(\.alpha)).count == 3, "three faces draw three different texts")
        let mono = try TextRenderer(fontPath: Self.dejavu + "DejaVuSansMono-Bold.ttf")
        #expect(mono.render("iiii", pixelHeight: 24, maxWidth: 1000).width == mono.render("WWWW", pixelHeight: 24, maxWidth: 1000).width)
        let missing = Theme(red: 200, green: 0, blue: 200, fontPath: "/nonexistent/font.ttf")
        let (picture, _, _) = try runProgram(scene: Scene(layout: try gridLayout(), participants: [], banner: "Banner", theme: missing))
        #expect(near(color(picture, x: 320 / 20 + 2, y: 180 - (180 / 20) * 2), missing.accent, tolerance: 40), "the banner is still drawn")
    }

    @Test func aCountdownShowsTheTimeLeftOnTheAccentInTheMiddle() throws {
        #expect(Compositor.countdownClock(90) == "1:30" && Compositor.countdownClock(89.2) == "1:30" && Compositor.countdownClock(0.4) == "0:01")
        #expect(Compositor.countdownClock(-5) == "0:00" && Compositor.countdownClock(3600) == "60:00" && Compositor.countdownClock(.infinity) == "6000:00")
        func middle(secondsLeft: Double) throws -> VideoFrame {
            let scene = Scene(layout: try gridLayout(), participants: [], theme: Self.magenta,
                              countdown: (label: "Starting soon", until: Date().addingTimeInterval(secondsLeft)))
            return try runProgram(scene: scene).picture
        }
        let ninety = try middle(secondsLeft: 90)
        let accentInRow = (100..<220).filter { near(color(ninety, x: $0, y: 90), Self.magenta.accent, tolerance: 40) }.count
        #expect(accentInRow > 30, "the card on the accent across the middle")
        let twenty = try middle(secondsLeft: 20)
        let differing = (70..<110).flatMap { y in (110..<210).map { y * 320 + $0 } }.filter { abs(Int(ninety.y[$0]) - Int(twenty.y[$0])) > 60 }.count
        #expect(differing > 50, "1:30 and 0:20 are different digits")
        let (without, _, _) = try runProgram(scene: Scene(layout: try gridLayout(), participants: [], theme: Self.magenta))
        #expect(!near(color(without, x: 160, y: 90), Self.magenta.accent, tolerance: 40))
    }
}
