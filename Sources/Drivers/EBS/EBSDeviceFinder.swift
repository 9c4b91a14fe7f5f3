import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds the block device of an attached EBS volume by the volume's id, never by its size: on Nitro instances
/// the NVMe controller's serial is the volume id, which udev publishes as
/// `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123...`; on Xen instances the device is the attachment's
/// name with `sd` turned into `xvd` (or the name itself).
struct EBSDeviceFinder: Sendable {
    let directory: String

    func candidates(volumeID: String, attachedAs name: String) -> [String] {
        let serial = volumeID.replacingOccurrences(of: "-", with: "")
        var paths = [directory + "/nvme-Amazon_Elastic_Block_Store_" + serial]
        if name.hasPrefix("/dev/sd") { paths.append("/dev/xvd" + name.dropFirst("/dev/sd".count)) }
        paths.append(name)
        return paths
    }

    /// The resolved block device, or nil while none of the candidates is one.
    func device(volumeID: String, attachedAs name: String) -> String? {
        for path in candidates(volumeID: volumeID, attachedAs: name) {
            guard let resolved = realpath(path, nil) else { continue }
            defer { free(resolved) }
            var info = stat()
            if stat(resolved, &info) == 0, (info.st_mode & S_IFMT) == S_IFBLK { return String(cString: resolved) }
        }
        return nil
    }
}
