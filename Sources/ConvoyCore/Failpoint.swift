#if canImport(Glibc)
import Glibc
#endif

/// Named places where a debug build (the one the tests run) kills its own process, as a crash or a power cut
/// would, when `CONVOY_FAILPOINT` names them: the tests of what a restart finds are then about a real crash at
/// the worst moment, not a simulated one. Release builds compile every failpoint to nothing.
public enum Failpoint {
    @inline(__always)
    public static func reach(_ name: StaticString) {
        #if DEBUG
        guard let wanted = getenv("CONVOY_FAILPOINT"), String(cString: wanted) == name.description else { return }
        kill(getpid(), SIGKILL)
        #endif
    }

    /// Holds the calling task for a while when `CONVOY_FAILPOINT_PAUSE` is `name:MILLISECONDS`: a slow
    /// operation on demand, for the tests of what a second call meets while the first still runs.
    public static func pause(_ name: StaticString) async {
        #if DEBUG
        guard let raw = getenv("CONVOY_FAILPOINT_PAUSE") else { return }
        let parts = String(cString: raw).split(separator: ":")
        guard parts.count == 2, parts[0] == name.description, let milliseconds = Int(parts[1]) else { return }
        try? await Task.sleep(for: .milliseconds(milliseconds))
        #endif
    }
}
