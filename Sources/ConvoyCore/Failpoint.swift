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
}
