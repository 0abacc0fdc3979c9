// The sample calls of FMS 6's E-Journal documentation, as a console program, with the
// gateway's four values in place of FMS's. Put PostJournal.xml (examples/PostJournal.xml in
// the repository) in the directory you run it from.
//
//   mcs Sample.cs -r:CSFMSEJournalInterface.dll -r:System.Xml.dll && mono Sample.exe
//   (or csc.exe Sample.cs /r:CSFMSEJournalInterface.dll /r:System.Xml.dll on Windows)

using System;
using System.Xml;
using System.Xml.XPath;
using CSFMSEJournalInterface;

public static class Sample
{
    public static int Main()
    {
        string _server = "https://gateway.example.org";              // was <Database Server>: the gateway's address
        string _database = "00000000-0000-0000-0000-000000000000";   // was <FMS Database>: the database's partner key
        string _username = "payments-account";                       // was <FMS Username>: the gateway account
        string _password = "password";                               // was <FMS Password>: its password

        try
        {
            FmsGeneralLedgerProcessor _FMSGLProcessor =
                new FmsGeneralLedgerProcessor(_server, _database, _username, _password);

            // Get Banks: the banks mapped for the payment system, with their last row versions.
            string _systemIdentifier = "TPPCS";
            bool _isSuccess = false;
            IXPathNavigable _getBanksResult =
                _FMSGLProcessor.GetBanks(_systemIdentifier, out _isSuccess) as XmlDocument;
            XmlDocument _getBanksResultXml = (_getBanksResult) as XmlDocument;
            Console.WriteLine("GetBanks isSuccess: " + _isSuccess);
            foreach (XmlElement bank in _getBanksResultXml.SelectNodes("/Request/Banks/Bank"))
            {
                Console.WriteLine("Bank " + bank.GetAttribute("externalReference")
                    + " lastOrderRowVersion=\"" + bank.GetAttribute("lastOrderRowVersion") + "\""
                    + " lastSettlementRowVersion=\"" + bank.GetAttribute("lastSettlementRowVersion") + "\"");
            }

            // Post Journal: each section's lastRowVersion is the bank's last row version from
            // GetBanks plus the number of transactions the section carries.
            XmlDocument _xmlJournal = new XmlDocument();
            _xmlJournal.Load("PostJournal.xml");
            foreach (XmlElement bank in _xmlJournal.SelectNodes("/ControlAccounts/Banks/Bank"))
            {
                XmlElement banked = null;
                foreach (XmlElement candidate in _getBanksResultXml.SelectNodes("/Request/Banks/Bank"))
                {
                    if (candidate.GetAttribute("externalReference") == bank.GetAttribute("reference"))
                    {
                        banked = candidate;
                    }
                }
                if (banked != null)
                {
                    SetLastRowVersion(bank, "Orders", banked.GetAttribute("lastOrderRowVersion"));
                    SetLastRowVersion(bank, "Settlements", banked.GetAttribute("lastSettlementRowVersion"));
                }
            }
            IXPathNavigable _journalResult = _FMSGLProcessor.PostJournals(_xmlJournal);
            XmlDocument _journalResultXml = (_journalResult) as XmlDocument;  // the documentation casts _auditResult here, a slip
            Console.WriteLine("PostJournals: " + _journalResultXml.OuterXml);

            // Post Audit: a note in the school's audit trail.
            string _auditMessage = "Journal " + _xmlJournal.SelectSingleNode("/ControlAccounts/Header/@submissionID").Value
                + " posted by the sample program";
            IXPathNavigable _auditResult = _FMSGLProcessor.PostAuditMessage(_auditMessage);
            XmlDocument _auditResultXml = (_auditResult) as XmlDocument;
            Console.WriteLine("PostAuditMessage: " + _auditResultXml.OuterXml);

            bool posted = _journalResultXml.DocumentElement.GetAttribute("isSuccess") == "true";
            bool noted = _auditResultXml.DocumentElement.GetAttribute("isSuccess") == "true";
            return _isSuccess && posted && noted ? 0 : 1;
        }
        catch (GatewayException e)
        {
            Console.WriteLine("GatewayException " + e.Code + ": " + e.Message + " (request " + e.RequestId + ")");
            return 2;
        }
    }

    private static void SetLastRowVersion(XmlElement bank, string section, string lastRowVersion)
    {
        XmlElement element = bank[section];
        if (element == null)
        {
            return;
        }
        int last = lastRowVersion.Length == 0 ? 0 : int.Parse(lastRowVersion);
        element.SetAttribute("lastRowVersion", (last + element.SelectNodes("Txn").Count).ToString());
    }
}
