//! Built-in knowledge of Windows event logs rendered as JSON.
//!
//! The Sigma taxonomy appendix maps `product: windows` log sources to event-log channels and
//! event ids (`category: process_creation` → Sysmon event 1, `service: security` → channel
//! `Security`). Those tables are reproduced here so that Windows events exported as JSON
//! (`Event.System.*`, `Event.EventData.*`) work without any configuration.

use crate::rule::LogSource;

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";

/// `category` → (channels, event ids), from the taxonomy appendix. An empty id list means
/// any event id of those channels.
pub fn category_sources(category: &str) -> Option<(&'static [&'static str], &'static [i64])> {
    const PS: &[&str] = &[
        "Microsoft-Windows-PowerShell/Operational",
        "PowerShellCore/Operational",
    ];
    const S: &[&str] = &[SYSMON];
    Some(match category {
        "process_creation" => (S, &[1]),
        "file_change" => (S, &[2]),
        "network_connection" => (S, &[3]),
        "sysmon_status" => (S, &[4, 16]),
        "process_termination" => (S, &[5]),
        "driver_load" => (S, &[6]),
        "image_load" => (S, &[7]),
        "create_remote_thread" => (S, &[8]),
        "raw_access_thread" => (S, &[9]),
        "process_access" => (S, &[10]),
        "file_event" => (S, &[11]),
        "registry_event" => (S, &[12, 13, 14]),
        "registry_add" | "registry_delete" => (S, &[12]),
        "registry_set" => (S, &[13]),
        "registry_rename" => (S, &[14]),
        "create_stream_hash" => (S, &[15]),
        "pipe_created" => (S, &[17, 18]),
        "wmi_event" => (S, &[19, 20, 21]),
        "dns_query" => (S, &[22]),
        "file_delete" => (S, &[23]),
        "clipboard_capture" => (S, &[24]),
        "process_tampering" => (S, &[25]),
        "file_delete_detected" => (S, &[26]),
        "file_block_executable" => (S, &[27]),
        "file_block_shredding" => (S, &[28]),
        "file_executable_detected" => (S, &[29]),
        "sysmon_error" => (S, &[255]),
        "ps_classic_start" => (&["Windows PowerShell"], &[400]),
        "ps_classic_provider_start" => (&["Windows PowerShell"], &[600]),
        "ps_classic_script" => (&["Windows PowerShell"], &[800]),
        "ps_module" => (PS, &[4103]),
        "ps_script" => (PS, &[4104]),
        _ => return None,
    })
}

