import Backupstore
import ConvoyCore

/// The convoy volume a CSI volume name stands for. CSI allows 128 characters of any kind; a convoy name is 2 to
/// 64 letters, digits, `_`, `.` and `-`. A CSI name that is a valid convoy name is used as it is (Kubernetes'
/// `pvc-<uuid>` always is); any other maps to `csi-` and 32 hex digits of its SHA-256, the same every time, so
/// repeated creates find the same volume and the CO gets that name back as the volume id.
enum CSINames {
    static func volumeName(for csiName: String) -> String {
        if (try? ObjectName.validate(csiName)) != nil { return csiName }
        return "csi-" + BlockCodec.hash(Array(csiName.utf8)).prefix(32)
    }
}
