import ConvoyCore
import CSIProtocol

/// A volume's condition for NodeGetVolumeStats (kubelet turns an abnormal one into an event on the pods using
/// it): what convoy knows to be wrong with it now, as the driver status and the lazy restore report it.
enum CSIVolumeCondition {
    static func of(_ record: VolumeRecord, services: Services) async -> Csi_V1_VolumeCondition {
        var problems: [String] = []
        let status = await services.status(of: record)
        if let mount = status["poolMount"], mount != "connected" {
            problems.append("its gluster pool \(status["pool"] ?? "") is \(mount)"
                + (status["poolProblem"].map { ": \($0)" } ?? ""))
        }
        if let fenced = status["fenced"] { problems.append("fenced: \(fenced)") }
        if let hydration = await services.lazy.hydration(of: record.name), hydration.state == .failed {
            let reason = hydration.error ?? "no reason given"
            problems.append("its lazy restore from \(hydration.backup) failed (\(reason)); "
                + "data not yet local cannot be read until the backup is reachable and the daemon restarts")
        }
        var condition = Csi_V1_VolumeCondition()
        condition.abnormal = !problems.isEmpty
        condition.message = problems.isEmpty ? "healthy" : problems.joined(separator: "; ")
        return condition
    }
}