/// `service` → channels, from the taxonomy appendix.
pub fn service_channels(service: &str) -> Option<&'static [&'static str]> {
    Some(match service {
        "application" => &["Application"],
        "application-experience" => &[
            "Microsoft-Windows-Application-Experience/Program-Telemetry",
            "Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant",
        ],
        "applocker" => &[
            "Microsoft-Windows-AppLocker/MSI and Script",
            "Microsoft-Windows-AppLocker/EXE and DLL",
            "Microsoft-Windows-AppLocker/Packaged app-Deployment",
            "Microsoft-Windows-AppLocker/Packaged app-Execution",
        ],
        "appmodel-runtime" => &["Microsoft-Windows-AppModel-Runtime/Admin"],
        "appxdeployment-server" => &["Microsoft-Windows-AppXDeploymentServer/Operational"],
        "appxpackaging-om" => &["Microsoft-Windows-AppxPackaging/Operational"],
        "bitlocker" => &["Microsoft-Windows-BitLocker/BitLocker Management"],
        "bits-client" => &["Microsoft-Windows-Bits-Client/Operational"],
        "capi2" => &["Microsoft-Windows-CAPI2/Operational"],
        "certificateservicesclient-lifecycle-system" => {
            &["Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"]
        }
        "codeintegrity-operational" => &["Microsoft-Windows-CodeIntegrity/Operational"],
        "dhcp" => &["Microsoft-Windows-DHCP-Server/Operational"],
        "diagnosis-scripted" => &["Microsoft-Windows-Diagnosis-Scripted/Operational"],
        "dns-client" => &["Microsoft-Windows-DNS Client Events/Operational"],
        "dns-server" => &["DNS Server"],
        "dns-server-analytic" => &["Microsoft-Windows-DNS-Server/Analytical"],
        "dns-server-audit" => &["Microsoft-Windows-DNS-Server/Audit"],
        "driver-framework" => &["Microsoft-Windows-DriverFrameworks-UserMode/Operational"],
        "firewall-as" => &["Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"],
        "hyper-v-worker" => &["Microsoft-Windows-Hyper-V-Worker"],
        "iis-configuration" => &["Microsoft-IIS-Configuration/Operational"],
        "kernel-event-tracing" => &["Microsoft-Windows-Kernel-EventTracing"],
        "kernel-shimengine" => &[
            "Microsoft-Windows-Kernel-ShimEngine/Operational",
            "Microsoft-Windows-Kernel-ShimEngine/Diagnostic",
        ],
        "ldap" => &["Microsoft-Windows-LDAP-Client/Debug"],
        "lsa-server" => &["Microsoft-Windows-LSA/Operational"],
        "msexchange-management" => &["MSExchange Management"],
        "ntfs" => &["Microsoft-Windows-Ntfs/Operational"],
        "ntlm" => &["Microsoft-Windows-NTLM/Operational"],
        "openssh" => &["OpenSSH/Operational"],
        "powershell" => &["Microsoft-Windows-PowerShell/Operational"],
        "powershell-classic" => &["Windows PowerShell"],
        "printservice-admin" => &["Microsoft-Windows-PrintService/Admin"],
        "printservice-operational" => &["Microsoft-Windows-PrintService/Operational"],
        "security" => &["Security"],
        "security-mitigations" => &[
            "Microsoft-Windows-Security-Mitigations/Kernel Mode",
            "Microsoft-Windows-Security-Mitigations/User Mode",
        ],
        "sense" => &["Microsoft-Windows-SENSE/Operational"],
        "servicebus-client" => &[
            "Microsoft-ServiceBus-Client/Operational",
            "Microsoft-ServiceBus-Client/Admin",
        ],
        "shell-core" => &["Microsoft-Windows-Shell-Core/Operational"],
        "smbclient-security" => &["Microsoft-Windows-SmbClient/Security"],
        "sysmon" => &[SYSMON],
        "system" => &["System"],
        "taskscheduler" => &["Microsoft-Windows-TaskScheduler/Operational"],
        "terminalservices-localsessionmanager" => {
            &["Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"]
        }
        "vhdmp" => &["Microsoft-Windows-VHDMP/Operational"],
        "windefend" => &["Microsoft-Windows-Windows Defender/Operational"],
        "wmi" => &["Microsoft-Windows-WMI-Activity/Operational"],
        _ => return None,
    })
}

/// What is known about where an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventSource {
    /// A Windows event log record (channel and event id).
    Windows { channel: String, event_id: i64 },
    /// Anything else: no log source can be inferred, so every rule applies and its
    /// detection alone decides.
    Unknown,
}

/// Could a rule with this `logsource` apply to events from `source`?
///
/// A log source the tables above do not know (an unknown category or service) cannot be
/// ruled out, so it applies and the detection decides: a missing mapping must not hide a
/// match.
pub fn logsource_applies(ls: &LogSource, source: &EventSource) -> bool {
    let EventSource::Windows { channel, event_id } = source else {
        return true;
    };
    if let Some(product) = &ls.product
        && product != "windows"
    {
        return false;
    }
    if let Some(service) = &ls.service
        && let Some(channels) = service_channels(service)
        && !channels.iter().any(|c| c.eq_ignore_ascii_case(channel))
    {
        return false;
    }
    if let Some(category) = &ls.category
        && let Some((channels, ids)) = category_sources(category)
        && !(channels.iter().any(|c| c.eq_ignore_ascii_case(channel))
            && (ids.is_empty() || ids.contains(event_id)))
    {
        return false;
    }
    true
}
