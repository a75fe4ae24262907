import CLibFuzzer
#if canImport(Glibc)
import Glibc
#endif

/// The property under test; set once by `runFuzzer` before libFuzzer calls in.
nonisolated(unsafe) private var property: ([UInt8]) -> Void = { _ in }

/// The one-input entry libFuzzer's runtime expects to find.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    property(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// Hands the process to libFuzzer with `check` as the property; SwiftPM owns main(), so this
/// goes through libFuzzer's documented driver entry instead of its own main.
public func runFuzzer(_ check: @escaping ([UInt8]) -> Void) -> Never {
    property = check
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
}
