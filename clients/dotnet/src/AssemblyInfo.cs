using System;
using System.Reflection;
using System.Runtime.Versioning;

[assembly: AssemblyTitle("CSFMSEJournalInterface")]
[assembly: AssemblyDescription("FMS 6's E-Journal interface (FmsGeneralLedgerProcessor), calling fng-gateway's E-Journal service over HTTPS.")]
[assembly: AssemblyProduct("fng-gateway")]
[assembly: AssemblyVersion("1.0.0.0")]
[assembly: AssemblyFileVersion("1.0.0.0")]
[assembly: AssemblyInformationalVersion("1.0.0")]
[assembly: CLSCompliant(true)]
[assembly: TargetFramework(".NETFramework,Version=v4.5", FrameworkDisplayName = ".NET Framework 4.5")]
